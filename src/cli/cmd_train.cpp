// `engram train`: trains a model from a config on token files, with periodic held-out
// evaluation, metrics.csv and kill-safe checkpoints (layout and guarantees in engram/trainer.h).
//
//   engram train --config configs/baseline_d128.json --tokenizer tok.json --data data/brown
//       --out runs/base --steps 300 --batch 16 --seq 128 --lr 1e-3 --seed 0 --threads 2
//       [--resume | --overwrite] [--eval-every 50] [--warmup 30] [--clip 1] [--weight-decay 0.1]
//       [--table-lr-mult 5] [--sampling epoch|random]
//   engram train --config C --tokenizer tok.json --data my.txt [more.txt texts/] --out runs/my
//       [--val-fraction 0.1]
// --data is a token folder (holds train.bin, from `engram data tokenize`) or UTF-8 text files
// and folders, which are tokenized first into OUT/data (train.bin, val.bin; held-out rule as
// `engram data tokenize`, engram/tokenize_corpus.h) and trained on from there.
// An OUT that holds a run is refused unless --resume continues it or --overwrite replaces it; an
// OUT this command creates is removed again when it fails before its first checkpoint.
#include <cstdio>
#include <filesystem>
#include <map>

#include "cli/commands.h"
#include "cli/tokenize_dataset.h"
#include "engram/error.h"
#include "engram/trainer.h"
#include "util/remove_unless_committed.h"

namespace engram::cli {
namespace {

struct DataArgs {
  std::vector<std::string> inputs;
  double val_fraction = kDefaultValFraction;
  CLI::Option* val_fraction_option = nullptr;
  std::string separator = "<|eos|>";
};

// A single folder that holds train.bin is a token folder; anything else is text to tokenize.
bool is_token_folder(const std::vector<std::string>& inputs) {
  namespace fs = std::filesystem;
  std::error_code ec;
  return inputs.size() == 1 && fs::is_directory(inputs[0], ec) &&
         fs::exists(fs::path(inputs[0]) / "train.bin", ec);
}

// The token folder to train on: --data itself, or OUT/data made from the text inputs.
std::string prepare_data(const DataArgs& d, const TrainOptions& o) {
  if (is_token_folder(d.inputs)) {
    if (d.val_fraction_option->count() > 0)
      fail(Errc::invalid_argument, "--val-fraction applies to text inputs, but --data ",
           d.inputs[0], " is a token folder (it holds train.bin)");
    return d.inputs[0];
  }
  DatasetOptions options;
  options.corpus.inputs = d.inputs;
  if (d.val_fraction_option->count() > 0) options.val_fraction = d.val_fraction;
  const std::string dir = (std::filesystem::path(o.out_dir) / "data").string();
  tokenize_to_folder(o.tokenizer_path, d.separator, options, dir, stderr);
  return dir;
}

}  // namespace

void add_train_command(CLI::App& app) {
  auto* cmd = app.add_subcommand("train", "train a model (AdamW + sparse Adam for Engram tables)");
  auto o = std::make_shared<TrainOptions>();
  auto threads = std::make_shared<int>(0);
  cmd->add_option("--config", o->config_path, "model config JSON (optional with --resume)");
  cmd->add_option("--tokenizer", o->tokenizer_path, "tokenizer.json (copied into checkpoints)")
      ->required();
  auto d = std::make_shared<DataArgs>();
  cmd->add_option("--data", d->inputs,
                  "folder with train.bin and val.bin, or UTF-8 text files and folders "
                  "(tokenized into OUT/data first)")
      ->required();
  d->val_fraction_option = cmd->add_option(
      "--val-fraction", d->val_fraction,
      "text inputs: hold out the last F of the token stream (default: every 10th file from 10 "
      "files on, else the last 0.1)");
  cmd->add_option("--separator", d->separator, "text inputs: token written after each document")
      ->capture_default_str();
  cmd->add_option("--out", o->out_dir, "output folder (checkpoints, metrics.csv)")->required();
  cmd->add_option("--steps", o->steps, "total optimizer steps")->capture_default_str();
  cmd->add_option("--batch", o->batch, "sequences per step (B)")->capture_default_str();
  cmd->add_option("--seq", o->seq, "tokens per sequence (T)")->capture_default_str();
  cmd->add_option("--lr", o->lr, "peak learning rate")->capture_default_str();
  cmd->add_option("--min-lr-ratio", o->min_lr_ratio, "cosine floor as a fraction of --lr")
      ->capture_default_str();
  cmd->add_option("--warmup", o->warmup, "linear warm-up steps")->capture_default_str();
  cmd->add_option("--clip", o->clip, "global gradient norm limit (<= 0: none)")
      ->capture_default_str();
  cmd->add_option("--weight-decay", o->weight_decay, "AdamW decay of projection matrices")
      ->capture_default_str();
  cmd->add_option("--table-lr-mult", o->table_lr_mult,
                  "Engram tables' learning rate as a multiple of --lr")
      ->capture_default_str();
  cmd->add_option("--sampling", o->sampling,
                  "window order: epoch (each window once a pass, shuffled) or random")
      ->transform(CLI::CheckedTransformer(std::map<std::string, SamplingOrder>{
          {"epoch", SamplingOrder::epoch}, {"random", SamplingOrder::random}}))
      ->capture_default_str();
  cmd->add_option("--seed", o->seed, "model init and batch sampling seed")->capture_default_str();
  cmd->add_option("--threads", *threads, "OpenMP / OpenBLAS threads (0: default)")
      ->capture_default_str();
  cmd->add_option("--eval-every", o->eval_every, "held-out evaluation period (0: at the end)")
      ->capture_default_str();
  cmd->add_option("--eval-windows", o->eval_windows, "fixed held-out windows per evaluation")
      ->capture_default_str();
  cmd->add_option("--checkpoint-every", o->checkpoint_every,
                  "checkpoint period (0: at each evaluation and at the end)")
      ->capture_default_str();
  cmd->add_option("--log-every", o->log_every, "progress line period when stderr is no TTY")
      ->capture_default_str();
  cmd->add_option("--stop-after", o->stop_after,
                  "checkpoint and stop after this many steps of this run (0: run to --steps)")
      ->capture_default_str();
  auto* resume = cmd->add_flag("--resume", o->resume, "continue from OUT/latest (same options)");
  cmd->add_flag("--overwrite", o->overwrite,
                "start over in an OUT that holds a run, replacing its checkpoints and metrics")
      ->excludes(resume);
  cmd->callback([o, d, threads] {
    set_compute_threads(*threads);
    check_out_dir(*o);  // before OUT/data is written
    RemoveUnlessCommitted made_out = guard_new_path(o->out_dir);
    const TrainResult r = [&] {
      try {
        o->data_dir = prepare_data(*d, *o);
        return train(*o, stderr);
      } catch (...) {
        // A checkpoint is worth keeping: --resume continues from it.
        std::error_code ec;
        if (std::filesystem::exists(std::filesystem::path(o->out_dir) / "latest", ec))
          made_out.commit();
        throw;
      }
    }();
    made_out.commit();
    std::printf("steps: %lld\n", static_cast<long long>(r.step));
    if (!r.losses.empty()) std::printf("train_loss: %.6f\n", double(r.losses.back()));
    if (r.val_loss == r.val_loss) std::printf("val_loss: %.6f\n", double(r.val_loss));
    std::printf("checkpoint: %s\n", r.checkpoint.c_str());
  });
}

}  // namespace engram::cli
