// The extension engram._engram (re-exported by the package python/engram/, typed by its
// _engram.pyi) is assembled from one binding file per area; each defines one
// bind_<area>(module) function. A binding added here needs its stub in _engram.pyi, a docstring
// and named arguments (tests/python/test_package.py checks all three). Errors: engram::Error maps
// to ValueError (parse, mismatch, invalid argument, unsupported), IndexError (out of range),
// OSError (I/O).
#pragma once

#include <pybind11/pybind11.h>

namespace engram::py {
void bind_text(pybind11::module_& m);   // TokenCompressor, Tokenizer   (bind_text.cpp)
void bind_hash(pybind11::module_& m);   // NgramHasher                  (bind_hash.cpp)
void bind_table(pybind11::module_& m);  // row formats                  (bind_table.cpp)
void bind_nn(pybind11::module_& m);     // EngramLayer                  (bind_nn.cpp)
void bind_store(pybind11::module_& m);  // TableStore                   (bind_store.cpp)
void bind_model(pybind11::module_& m);  // Transformer, training      (bind_model.cpp)
void bind_generate(pybind11::module_& m);  // Model.generate, generate (bind_generate.cpp)
}  // namespace engram::py
