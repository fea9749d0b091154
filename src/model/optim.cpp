// AdamW, gradient clipping, the warm-up + cosine schedule and the sparse row Adam: see
// engram/optim.h for the exact update rules. Arithmetic order follows torch.optim.AdamW
// (single-tensor path) so that a step matches it to fp32 rounding.
#include "engram/optim.h"

#include <cmath>

#include "engram/error.h"

namespace engram {

AdamW::AdamW(std::vector<ParamSpan> params, const AdamWOptions& options)
    : params_(std::move(params)), opt_(options) {
  int64_t total = 0;
  for (const ParamSpan& p : params_) {
    offsets_.push_back(total);
    total += p.numel;
  }
  m_.assign(total, 0.0f);
  v_.assign(total, 0.0f);
}

void AdamW::step(float lr) {
  t_++;
  const float b1 = opt_.beta1, b2 = opt_.beta2, eps = opt_.eps;
  const double bc1 = 1.0 - std::pow(double(b1), double(t_));
  const double bc2_sqrt = std::sqrt(1.0 - std::pow(double(b2), double(t_)));
  const float step_size = static_cast<float>(lr / bc1);
  const float inv_bc2_sqrt = static_cast<float>(bc2_sqrt);
  // One parallel region for all tensors (a fork/join per tensor costs more than a small
  // tensor's update); `nowait` lets a thread go on to the next tensor, and each element is
  // updated by exactly one thread, so the result does not depend on the thread count.
#pragma omp parallel
  for (size_t i = 0; i < params_.size(); i++) {
    const ParamSpan& ps = params_[i];
    float* p = ps.param;
    const float* g = ps.grad;
    float* m = m_.data() + offsets_[i];
    float* v = v_.data() + offsets_[i];
    const float decay = ps.weight_decay ? 1.0f - lr * opt_.weight_decay : 1.0f;
#pragma omp for schedule(static) nowait
    for (int64_t j = 0; j < ps.numel; j++) {
      const float gj = g[j];
      m[j] = m[j] * b1 + (1.0f - b1) * gj;
      v[j] = v[j] * b2 + (1.0f - b2) * gj * gj;
      const float denom = std::sqrt(v[j]) / inv_bc2_sqrt + eps;
      p[j] = p[j] * decay - step_size * (m[j] / denom);
    }
  }
}

float clip_grad_norm(std::span<const std::span<float>> grads, float max_norm) {
  double ss = 0.0;
  for (std::span<float> buf : grads) {
    for (float g : buf) ss += double(g) * g;
  }
  const double norm = std::sqrt(ss);
  if (max_norm > 0.0f && norm > max_norm) {
    const float scale = static_cast<float>(max_norm / (norm + 1e-6));
    for (std::span<float> buf : grads) {
      for (float& g : buf) g *= scale;
    }
  }
  return static_cast<float>(norm);
}

float clip_grad_norm(Model& model, float max_norm) {
  return model.clip_grad_norm(max_norm);
}

float LrSchedule::at(int64_t step) const {
  if (step < warmup) return max_lr * static_cast<float>(step + 1) / static_cast<float>(warmup);
  if (step >= total) return min_lr;
  const double progress = double(step - warmup) / double(std::max<int64_t>(1, total - warmup));
  return static_cast<float>(min_lr + 0.5 * (max_lr - min_lr) * (1.0 + std::cos(M_PI * progress)));
}

SparseRowAdam::SparseRowAdam(int64_t rows, int64_t width, float beta1, float beta2, float eps)
    : rows_(rows), width_(width), b1_(beta1), b2_(beta2), eps_(eps) {
  if (rows <= 0 || width <= 0) {
    fail(Errc::invalid_argument, "SparseRowAdam: rows and width must be positive, got ", rows,
         " x ", width);
  }
  m_.assign(rows * width, 0.0f);
  v_.assign(rows * width, 0.0f);
  steps_.assign(rows, 0);
  seen_.assign(rows, 0);
}

void SparseRowAdam::step(float* table, const int64_t* row_ids, const float* row_grads, int64_t n,
                         float lr) {
  for (int64_t i = 0; i < n; i++) {
    const int64_t r = row_ids[i];
    if (r < 0 || r >= rows_) {
      for (int64_t j = 0; j < i; j++) seen_[row_ids[j]] = 0;
      fail(Errc::out_of_range, "SparseRowAdam: row id ", r, " at position ", i, " is outside [0, ",
           rows_, ")");
    }
    if (seen_[r]) {
      for (int64_t j = 0; j < i; j++) seen_[row_ids[j]] = 0;
      fail(Errc::invalid_argument, "SparseRowAdam: row id ", r, " repeated at position ", i);
    }
    seen_[r] = 1;
  }
  for (int64_t i = 0; i < n; i++) seen_[row_ids[i]] = 0;
#pragma omp parallel for schedule(static)
  for (int64_t i = 0; i < n; i++) {
    const int64_t r = row_ids[i];
    const int32_t t = ++steps_[r];
    const double bc1 = 1.0 - std::pow(double(b1_), double(t));
    const float bc2_sqrt = static_cast<float>(std::sqrt(1.0 - std::pow(double(b2_), double(t))));
    const float step_size = static_cast<float>(lr / bc1);
    float* p = table + r * width_;
    float* m = m_.data() + r * width_;
    float* v = v_.data() + r * width_;
    const float* g = row_grads + i * width_;
    for (int64_t j = 0; j < width_; j++) {
      const float gj = g[j];
      m[j] = m[j] * b1_ + (1.0f - b1_) * gj;
      v[j] = v[j] * b2_ + (1.0f - b2_) * gj * gj;
      p[j] -= step_size * (m[j] / (std::sqrt(v[j]) / bc2_sqrt + eps_));
    }
  }
}

EngramTableAdam::EngramTableAdam(Model& model, float lr_multiplier, float beta1, float beta2,
                                 float eps)
    : model_(&model), mult_(lr_multiplier) {
  for (const EngramTableView& t : model.engram_tables()) {
    opts_.emplace_back(t.rows, t.width, beta1, beta2, eps);
  }
}

void EngramTableAdam::step(float lr) {
  std::vector<EngramTableView> tables = model_->engram_tables();
  for (size_t i = 0; i < tables.size(); i++) {
    const EngramTableView& t = tables[i];
    opts_[i].step(t.table, t.grad_rows.data(), t.grad_values.data(),
                  static_cast<int64_t>(t.grad_rows.size()), lr * mult_);
  }
}

}  // namespace engram
