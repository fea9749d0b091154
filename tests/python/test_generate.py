"""Generation from Python (Model.generate, engram.generate) against the CLI and the model itself.

A tiny Engram model is trained by the CLI. For the same prompt, options and seed, the text that
engram.generate returns must be what `engram generate` prints (both call the library's
generator), on the resident tables and on a store tier; Model.generate over the prompt's ids
must give the ids of that text; temperature 0 must be the argmax of the model's own logits at
every step (checked with decode_step and NumPy); callbacks see every token in order and can stop
the generation; bad arguments raise.
"""
import numpy as np
import pytest

from cli_helpers import ENGRAM, engram as run_cli, train_tiny_engram

engram = pytest.importorskip("engram")

pytestmark = pytest.mark.skipif(not ENGRAM.exists(), reason=f"{ENGRAM} not built")

PROMPT = "the cat sat"


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    root = tmp_path_factory.mktemp("generate_py")
    run = train_tiny_engram(root, steps=8, corpus_seed=11)
    model_dir = run / (run / "latest").read_text().strip()  # `latest` names the checkpoint
    return root, engram.Model.load(str(model_dir)), engram.Tokenizer(str(model_dir / "tokenizer.json"))


OPTION_SETS = [
    dict(temperature=0.9, top_k=30, top_p=0.95, seed=7),
    dict(temperature=0.0, top_k=40, top_p=0.95, seed=0),
    dict(temperature=1.3, top_k=0, top_p=0.6, seed=3),
    dict(temperature=0.7, top_k=5, top_p=1.0, seed=12),
]


def cli_text(root, opts, *extra):
    r = run_cli("generate", "--model", root / "run", "--prompt", PROMPT, "--max-tokens", 30,
                "--temperature", opts["temperature"], "--top-k", opts["top_k"], "--top-p",
                opts["top_p"], "--seed", opts["seed"], "--threads", 1, *extra)
    assert r.stdout.endswith("\n")
    return r.stdout[:-1]


@pytest.mark.parametrize("opts", OPTION_SETS)
def test_text_generation_equals_the_cli(trained, opts):
    root, model, tok = trained
    text = engram.generate(model, tok, PROMPT, 30, **opts)
    assert text  # a model that always stops at once would make the comparison empty
    assert text == cli_text(root, opts)


def test_store_tier_from_python_equals_the_cli(trained):
    root, model, tok = trained
    opts = OPTION_SETS[0]
    want = cli_text(root, opts)
    assert engram.generate(model, tok, PROMPT, 30, tables="dram", **opts) == want
    assert engram.generate(model, tok, PROMPT, 30, tables="cache", cache_bytes=8192, **opts) == want
    assert cli_text(root, opts, "--tables", "file", "--buffered") == want


@pytest.mark.parametrize("opts", OPTION_SETS)
def test_ids_generation_gives_the_texts_ids(trained, opts):
    _, model, tok = trained
    eos = tok.token_to_id("<|eos|>")
    ids = model.generate(tok.encode(PROMPT, False), 30, stop_ids=[] if eos is None else [eos],
                         vocab_limit=tok.vocab_size, **opts)
    assert all(0 <= i < tok.vocab_size for i in ids)
    assert tok.decode(ids) == engram.generate(model, tok, PROMPT, 30, **opts)


def test_temperature_zero_is_greedy_argmax_over_the_models_logits(trained):
    _, model, tok = trained
    prompt = tok.encode(PROMPT, False)
    got = model.generate(prompt, 25, temperature=0.0)
    model.reset_cache()
    for t in prompt:
        logits = model.decode_step(t)
    want = []
    for _ in range(25):
        want.append(int(np.argmax(logits)))
        logits = model.decode_step(want[-1])
    assert got == want
    assert len(set(want)) > 1


def test_seed_changes_the_sample_and_fixes_it(trained):
    _, model, tok = trained
    prompt = tok.encode(PROMPT, False)
    a = model.generate(prompt, 30, temperature=1.0, top_k=0, top_p=1.0, seed=1)
    assert model.generate(prompt, 30, temperature=1.0, top_k=0, top_p=1.0, seed=1) == a
    assert model.generate(prompt, 30, temperature=1.0, top_k=0, top_p=1.0, seed=2) != a


def test_callbacks_see_every_token_in_order_and_can_stop(trained):
    _, model, tok = trained
    prompt = tok.encode(PROMPT, False)
    seen = []
    ids = model.generate(prompt, 20, seed=4, callback=seen.append)
    assert seen == ids and len(ids) == 20
    seen = []
    stopped = model.generate(prompt, 20, seed=4, callback=lambda i: seen.append(i) or len(seen) < 6)
    assert stopped == ids[:6] and seen == stopped

    pieces = []
    text = engram.generate(model, tok, PROMPT, 20, seed=4, stop_at_eos=False,
                           callback=pieces.append)
    assert "".join(pieces) == text and len(pieces) > 1
    short = engram.generate(model, tok, PROMPT, 20, seed=4, stop_at_eos=False,
                            callback=lambda piece: False)
    assert text.startswith(short) and len(short) < len(text)


def test_errors(trained):
    _, model, tok = trained
    prompt = tok.encode(PROMPT, False)
    with pytest.raises(ValueError, match="top_p"):
        model.generate(prompt, 5, top_p=0.0)
    with pytest.raises(ValueError, match='"ssd"'):
        model.generate(prompt, 5, tables="ssd")
    with pytest.raises(IndexError, match="id 320"):
        model.generate([1, 320], 5)
    with pytest.raises(ValueError, match="no tokens"):
        model.generate([], 5)

    def boom(_):
        raise RuntimeError("from the callback")
    with pytest.raises(RuntimeError, match="from the callback"):
        model.generate(prompt, 5, tables="dram", callback=boom)
    # The model is usable (and resident) afterwards.
    assert model.generate(prompt, 5, temperature=0.0) == model.generate(prompt, 5, temperature=0.0)
