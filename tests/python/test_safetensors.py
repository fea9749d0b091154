"""engram's safetensors reader and writer against a from-scratch reader/writer written here with
json + struct + numpy only (the format: u64 LE header length, JSON header, data section)."""
import json
import os
import struct

import numpy as np
import pytest

import engram

NP_DTYPES = {"F64": np.float64, "F32": np.float32, "F16": np.float16, "BF16": np.uint16,
             "I64": np.int64, "I32": np.int32, "I16": np.int16, "I8": np.int8, "U8": np.uint8,
             "U16": np.uint16, "BOOL": np.bool_, "F8_E4M3": np.uint8, "F8_E8M0": np.uint8}


def py_read(path):
    with open(path, "rb") as f:
        raw = f.read()
    (n,) = struct.unpack("<Q", raw[:8])
    header = json.loads(raw[8:8 + n])
    meta = header.pop("__metadata__", {})
    out = {}
    for name, t in header.items():
        b, e = t["data_offsets"]
        out[name] = (t["dtype"], np.frombuffer(raw[8 + n + b:8 + n + e],
                                               NP_DTYPES[t["dtype"]]).reshape(t["shape"]))
    return out, meta


def py_write(path, tensors):
    header, blobs, off = {}, [], 0
    for name, (dtype, a) in tensors.items():
        data = np.ascontiguousarray(a).tobytes()
        header[name] = {"dtype": dtype, "shape": list(a.shape), "data_offsets": [off, off + len(data)]}
        blobs.append(data)
        off += len(data)
    h = json.dumps(header).encode()
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(h)) + h + b"".join(blobs))


@pytest.fixture
def tensors():
    rng = np.random.default_rng(0)
    return {
        "a": rng.standard_normal((3, 4)).astype(np.float32),
        "b": rng.integers(-5, 5, size=(7,), dtype=np.int64),
        "h": rng.standard_normal((2, 2)).astype(np.float16),
        "d": np.array(3.5),
        "m": np.array([True, False]),
        "z": np.zeros((0, 3), np.int32),
    }


def test_engram_writes_what_a_plain_reader_reads(tmp_path, tensors):
    p = str(tmp_path / "x.safetensors")
    q = np.arange(64, dtype=np.uint8).reshape(2, 32)
    engram.safetensors_save(p, {**tensors, "q": ("F8_E4M3", q), "s": ("F8_E8M0", q[:, :1].copy())},
                            metadata={"format": "pt"})
    got, meta = py_read(p)
    assert meta == {"format": "pt"}
    for name, a in tensors.items():
        assert np.array_equal(got[name][1], a) and got[name][1].shape == a.shape, name
    assert got["q"][0] == "F8_E4M3" and np.array_equal(got["q"][1], q)
    assert got["s"][0] == "F8_E8M0"
    assert sorted(os.listdir(tmp_path)) == ["x.safetensors"]  # no temporary left


def test_engram_reads_what_a_plain_writer_wrote(tmp_path, tensors):
    p = str(tmp_path / "y.safetensors")
    bf = np.array([0x3F80, 0x4000], np.uint16)
    py_write(p, {"a": ("F32", tensors["a"]), "bf": ("BF16", bf), "b": ("I64", tensors["b"]),
                 "e": ("F8_E4M3", np.arange(256, dtype=np.uint8).reshape(1, 256))})
    got = engram.safetensors_load(p)
    assert np.array_equal(got["a"], tensors["a"]) and got["a"].dtype == np.float32
    assert np.array_equal(got["bf"], bf) and got["bf"].dtype == np.uint16
    assert np.array_equal(engram.bf16_to_f32(got["bf"]), [1.0, 2.0])
    assert got["e"].dtype == np.uint8 and got["e"].shape == (1, 256)
    info, meta = engram.safetensors_info(p)
    names = [t[0] for t in info]
    assert set(names) == {"a", "bf", "b", "e"} and meta == {}
    raw = open(p, "rb").read()
    for name, dtype, shape, offset, nbytes in info:
        assert raw[offset:offset + nbytes] == np.ascontiguousarray(got[name]).tobytes()


def test_errors_name_the_file(tmp_path):
    p = str(tmp_path / "bad.safetensors")
    with open(p, "wb") as f:
        f.write(struct.pack("<Q", 1000) + b"{}")
    with pytest.raises(ValueError, match="bad.safetensors.*header length 1000"):
        engram.safetensors_load(p)
    with pytest.raises(OSError):
        engram.safetensors_load(str(tmp_path / "missing.safetensors"))
    with pytest.raises(TypeError):
        engram.safetensors_save(p, {"x": ("F8_E4M3", np.zeros(3, np.float32))})
