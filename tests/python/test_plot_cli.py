"""`engram plot`: the PNG it writes is read back by a PNG reader written from the specification
(tests/python/png_reader.py: chunk CRCs, IHDR, zlib, scanline filters): a valid image of the
promised size, the same for the same runs and different for different runs; bad inputs fail with
a message naming file and line.
"""

import pytest

import png_reader
from asset_helpers import requires
from cli_helpers import ENGRAM, engram as run_engram, training_inputs


pytestmark = requires(ENGRAM.exists(), f"{ENGRAM} not built")


def engram(*args):
    """Runs engram; these tests check the exit status themselves."""
    return run_engram(*args, check=False)


def metrics(path, losses, val_every=5):
    lines = ["step,lr,train_loss,val_loss,tokens,elapsed_s"]
    for i, loss in enumerate(losses, 1):
        val = f"{loss + 0.1:.4f}" if i % val_every == 0 else ""
        lines.append(f"{i},0.001,{loss:.4f},{val},{i * 2048},{i * 0.5:.3f}")
    path.write_text("\n".join(lines) + "\n")
    return path


def plot(out, *runs, labels=None):
    args = ["plot", "--metrics", *runs, "--output", out, "--title", "test figure"]
    r = engram(*args, *(["--labels", labels] if labels else []))
    assert r.returncode == 0, r.stderr
    assert not out.with_name(out.name + ".tmp").exists()
    width, height, bpp, rows = png_reader.decode(out.read_bytes())
    assert (width, height) == (960, 600) and bpp in (3, 4)
    return rows


def test_plot_writes_a_png_that_follows_the_runs(tmp_path):
    a = metrics(tmp_path / "a.csv", [9 - 0.1 * i for i in range(40)])
    b = metrics(tmp_path / "b.csv", [9 - 0.12 * i for i in range(40)])
    two = plot(tmp_path / "two.png", a, b, labels="base,engram")
    # The same inputs give the same file; another run, or one run fewer, another figure.
    plot(tmp_path / "again.png", a, b, labels="base,engram")
    assert (tmp_path / "again.png").read_bytes() == (tmp_path / "two.png").read_bytes()
    assert plot(tmp_path / "one.png", a) != two
    c = metrics(tmp_path / "c.csv", [9 - 0.05 * i for i in range(40)])
    assert plot(tmp_path / "other.png", a, c, labels="base,engram") != two


def test_bad_inputs_fail_with_a_message(tmp_path):
    a = metrics(tmp_path / "a.csv", [3.0, 2.5, 2.0, 1.5, 1.0])
    out = tmp_path / "fig.png"
    r = engram("plot", "--metrics", a, "--labels", "x,y", "--output", out)
    assert r.returncode == 1 and "--labels names 2 runs but --metrics gives 1" in r.stderr
    bad = tmp_path / "bad.csv"
    bad.write_text("step,lr,train_loss,val_loss,tokens,elapsed_s\n1,0.1,oops,,10,1\n")
    r = engram("plot", "--metrics", bad, "--output", out)
    assert r.returncode == 1 and f"{bad}:2: column train_loss" in r.stderr
    r = engram("plot", "--metrics", tmp_path / "missing.csv", "--output", out)
    assert r.returncode == 1 and "missing.csv" in r.stderr
    r = engram("plot", "--metrics", a, "--output", tmp_path / "no" / "dir" / "fig.png")
    assert r.returncode == 1 and "fig.png" in r.stderr
    assert not out.exists()


TINY = {"vocab_size": 300, "hidden_size": 32, "n_layers": 2, "n_heads": 2, "ffn_hidden": 48,
        "max_seq_len": 32}


def test_trainer_redraws_loss_png_and_survives_a_plot_failure(tmp_path):
    corpus = tmp_path / "corpus"
    corpus.mkdir()
    words = "the cat sat on a mat and dog ran to big red house".split()
    for i in range(20):
        text = "\n".join(" ".join(words[(i + j + k) % len(words)] for k in range(7)) + "."
                         for j in range(30))
        (corpus / f"d{i:02d}.txt").write_text(text)
    training_inputs(tmp_path, corpus, TINY)  # fails the test if either command fails

    def train(out):
        return engram("train", "--config", tmp_path / "cfg.json", "--tokenizer",
                      tmp_path / "tok.json", "--data", tmp_path / "data", "--out", out,
                      "--steps", 6, "--batch", 2, "--seq", 16, "--eval-every", 3,
                      "--eval-windows", 2, "--threads", 1)

    r = train(tmp_path / "ok")
    assert r.returncode == 0, r.stderr
    w, h, _, _ = png_reader.decode((tmp_path / "ok" / "loss.png").read_bytes())
    assert (w, h) == (960, 600)
    # A figure that cannot be written (its temporary name is taken by a folder) is only a
    # warning: training, metrics and checkpoints go on, and no loss.png appears.
    (tmp_path / "bad" / "loss.png.tmp").mkdir(parents=True)
    r = train(tmp_path / "bad")
    assert r.returncode == 0, r.stderr
    assert not (tmp_path / "bad" / "loss.png").exists()
    assert (tmp_path / "bad" / "latest").read_text().strip() == "checkpoint-00000006"
    assert (tmp_path / "bad" / "metrics.csv").read_text().count("\n") == 7
