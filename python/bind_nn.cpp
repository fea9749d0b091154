// Placeholder: replaced by the real bindings for src/nn.
#include "module.h"
namespace engram::py {
void bind_nn(pybind11::module_&) {}
}  // namespace engram::py
