// Placeholder: replaced by the real bindings for src/model.
#include "module.h"
namespace engram::py {
void bind_model(pybind11::module_&) {}
}  // namespace engram::py
