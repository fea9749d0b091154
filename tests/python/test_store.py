"""engram.TableStore on synthetic DeepSeek-V4.1 checkpoints: lookup equals the rows decoded in
NumPy straight from the safetensors bytes (e4m3 x e8m0), for each tier with and without a cache;
prefetch / wait; stats; resident scales; a shared table attached only by its own checkpoint, made
by one of several processes opening it at once, owner-only unless a mode is given, and checked
byte by byte when asked; a cache budget larger than the tables; and the error paths (bad hash ids,
bad tier, broken checkpoint)."""
import json
import os
import stat
import struct
import subprocess
import sys

import numpy as np
import pytest

import engram

SMALL = dict(vocab_size=100, max_ngram=3, n_heads=2, head_dim=64, hidden_size=16, hc_mult=2)


def e4m3_to_f32(b):
    """Decode e4m3fn bytes (no NaN in synthetic data) with NumPy, independently of engram."""
    b = b.astype(np.int32)
    sign = np.where(b & 0x80, -1.0, 1.0)
    exp = (b >> 3) & 0xF
    man = b & 0x7
    normal = (1.0 + man / 8.0) * np.exp2(exp - 7.0)
    sub = (man / 8.0) * np.exp2(-6.0)
    return (sign * np.where(exp == 0, sub, normal)).astype(np.float32)


def read_tensor(ckdir, name):
    with open(os.path.join(ckdir, "model.safetensors.index.json")) as f:
        shard = json.load(f)["weight_map"][name]
    with open(os.path.join(ckdir, shard), "rb") as f:
        n = struct.unpack("<Q", f.read(8))[0]
        header = json.loads(f.read(n))
        begin, end = header[name]["data_offsets"]
        f.seek(8 + n + begin)
        data = np.frombuffer(f.read(end - begin), dtype=np.uint8)
    return data.reshape(header[name]["shape"])


def expected_rows(ckdir, layer, rows):
    w = read_tensor(ckdir, f"layers.{layer}.engram.embed.weight")[rows]
    s = read_tensor(ckdir, f"layers.{layer}.engram.embed.scale")[rows]
    scale = np.exp2(s.astype(np.float32) - 127.0)
    vals = e4m3_to_f32(w).reshape(*w.shape[:-1], -1, 32) * scale[..., None]
    return vals.reshape(w.shape).astype(np.float32)


@pytest.fixture(scope="module")
def ckpt(tmp_path_factory):
    d = str(tmp_path_factory.mktemp("v41"))
    rows = engram.write_synthetic_v41(d, **SMALL)
    return d, rows


def primes_of(ckdir, layer):
    lookup = np.arange(99092, dtype=np.int64)
    h = engram.NgramHasher(os.path.join(ckdir, "config.json"), lookup, 99092)
    return np.array(h.primes(layer)), np.array(h.offsets(layer))


@pytest.mark.parametrize("tier", ["file", "dram"])
@pytest.mark.parametrize("cache_bytes", [0, 66 * 40])
def test_lookup_matches_numpy_decoding(ckpt, tier, cache_bytes):
    d, _ = ckpt
    store = engram.TableStore.open(d, tier=tier, cache_bytes=cache_bytes)
    assert store.layer_ids == [1, 14]
    assert store.columns == 4 and store.head_dim == 64
    rng = np.random.default_rng(0)
    for layer in store.layer_ids:
        primes, offsets = primes_of(d, layer)
        hash_ids = (rng.integers(0, 1 << 40, size=(2, 5, 4)) % primes).astype(np.int64)
        got = store.lookup(layer, hash_ids)
        assert got.shape == (2, 5, 4, 64) and got.dtype == np.float32
        want = expected_rows(d, layer, hash_ids + offsets)
        np.testing.assert_array_equal(got, want)
        again = store.lookup(layer, hash_ids)
        np.testing.assert_array_equal(again, want)
    st = store.stats()
    assert st["tier"] == tier
    if cache_bytes:
        assert st["cache_hits"] > 0 and st["cache_entries"] <= 40


def test_prefetch_and_wait(ckpt):
    d, _ = ckpt
    store = engram.TableStore.open(d, tier="file", cache_bytes=1 << 16)
    p1, o1 = primes_of(d, 1)
    p14, o14 = primes_of(d, 14)
    h1 = (np.arange(3 * 4).reshape(3, 4) * 7 % p1).astype(np.int64)
    h14 = (np.arange(6 * 4).reshape(6, 4) * 5 % p14).astype(np.int64)
    ticket = store.prefetch({1: h1, 14: h14}, step=3)
    np.testing.assert_array_equal(store.wait(14), expected_rows(d, 14, h14 + o14))
    np.testing.assert_array_equal(ticket.wait(1), expected_rows(d, 1, h1 + o1))
    with pytest.raises(IndexError):
        ticket.wait(2)


def test_bad_hash_ids_and_arguments(ckpt):
    d, _ = ckpt
    store = engram.TableStore.open(d, tier="file")
    primes, _ = primes_of(d, 1)
    bad = np.zeros((1, 4), dtype=np.int64)
    bad[0, 2] = primes[2]  # one past the column's table
    with pytest.raises(IndexError, match="column 2"):
        store.lookup(1, bad)
    with pytest.raises(IndexError):
        store.lookup(1, -np.ones((1, 4), dtype=np.int64))
    with pytest.raises(ValueError, match="last dimension"):
        store.lookup(1, np.zeros((1, 3), dtype=np.int64))
    with pytest.raises(ValueError):
        store.lookup(1, np.zeros((1, 4), dtype=np.float32))
    with pytest.raises(IndexError):
        store.lookup(2, np.zeros((1, 4), dtype=np.int64))
    with pytest.raises(ValueError, match="tier"):
        engram.TableStore.open(d, tier="ssd")
    with pytest.raises(ValueError, match="cache policy"):
        engram.TableStore.open(d, tier="file", cache_bytes=100, cache_policy="fifo")
    with pytest.raises(ValueError):
        engram.TableStore.open(d, tier="file").wait(1)  # no prefetch yet


def test_broken_checkpoints(tmp_path):
    d = str(tmp_path / "ck")
    engram.write_synthetic_v41(d, **SMALL)
    with open(os.path.join(d, "model.safetensors.index.json")) as f:
        shard = json.load(f)["weight_map"]["layers.14.engram.embed.weight"]
    os.remove(os.path.join(d, shard))
    with pytest.raises(OSError, match=shard):
        engram.TableStore.open(d, tier="file")
    with pytest.raises(OSError):
        engram.TableStore.open(str(tmp_path / "nothing"), tier="file")


def test_shared_dram_tier(ckpt, tmp_path):
    d, _ = ckpt
    shm = "/dev/shm" if os.path.isdir("/dev/shm") else str(tmp_path)
    path = os.path.join(shm, f"engram_test_store_{os.getpid()}")
    try:
        a = engram.TableStore.open(d, tier="dram", shared_path=path)
        b = engram.TableStore.open(d, tier="dram", shared_path=path)  # attaches
        h = np.zeros((1, 4), dtype=np.int64)
        np.testing.assert_array_equal(a.lookup(1, h), b.lookup(1, h))
        assert "shared" in b.stats()["describe"]
    finally:
        if os.path.exists(path):
            os.remove(path)


def test_shared_table_of_another_checkpoint_is_refused(ckpt, tmp_path):
    d, _ = ckpt
    other = str(tmp_path / "other")
    engram.write_synthetic_v41(other, **dict(SMALL, vocab_size=120))  # other row counts
    reseeded = str(tmp_path / "reseeded")
    engram.write_synthetic_v41(reseeded, **SMALL, seed=9)  # same layout, other weights
    shm = "/dev/shm" if os.path.isdir("/dev/shm") else str(tmp_path)
    path = os.path.join(shm, f"engram_test_store_other_{os.getpid()}")
    try:
        mine = engram.TableStore.open(d, tier="dram", shared_path=path)
        for ck in (other, reseeded):
            with pytest.raises(ValueError) as err:
                engram.TableStore.open(ck, tier="dram", shared_path=path)
            msg = str(err.value)
            assert path in msg and f"(from {d})" in msg and f"(from {ck})" in msg, msg
        again = engram.TableStore.open(d, tier="dram", shared_path=path)
        h = np.zeros((3, 4), dtype=np.int64)
        np.testing.assert_array_equal(again.lookup(14, h), mine.lookup(14, h))
        assert again.stats()["io_reads"] == 0
    finally:
        if os.path.exists(path):
            os.remove(path)


def shm_path(tmp_path, name):
    shm = "/dev/shm" if os.path.isdir("/dev/shm") else str(tmp_path)
    return os.path.join(shm, f"engram_test_store_{name}_{os.getpid()}")


OPEN_AND_REPORT = """
import json, sys
import numpy as np
import engram
sys.stdin.read()  # every process starts when the parent closes stdin
s = engram.TableStore.open(sys.argv[1], tier="dram", shared_path=sys.argv[2])
rows = s.lookup(14, np.arange(12, dtype=np.int64).reshape(3, 4))
print(json.dumps({"created": s.stats()["shared_created"], "sum": float(rows.sum())}))
"""


def test_processes_opening_one_shared_table_at_once(ckpt, tmp_path):
    d, _ = ckpt
    path = shm_path(tmp_path, "race")
    procs: list[subprocess.Popen[str]] = []
    try:
        procs = [subprocess.Popen([sys.executable, "-c", OPEN_AND_REPORT, d, path],
                                  stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                  stderr=subprocess.PIPE, text=True) for _ in range(4)]
        for p in procs:
            p.stdin.close()
        results = []
        for p in procs:
            out, err = p.stdout.read(), p.stderr.read()
            assert p.wait(timeout=120) == 0, err
            results.append(json.loads(out))
        assert sum(r["created"] for r in results) == 1, results
        assert len({r["sum"] for r in results}) == 1, results
        mine = engram.TableStore.open(d, tier="dram", shared_path=path, verify_shared=True)
        assert mine.stats()["shared_created"] is False
    finally:
        for p in procs:  # none may create the file after it is removed
            if p.poll() is None:
                p.kill()
            p.wait()
        if os.path.exists(path):
            os.remove(path)


def test_shared_file_mode_and_verification(ckpt, tmp_path):
    d, _ = ckpt
    path, group = shm_path(tmp_path, "mode"), shm_path(tmp_path, "group")
    try:
        engram.TableStore.open(d, tier="dram", shared_path=path)
        assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
        engram.TableStore.open(d, tier="dram", shared_path=group, shared_mode=0o640)
        assert stat.S_IMODE(os.stat(group).st_mode) == 0o640
        with pytest.raises(ValueError, match="mode 0200"):
            engram.TableStore.open(d, tier="dram", shared_path=path + "x", shared_mode=0o200)
        assert not os.path.exists(path + "x")
        with open(path, "r+b") as f:  # one bit of the first row, changed after publishing
            f.seek(4096 + 10)
            b = f.read(1)[0]
            f.seek(4096 + 10)
            f.write(bytes([b ^ 0x08]))
        engram.TableStore.open(d, tier="dram", shared_path=path)  # not verified: served as is
        with pytest.raises(Exception, match="row data checksum") as err:
            engram.TableStore.open(d, tier="dram", shared_path=path, verify_shared=True)
        assert path in str(err.value)
        engram.TableStore.open(d, tier="dram", shared_path=group, verify_shared=True)
    finally:
        for p in (path, group):
            if os.path.exists(p):
                os.remove(p)


def test_cache_budget_beyond_the_tables(ckpt):
    d, rows = ckpt
    s = engram.TableStore.open(d, tier="file", cache_bytes=1 << 40)  # 1 TiB: never allocated
    st = s.stats()
    assert st["cache_capacity_rows"] == sum(rows) and st["cache_capped"] is True, st
    assert "every row of the tables" in st["describe"]
    small = engram.TableStore.open(d, tier="file", cache_bytes=66 * 40).stats()
    assert small["cache_capped"] is False


def test_resident_scales(ckpt):
    d, _ = ckpt
    plain = engram.TableStore.open(d, tier="file")
    resident = engram.TableStore.open(d, tier="file", resident_scales=True)
    primes, _ = primes_of(d, 1)
    h = (np.arange(8 * 4).reshape(8, 4) * 3 % primes).astype(np.int64)
    reads = []
    for store in (plain, resident):
        before = store.stats()["io_reads"]  # resident: the scales were read at open
        got = store.lookup(1, h)
        reads.append(store.stats()["io_reads"] - before)
    np.testing.assert_array_equal(got, plain.lookup(1, h))
    # One read a row (the data) instead of two (data and scale).
    assert reads == [2 * h.size, h.size]
    with pytest.raises(ValueError, match="resident_scales"):
        engram.TableStore.open(d, tier="dram", resident_scales=True)
    with pytest.raises(TypeError):
        engram.TableStore.open(d, "file", 0, "s3fifo", True, None, True)  # keyword only
