// engram/optim.h: optimizers and schedules for training on CPU.
//
// - AdamW over dense tensors, with decoupled weight decay exactly as torch.optim.AdamW:
//     p *= 1 - lr * wd  (only tensors with weight_decay: projection matrices, not norms or
//     embeddings), m = b1 m + (1 - b1) g, v = b2 v + (1 - b2) g^2,
//     p -= lr / (1 - b1^t) * m / (sqrt(v) / sqrt(1 - b2^t) + eps), t = global step.
// - clip_grad_norm: global L2 norm over a set of gradients (accumulated in double), scaled by
//   max_norm / (norm + 1e-6) when above max_norm, as torch.nn.utils.clip_grad_norm_.
// - LrSchedule: linear warm-up from max_lr / warmup to max_lr over `warmup` steps, then cosine
//   decay to min_lr at `total` steps, min_lr after.
// - SparseRowAdam: Adam (no weight decay) for embedding tables (the Engram tables) that touches
//   only the rows of a batch. State per row: m, v (width floats each) and a step count. The bias
//   correction uses the ROW's step count, not the global step: n-gram use is Zipfian, and a row
//   first seen at global step 10,000 would otherwise get bias correction ~1 on a moment that
//   holds only (1 - b1) g, i.e. a first update ~10x too small (with b1 = 0.9).
// Every step is deterministic: fixed loop orders, no atomics.
#pragma once

#include <cstdint>
#include <span>
#include <vector>

#include "engram/model.h"

namespace engram {

struct AdamWOptions {
  float beta1 = 0.9f;
  float beta2 = 0.95f;
  float eps = 1e-8f;
  float weight_decay = 0.1f;
};

class AdamW {
 public:
  // The spans must stay valid for the optimizer's lifetime (the model's parameters do).
  AdamW(std::vector<ParamSpan> params, const AdamWOptions& options);
  void step(float lr);
  int64_t steps() const { return t_; }
  // State for checkpoints: both moments (all tensors, concatenated in order) and the step count.
  std::span<float> first_moment() { return m_; }
  std::span<float> second_moment() { return v_; }
  void set_steps(int64_t t) { t_ = t; }

 private:
  std::vector<ParamSpan> params_;
  std::vector<int64_t> offsets_;  // where each tensor's state starts in m_, v_
  std::vector<float> m_, v_;
  AdamWOptions opt_;
  int64_t t_ = 0;
};

// The global L2 norm over exactly the buffers in `grads`, taken together, before clipping;
// when it exceeds max_norm, every one of them is scaled in place by max_norm / (norm + 1e-6)
// (max_norm <= 0: no clipping, norm only). It covers nothing else: a model's gradients are
// clipped with clip_grad_norm(Model&, ...), which passes every one of them.
float clip_grad_norm(std::span<const std::span<float>> grads, float max_norm);
// Model::clip_grad_norm: every trained parameter's gradient, Engram tables' rows included.
float clip_grad_norm(Model& model, float max_norm);

struct LrSchedule {
  float max_lr = 1e-3f;
  float min_lr = 1e-4f;
  int64_t warmup = 0;
  int64_t total = 1;
  float at(int64_t step) const;  // step counts from 0
};

class SparseRowAdam {
 public:
  SparseRowAdam(int64_t rows, int64_t width, float beta1 = 0.9f, float beta2 = 0.95f,
                float eps = 1e-8f);
  // table (rows, width); row_ids (n) distinct row indices; row_grads (n, width), the summed
  // gradient of each listed row. Throws Errc::out_of_range on an id outside [0, rows) and
  // Errc::invalid_argument on a repeated id (its gradient must be summed first).
  void step(float* table, const int64_t* row_ids, const float* row_grads, int64_t n, float lr);
  int32_t row_steps(int64_t row) const { return steps_[row]; }
  int64_t rows() const { return rows_; }
  int64_t width() const { return width_; }
  // State for checkpoints: moments (rows, width) and per-row step counts (rows).
  std::span<float> first_moment() { return m_; }
  std::span<float> second_moment() { return v_; }
  std::span<int32_t> row_step_counts() { return steps_; }

 private:
  int64_t rows_, width_;
  float b1_, b2_, eps_;
  std::vector<float> m_, v_;
  std::vector<int32_t> steps_;
  std::vector<uint8_t> seen_;  // scratch for the duplicate check
};

// The paper's recipe for Engram tables: sparse Adam at lr_multiplier x the backbone learning
// rate, no weight decay, one SparseRowAdam per table of the model.
class EngramTableAdam {
 public:
  EngramTableAdam(Model& model, float lr_multiplier = 5.0f, float beta1 = 0.9f, float beta2 = 0.95f,
                  float eps = 1e-8f);
  void step(float lr);  // applies the last backward's table gradients at lr * lr_multiplier
  std::vector<SparseRowAdam>& tables() { return opts_; }  // one per engram_tables() entry

 private:
  Model* model_;
  float mult_;
  std::vector<SparseRowAdam> opts_;
};

}  // namespace engram
