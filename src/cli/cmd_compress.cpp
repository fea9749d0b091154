// Placeholder: replaced by the real subcommand.
#include "cli/commands.h"
namespace engram::cli {
void add_compress_command(CLI::App&) {}
}  // namespace engram::cli
