// `engram train`: trains a model from a config on token files, with periodic held-out
// evaluation, metrics.csv and kill-safe checkpoints (layout and guarantees in engram/trainer.h).
//
//   engram train --config configs/baseline_d128.json --tokenizer tok.json --data data/brown
//       --out runs/base --steps 300 --batch 16 --seq 128 --lr 1e-3 --seed 0 --threads 2
//       [--resume] [--eval-every 50] [--warmup 30] [--clip 1] [--weight-decay 0.1]
//       [--table-lr-mult 5] [--sampling epoch|random]
#include <cstdio>
#include <map>

#include "cli/commands.h"
#include "engram/trainer.h"

namespace engram::cli {

void add_train_command(CLI::App& app) {
  auto* cmd = app.add_subcommand("train", "train a model (AdamW + sparse Adam for Engram tables)");
  auto o = std::make_shared<TrainOptions>();
  auto threads = std::make_shared<int>(0);
  cmd->add_option("--config", o->config_path, "model config JSON (optional with --resume)");
  cmd->add_option("--tokenizer", o->tokenizer_path, "tokenizer.json (copied into checkpoints)")
      ->required();
  cmd->add_option("--data", o->data_dir, "folder with train.bin and val.bin")->required();
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
      ->transform(CLI::CheckedTransformer(
          std::map<std::string, SamplingOrder>{{"epoch", SamplingOrder::epoch},
                                               {"random", SamplingOrder::random}}))
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
  cmd->add_flag("--resume", o->resume, "continue from OUT/latest (same options)");
  cmd->callback([o, threads] {
    set_compute_threads(*threads);
    const TrainResult r = train(*o, stderr);
    std::printf("steps: %lld\n", static_cast<long long>(r.step));
    if (!r.losses.empty()) std::printf("train_loss: %.6f\n", double(r.losses.back()));
    if (r.val_loss == r.val_loss) std::printf("val_loss: %.6f\n", double(r.val_loss));
    std::printf("checkpoint: %s\n", r.checkpoint.c_str());
  });
}

}  // namespace engram::cli
