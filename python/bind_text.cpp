// Placeholder: replaced by the real bindings for src/text.
#include "module.h"
namespace engram::py {
void bind_text(pybind11::module_&) {}
}  // namespace engram::py
