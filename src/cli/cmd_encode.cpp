// Placeholder: replaced by the real subcommand.
#include "cli/commands.h"
namespace engram::cli {
void add_encode_commands(CLI::App&) {}
}  // namespace engram::cli
