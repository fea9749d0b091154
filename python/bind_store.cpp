// Placeholder: replaced by the real bindings for src/store.
#include "module.h"
namespace engram::py {
void bind_store(pybind11::module_&) {}
}  // namespace engram::py
