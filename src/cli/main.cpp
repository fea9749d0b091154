// engram: the command-line tool. Subcommands register themselves (commands.h); this file
// parses, dispatches, and turns an engram::Error into a message on stderr and exit code 1.
#include <cstdio>
#include <exception>

#include "cli/commands.h"
#include "engram/error.h"

int main(int argc, char** argv) {
  CLI::App app{"engram: conditional memory (DeepSeek Engram) for language models"};
  app.require_subcommand(1);
  engram::cli::add_encode_commands(app);
  engram::cli::add_compress_command(app);
  engram::cli::add_hash_command(app);
  engram::cli::add_tokenizer_command(app);
  engram::cli::add_data_command(app);
  CLI::App* bench = app.add_subcommand("bench", "benchmarks");
  bench->require_subcommand(1);
  engram::cli::add_bench_store_command(*bench);
  engram::cli::add_bench_decode_command(*bench);
  engram::cli::add_train_command(app);
  engram::cli::add_eval_command(app);
  engram::cli::add_generate_command(app);
  engram::cli::add_plot_command(app);
  engram::cli::add_demo_command(app);
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    return app.exit(e);
  } catch (const engram::Error& e) {
    std::fprintf(stderr, "engram: %s: %s\n", engram::errc_name(e.code()), e.what());
    return 1;
  } catch (const std::exception& e) {
    std::fprintf(stderr, "engram: %s\n", e.what());
    return 1;
  }
  return 0;
}
