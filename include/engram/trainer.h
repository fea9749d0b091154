// engram/trainer.h: the training loop behind `engram train`, and held-out evaluation.
//
// One step: a batch of seeded windows [B, T+1] from train.bin (WindowSampler: by default every
// window once an epoch in a shuffled order, see engram/token_file.h) ->
// Model::forward/backward -> global gradient clipping (dense and Engram table rows together) ->
// AdamW on dense tensors at lr(step) (linear warm-up, then cosine to min_lr) and sparse row Adam
// on the Engram tables at table_lr_mult x lr(step) (the paper's 5 by default), no weight decay.
//
// Output folder (--out):
//   checkpoint-NNNNNNNN/   a model directory (config.json, model.safetensors, tokenizer.json)
//                          plus optimizer.safetensors (AdamW moments, each table's moments and
//                          per-row step counts) and trainer_state.json (step, tokens, options,
//                          FNV-1a checksums of both safetensors files)
//   latest                 the name of the newest complete checkpoint folder
//   metrics.csv            step,lr,train_loss,val_loss,tokens,elapsed_s (val_loss empty off eval)
//   loss.png               training and held-out loss (plot/plot.h), redrawn at each evaluation
// Kill safety: a checkpoint is written into checkpoint-N.tmp/, synced, renamed to checkpoint-N/,
// and only then `latest` is replaced (write latest.tmp, rename); older checkpoints are removed
// after that. A kill at any moment leaves `latest` naming a complete checkpoint.
// Resume: the model, the optimizer state and the step come from `latest`; the sampler is
// re-seeded and advanced by `step` batches, so a resumed run reproduces the losses of an
// uninterrupted one bit for bit (same thread count: OpenBLAS / OpenMP reductions depend on it).
#pragma once

#include <cstdint>
#include <cstdio>
#include <limits>
#include <string>
#include <vector>

#include "engram/model.h"
#include "engram/token_file.h"

namespace engram {

struct TrainOptions {
  std::string config_path;     // model config JSON; on resume optional, must match the checkpoint
  std::string tokenizer_path;  // tokenizer.json, copied into every checkpoint
  std::string data_dir;        // holds train.bin and val.bin
  std::string out_dir;
  int64_t steps = 100;  // total optimizer steps (the schedule's length)
  int64_t batch = 8;    // B
  int64_t seq = 128;    // T
  float lr = 1e-3f;
  float min_lr_ratio = 0.1f;  // min_lr = lr * min_lr_ratio
  int64_t warmup = 0;
  float clip = 1.0f;  // <= 0: no clipping
  float weight_decay = 0.1f;
  float table_lr_mult = 5.0f;  // Engram tables' learning rate / lr
  SamplingOrder sampling = SamplingOrder::epoch;
  uint64_t seed = 0;             // model init and batch sampling
  int64_t eval_every = 0;        // 0: evaluate only after the last step
  int64_t eval_windows = 32;     // fixed held-out windows, evenly spaced over val.bin
  int64_t checkpoint_every = 0;  // 0: at each evaluation
  int64_t log_every = 10;        // progress line period when stderr is not a terminal
  int64_t stop_after = 0;        // > 0: checkpoint and stop after this many steps of this run
  bool resume = false;
  bool overwrite = false;  // without resume: start over in an out_dir that holds a run
};

struct TrainResult {
  int64_t first_step = 0;     // where this run started (the resumed step, or 0)
  int64_t step = 0;           // steps done in total
  std::vector<float> losses;  // training loss of each step of this run
  float val_loss = std::numeric_limits<float>::quiet_NaN();  // last evaluation
  std::string checkpoint;  // the folder of the last checkpoint written
};

// Trains as described above; progress lines go to `progress` (nullptr: silent). Errors
// (Errc::invalid_argument / mismatch / parse / io) name the option, file or key at fault and are
// thrown before any checkpoint is touched.
TrainResult train(const TrainOptions& options, std::FILE* progress);

// Whether out_dir holds a run (`latest`, a checkpoint-* folder or metrics.csv). Without resume
// and without overwrite, train() refuses such a folder (Errc::invalid_argument naming it and both
// flags) before touching anything; with overwrite it removes that run when training starts.
bool holds_run(const std::string& out_dir);
void check_out_dir(const TrainOptions& options);

struct EvalResult {
  double loss = 0;      // mean cross-entropy per target token
  int64_t windows = 0;  // windows of T + 1 tokens evaluated
  int64_t tokens = 0;   // target tokens
};

// Mean cross-entropy of `model` over evaluation windows of `file` (TokenFile::eval_windows):
// all of them when max_windows <= 0, else max_windows evenly spaced ones; batches of B rows.
// Errc::invalid_argument when T exceeds the model's max_seq_len or the file has no window, and
// Errc::mismatch when the file's vocabulary is larger than the model's.
EvalResult evaluate(Model& model, const TokenFile& file, int64_t B, int64_t T,
                    int64_t max_windows = 0);

// A model directory (holds config.json), or a training output folder whose `latest` names one:
// returns the model directory. Errc::io when neither.
std::string resolve_model_dir(const std::string& dir);

class Tokenizer;
// A training checkpoint's trainer_state.json records tokenizer_digest() of the tokenizer it was
// trained with: Errc::mismatch naming both digests when `tokenizer` (from `tokenizer_origin`) is
// another. A model directory without that record (not written by train, or older) is accepted.
void verify_checkpoint_tokenizer(const std::string& model_dir, const Tokenizer& tokenizer,
                                 const std::string& tokenizer_origin);

// Sets the OpenMP and OpenBLAS thread counts (threads <= 0: leave the defaults).
void set_compute_threads(int threads);

}  // namespace engram
