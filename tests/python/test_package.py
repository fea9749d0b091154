"""`import engram` as a Python user meets it: a package over the extension engram._engram whose
stubs (_engram.pyi) name exactly what the extension exposes, whose every class, method, property
and function has a docstring, whose pybind11 signatures name every argument (help() documents each),
and whose every class has a __repr__ of its own that shows its key attributes.

The stub comparison is by name, both ways: a binding added without its stub, or a stub left behind
by a removed binding, fails here with the names listed. Types are checked by mypy (py_mypy)."""
import ast
import inspect
import os
import re
from typing import Any

import numpy as np
import pytest

import engram
from engram import _engram

PKG_DIR = os.path.dirname(os.path.abspath(engram.__file__))
STUB = os.path.join(PKG_DIR, "_engram.pyi")

# Dunder members that are part of a class's API and so must be documented and stubbed; the rest
# (__repr__, __copy__, pybind11's internals) are protocol, not API.
API_DUNDERS = {"__init__", "__call__"}


def public_names(module: Any) -> set[str]:
    return {n for n in dir(module) if not n.startswith("_")}


def classes() -> list[tuple[str, type]]:
    return [(n, getattr(_engram, n)) for n in sorted(public_names(_engram))
            if isinstance(getattr(_engram, n), type)]


def functions() -> list[tuple[str, Any]]:
    return [(n, getattr(_engram, n)) for n in sorted(public_names(_engram))
            if not isinstance(getattr(_engram, n), type)]


def members(cls: type) -> dict[str, Any]:
    """The members a class itself defines (not inherited), as stored in its __dict__. A class
    bound without a constructor holds CPython's slot wrapper for __init__ (it raises TypeError):
    not part of the API."""
    slot_wrapper = type(object.__init__)
    return {n: v for n, v in vars(cls).items()
            if not n.startswith("_")
            or (n in API_DUNDERS and callable(v) and not isinstance(v, slot_wrapper))}


def callable_members(cls: type) -> list[tuple[str, Any]]:
    out = []
    for name, v in members(cls).items():
        if isinstance(v, property):
            continue
        out.append((name, v.__func__ if isinstance(v, staticmethod) else v))
    return out


def stub_tree() -> ast.Module:
    with open(STUB, encoding="utf-8") as f:
        return ast.parse(f.read(), STUB)


def stub_names() -> tuple[set[str], dict[str, set[str]]]:
    """(module-level names, {class: member names}) declared in _engram.pyi."""
    top: set[str] = set()
    cls_members: dict[str, set[str]] = {}
    for node in stub_tree().body:
        if isinstance(node, (ast.FunctionDef, ast.ClassDef)):
            top.add(node.name)
        elif isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name):
            top.add(node.target.id)
        if isinstance(node, ast.ClassDef):
            cls_members[node.name] = {
                m.name for m in node.body if isinstance(m, ast.FunctionDef)
                and (not m.name.startswith("_") or m.name in API_DUNDERS)}
    return {n for n in top if not n.startswith("_")}, cls_members


def doc_texts(fn: Any) -> list[str]:
    """The prose of each overload of a pybind11 function: its docstring minus the signature
    lines pybind11 writes. An entry is empty when that overload was bound without a docstring."""
    doc = inspect.getdoc(fn) or ""
    name = fn.__name__
    sig = re.compile(r"^(\d+\. )?" + re.escape(name) + r"\(.*\)( -> .*)?$")
    if doc.startswith("Overloaded function."):
        parts = re.split(r"^\d+\. " + re.escape(name) + r"\(.*$", doc, flags=re.M)[1:]
        return [p.strip() for p in parts]
    lines = [ln for ln in doc.splitlines() if not sig.match(ln)]
    return ["\n".join(lines).strip()]


def signatures(fn: Any) -> list[str]:
    doc = fn.__doc__ or ""
    name = fn.__name__
    return re.findall(r"^(?:\d+\. )?" + re.escape(name) + r"(\(.*\)) -> ", doc, flags=re.M)


def test_engram_is_a_package_over_the_extension() -> None:
    assert hasattr(engram, "__path__"), "engram should be a package, not the bare extension"
    assert os.path.dirname(os.path.abspath(_engram.__file__)) == PKG_DIR
    for name in ("__init__.py", "_engram.pyi", "py.typed"):
        assert os.path.isfile(os.path.join(PKG_DIR, name)), f"{name} missing from {PKG_DIR}"
    assert sorted(engram.__all__) == sorted(public_names(_engram))
    for name in engram.__all__:
        assert getattr(engram, name) is getattr(_engram, name)
    assert re.fullmatch(r"\d+\.\d+\.\d+", engram.__version__), engram.__version__
    assert engram.__doc__ and "engram" in engram.__doc__
    assert engram.TableStore.__module__ == "engram"


def test_build_copy_of_the_package_matches_the_source() -> None:
    """CMake copies python/engram/ next to the extension; a stale copy would test old stubs."""
    src = os.environ.get("ENGRAM_SOURCE_DIR")
    if not src:
        pytest.skip("ENGRAM_SOURCE_DIR is not set")
    src_dir = os.path.join(src, "python", "engram")
    for name in os.listdir(src_dir):
        if name.endswith((".py", ".pyi")) or name == "py.typed":
            with open(os.path.join(src_dir, name), "rb") as a, \
                    open(os.path.join(PKG_DIR, name), "rb") as b:
                assert a.read() == b.read(), f"{PKG_DIR}/{name} differs from {src_dir}/{name}"


def test_stubs_name_what_the_extension_exposes() -> None:
    stub_top, stub_classes = stub_names()
    ext_top = public_names(_engram)
    assert not ext_top - stub_top, f"in the extension, not in _engram.pyi: {sorted(ext_top - stub_top)}"
    assert not stub_top - ext_top, f"in _engram.pyi, not in the extension: {sorted(stub_top - ext_top)}"
    for name, cls in classes():
        assert name in stub_classes, f"{name} is a class in the extension, not in _engram.pyi"
        have, declared = set(members(cls)), stub_classes[name]
        assert not have - declared, f"{name}: not in _engram.pyi: {sorted(have - declared)}"
        assert not declared - have, f"{name}: in _engram.pyi only: {sorted(declared - have)}"


def test_every_class_method_property_and_function_has_a_docstring() -> None:
    missing = []
    for name, cls in classes():
        if not (cls.__doc__ or "").strip():
            missing.append(name)
        for mname, fn in callable_members(cls):
            if not all(doc_texts(fn)):
                missing.append(f"{name}.{mname}")
        for pname, prop in members(cls).items():
            # pybind11 gives an undocumented property no docstring at all.
            if isinstance(prop, property) and not (prop.__doc__ or "").strip():
                missing.append(f"{name}.{pname}")
    for name, fn in functions():
        if not all(doc_texts(fn)):
            missing.append(name)
    assert not missing, f"no docstring: {missing}"


def test_every_argument_has_a_name() -> None:
    """pybind11 calls an argument bound without py::arg `arg0`, `arg1`...: help() would then not
    say what it is."""
    unnamed = []
    for name, cls in classes():
        for mname, fn in callable_members(cls):
            for sig in signatures(fn):
                if re.search(r"\barg\d+:", sig):
                    unnamed.append(f"{name}.{mname}{sig}")
    for name, fn in functions():
        for sig in signatures(fn):
            if re.search(r"\barg\d+:", sig):
                unnamed.append(f"{name}{sig}")
    assert not unnamed, "arguments without a name:\n" + "\n".join(unnamed)


def test_help_documents_each_argument_of_table_store_open() -> None:
    text = inspect.getdoc(engram.TableStore.open) or ""
    for arg in ("path", "tier", "cache_bytes", "cache_policy", "direct", "shared_path"):
        assert re.search(rf"\b{arg}: ", text.split("\n", 1)[1]), f"open's docstring skips {arg}"


def test_every_class_has_its_own_repr() -> None:
    for name, cls in classes():
        owner = next(c for c in cls.__mro__ if "__repr__" in vars(c))
        assert owner.__module__ == "engram", f"{name} uses {owner.__name__}'s default __repr__"


def test_reprs_show_key_attributes(tmp_path: Any) -> None:
    assert repr(engram.HashState()) == "HashState(seen=0)"
    assert repr(engram.LrSchedule(0.001, 0.0001, 10, 100)) == \
        "LrSchedule(max_lr=0.001, min_lr=0.0001, warmup=10, total=100)"
    assert repr(engram.SparseRowAdam(7, 32)) == "SparseRowAdam(rows=7, width=32)"
    layer = engram.EngramLayerCore([5, 7], row_width=4, hidden_size=8, hc_mult=2)
    assert repr(layer) == ("EngramLayerCore(primes=[5, 7], row_width=4, hidden_size=8, "
                           "hc_mult=2, kernel_size=4, dilation=3)")
    compressor = engram.TokenCompressor.from_lookup(np.array([0, 1, 0, 2], np.int64))
    assert repr(compressor) == "TokenCompressor(vocab_size=4, compressed_vocab_size=3)"
    d = str(tmp_path / "v41")
    engram.write_synthetic_v41(d, layer_ids=[1, 3], vocab_size=50, n_heads=2, head_dim=64,
                               hidden_size=8, hc_mult=2, shards=1)
    store = engram.TableStore.open(d, tier="dram")
    assert repr(store) == "TableStore(tier='dram', layer_ids=[1, 3], columns=6, head_dim=64)"
    ticket = store.prefetch({3: np.zeros((1, 6), np.int64)})
    assert repr(ticket) == "PrefetchTicket(layer_ids=[3])"
    ticket.wait(3)
    layer_v41 = engram.EngramLayerV41.from_checkpoint(d, 1)
    assert repr(layer_v41) == "EngramLayerV41(hidden_size=8, hc_mult=2, num_columns=6, head_dim=64)"


def test_the_two_layer_forms_name_what_forward_returns() -> None:
    """EngramLayer(Core).forward returns the Engram branch alone; the V4.1 form returns the
    residual stream and says so in its method names, so neither can be mistaken for the other."""
    assert hasattr(engram.EngramLayerCore, "forward")
    assert not hasattr(engram.EngramLayerV41, "forward")
    assert not hasattr(engram.EngramLayerV41, "forward_rows")
    assert "residual" in (inspect.getdoc(engram.EngramLayerV41.forward_residual) or "")
    hc, d = 2, 8
    layer = engram.EngramLayerCore([5, 7], row_width=4, hidden_size=d, hc_mult=hc)
    hidden = np.random.default_rng(0).standard_normal((1, 3, hc, d)).astype(np.float32)
    out = layer.forward(hidden, np.zeros((1, 3, 2), np.int64))
    # The branch alone: with fresh parameters it is small (about 1e-3), nowhere near hidden.
    assert out.shape == hidden.shape
    assert not np.allclose(out, hidden, atol=0.5)
