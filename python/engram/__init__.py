"""engram: conditional memory (DeepSeek Engram) for language models.

The classes and functions are implemented in C++ (the extension module engram._engram, built from
python/*.cpp) and re-exported here, so user code writes ``import engram`` and
``engram.TableStore.open(...)``. Type stubs are in _engram.pyi (the package is marked py.typed).

Main entry points:
  Tokenizer, TokenCompressor              text: HF tokenizer.json, vocabulary compression
  EngramConfig, NgramHasher, HashState    n-gram hashing, bit-exact with the reference
  EngramLayer, EngramLayerCore            paper-form layer: forward returns the Engram output
                                          alone (the caller adds the residual), with backward
  EngramLayerV41                          DeepSeek-V4.1 form: forward_residual returns
                                          hidden + gate * value
  TableStore, PrefetchTicket              tables served from a checkpoint by a storage tier
  Model, AdamW, EngramTableAdam, ...      the transformer and its training
Errors: ValueError (bad input), IndexError (id out of range), OSError (I/O).
"""

from . import _engram
from ._engram import *  # noqa: F401,F403  (the public API; names listed in __all__)
from ._engram import __version__

__all__ = sorted(name for name in dir(_engram) if not name.startswith("_"))

# The classes report themselves as engram.X (not engram._engram.X) in reprs and help().
for _name in __all__:
    _obj = getattr(_engram, _name)
    if isinstance(_obj, type):
        _obj.__module__ = __name__
del _name, _obj
