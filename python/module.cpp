// PYBIND11_MODULE for `engram._engram` (the extension under the `engram` package, see
// python/engram/__init__.py): error translation, then each area's bindings.
#include <pybind11/pybind11.h>

#include "engram/error.h"
#include "module.h"

PYBIND11_MODULE(_engram, m) {
  m.doc() = "engram: conditional memory (DeepSeek Engram) for language models";
  m.attr("__version__") = ENGRAM_VERSION;
  pybind11::register_exception_translator([](std::exception_ptr p) {
    try {
      if (p) std::rethrow_exception(p);
    } catch (const engram::Error& e) {
      switch (e.code()) {
        case engram::Errc::out_of_range:
          PyErr_SetString(PyExc_IndexError, e.what());
          break;
        case engram::Errc::io:
          PyErr_SetString(PyExc_OSError, e.what());
          break;
        default:
          PyErr_SetString(PyExc_ValueError, e.what());
          break;
      }
    }
  });
  engram::py::bind_text(m);
  engram::py::bind_hash(m);
  engram::py::bind_table(m);
  engram::py::bind_nn(m);
  engram::py::bind_store(m);
  engram::py::bind_model(m);
  engram::py::bind_generate(m);  // after bind_model: adds Model.generate
}
