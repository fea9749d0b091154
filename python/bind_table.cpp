// Placeholder: replaced by the real bindings for src/table.
#include "module.h"
namespace engram::py {
void bind_table(pybind11::module_&) {}
}  // namespace engram::py
