// The `engram` command's subcommands. Each lives in its own file (cmd_<name>.cpp) and registers
// itself on the CLI11 app; main.cpp only calls the registrations and maps errors to exit codes.
#pragma once

#include <CLI/CLI.hpp>

namespace engram::cli {

void add_encode_commands(CLI::App& app);    // encode, decode        (cmd_encode.cpp)
void add_compress_command(CLI::App& app);   // compress              (cmd_compress.cpp)
void add_hash_command(CLI::App& app);       // hash                  (cmd_hash.cpp)
void add_tokenizer_command(CLI::App& app);  // tokenizer train       (cmd_tokenizer.cpp)
void add_data_command(CLI::App& app);       // data tokenize/text/info (cmd_data.cpp)
// The benchmarks register under the `bench` group that main.cpp creates.
void add_bench_store_command(CLI::App& bench);   // bench store      (cmd_bench_store.cpp)
void add_bench_decode_command(CLI::App& bench);  // bench decode     (cmd_bench_decode.cpp)
void add_train_command(CLI::App& app);     // train                 (cmd_train.cpp)
void add_eval_command(CLI::App& app);      // eval                  (cmd_eval.cpp)
void add_generate_command(CLI::App& app);  // generate              (cmd_generate.cpp)
void add_plot_command(CLI::App& app);      // plot                  (cmd_plot.cpp)
void add_demo_command(CLI::App& app);      // demo                  (cmd_demo.cpp)

}  // namespace engram::cli
