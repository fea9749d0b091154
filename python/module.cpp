// PYBIND11_MODULE for `engram._engram` (the extension under the `engram` package, see
// python/engram/__init__.py): error translation, then each area's bindings.
#include <pybind11/pybind11.h>

#include <cstring>

#include "engram/error.h"
#include "module.h"

namespace {

// Messages quote bytes from the input (a key, a token, a path). PyErr_SetString decodes the
// message as strict UTF-8, and a message with an invalid byte would reach Python as a different,
// empty error: decode with backslashreplace so every message arrives, the bad byte as \xNN.
void set_error(PyObject* type, const char* message) {
  PyObject* text = PyUnicode_DecodeUTF8(message, static_cast<Py_ssize_t>(std::strlen(message)),
                                        "backslashreplace");
  if (!text) return;  // the decoder's own error (memory) is set and is what Python sees
  PyErr_SetObject(type, text);
  Py_DECREF(text);
}

}  // namespace

PYBIND11_MODULE(_engram, m) {
  m.doc() = "engram: conditional memory (DeepSeek Engram) for language models";
  m.attr("__version__") = ENGRAM_VERSION;
  pybind11::register_exception_translator([](std::exception_ptr p) {
    try {
      if (p) std::rethrow_exception(p);
    } catch (const engram::Error& e) {
      switch (e.code()) {
        case engram::Errc::out_of_range:
          set_error(PyExc_IndexError, e.what());
          break;
        case engram::Errc::io:
          set_error(PyExc_OSError, e.what());
          break;
        default:
          set_error(PyExc_ValueError, e.what());
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
