// Placeholder: replaced by the real bindings for src/hash.
#include "module.h"
namespace engram::py {
void bind_hash(pybind11::module_&) {}
}  // namespace engram::py
