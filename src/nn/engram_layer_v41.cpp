// The DeepSeek-V4.1-form Engram layer (engram/engram_layer.h), forward only.
//
// kv = rows @ wkv^T [N, (hc+1)*d]; key_b = kv[b*d, (b+1)*d), value = kv[hc*d, (hc+1)*d);
// dot_b = sum(h_b * q_b * k_b * key_b) * rsqrt(mean h_b^2 + eps) * rsqrt(mean key_b^2 + eps)
//         / sqrt(d);
// gate_b = sigmoid(copysign(sqrt(max(|dot_b|, 1e-6)), dot_b)), 0 where the token mask is off;
// out_b = h_b + gate_b * value. The rows and wkv dequantization come from engram/row_format.h.
#include <cmath>
#include <cstring>

#include "engram/engram_layer.h"
#include "nn/kernels.h"
#include "engram/error.h"
#include "engram/row_format.h"
#include "engram/row_gather.h"

namespace engram {

void EngramV41Shape::validate() const {
  if (hidden <= 0)
    fail(Errc::invalid_argument, "EngramLayerV41: hidden size must be > 0, got ", hidden);
  if (hc <= 0) fail(Errc::invalid_argument, "EngramLayerV41: hc_mult must be > 0, got ", hc);
  if (cols <= 0) fail(Errc::invalid_argument, "EngramLayerV41: columns must be > 0, got ", cols);
  if (head_dim <= 0 || head_dim % kScaleBlock != 0)
    fail(Errc::invalid_argument, "EngramLayerV41: head_dim must be a positive multiple of ",
         kScaleBlock, ", got ", head_dim);
  if (!(norm_eps >= 0.0f)) fail(Errc::invalid_argument, "EngramLayerV41: norm_eps must be >= 0");
}

EngramLayerV41::EngramLayerV41(EngramV41Shape shape, std::span<const uint8_t> wkv_weight,
                               std::span<const uint8_t> wkv_scale, std::span<const float> q_weight,
                               std::span<const float> k_weight)
    : shape_(shape) {
  shape_.validate();
  const int64_t out = (shape_.hc + 1) * shape_.hidden, in = shape_.emb_dim();
  const int64_t sr = (out + kScaleBlock - 1) / kScaleBlock,
                sc = (in + kScaleBlock - 1) / kScaleBlock;
  if (static_cast<int64_t>(wkv_weight.size()) != out * in)
    fail(Errc::invalid_argument, "EngramLayerV41: wkv.weight has ", wkv_weight.size(),
         " bytes, expected [", out, ", ", in, "]");
  if (static_cast<int64_t>(wkv_scale.size()) != sr * sc)
    fail(Errc::invalid_argument, "EngramLayerV41: wkv.scale has ", wkv_scale.size(),
         " bytes, expected [", sr, ", ", sc, "]");
  const int64_t hd = shape_.hc * shape_.hidden;
  if (static_cast<int64_t>(q_weight.size()) != hd || static_cast<int64_t>(k_weight.size()) != hd)
    fail(Errc::invalid_argument, "EngramLayerV41: q_weight / k_weight have ", q_weight.size(),
         " / ", k_weight.size(), " values, expected [", shape_.hc, ", ", shape_.hidden, "]");
  wkv_.resize(out * in);
  dequantize_blocks(wkv_weight.data(), wkv_scale.data(), out, in, wkv_.data());
  qk_.resize(hd);
  for (int64_t i = 0; i < hd; i++) qk_[i] = q_weight[i] * k_weight[i];
}

void EngramLayerV41::attach_table(Fp8TableView table) {
  if (!table.data || !table.scale || table.rows <= 0)
    fail(Errc::invalid_argument, "EngramLayerV41.attach_table: empty table");
  table_ = table;
}

void EngramLayerV41::forward_rows(float* out, const float* hidden, const float* rows,
                                  const uint8_t* token_mask, int64_t N) {
  const int64_t D = shape_.hidden, H = shape_.hc, KV = (H + 1) * D;
  kv_.resize(N * KV);
  nn::linear_forward(kv_.data(), rows, wkv_.data(), nullptr, N, shape_.emb_dim(), KV);
  const double inv_d = 1.0 / static_cast<double>(D);
  const float inv_sqrt_d = 1.0f / std::sqrt(static_cast<float>(D));
  const double eps = shape_.norm_eps;
#pragma omp parallel for schedule(static) if (N * (H + 1) * D >= (int64_t{1} << 15))
  for (int64_t n = 0; n < N; n++) {
    const float* value = kv_.data() + n * KV + H * D;
    const bool on = !token_mask || token_mask[n] != 0;
    for (int64_t b = 0; b < H; b++) {
      const float* h = hidden + (n * H + b) * D;
      const float* key = kv_.data() + n * KV + b * D;
      const float* w = qk_.data() + b * D;
      float* o = out + (n * H + b) * D;
      float gate = 0.0f;
      if (on) {
        // Sums in double: see kernels.cpp on the signed square root near a zero dot.
        double hh = 0.0, kk = 0.0, dot = 0.0;
#pragma omp simd reduction(+ : hh, kk, dot)
        for (int64_t j = 0; j < D; j++) {
          hh += double(h[j]) * h[j];
          kk += double(key[j]) * key[j];
          dot += double(h[j] * w[j]) * key[j];
        }
        const float rstd = static_cast<float>((1.0 / std::sqrt(hh * inv_d + eps)) *
                                              (1.0 / std::sqrt(kk * inv_d + eps)));
        const float s = static_cast<float>(dot) * rstd * inv_sqrt_d;
        const float mag = std::sqrt(std::max(std::fabs(s), nn::kGateClamp));
        gate = 1.0f / (1.0f + std::exp(-std::copysign(mag, s)));
      }
#pragma omp simd
      for (int64_t j = 0; j < D; j++) o[j] = h[j] + gate * value[j];
    }
  }
}

void EngramLayerV41::forward(float* out, const float* hidden, const int64_t* row_ids,
                             const uint8_t* token_mask, int64_t N) {
  if (!table_.data)
    fail(Errc::invalid_argument, "EngramLayerV41.forward: no table attached (attach_table)");
  const RowFormat fmt = RowFormat::make(RowDtype::f8_e4m3, shape_.head_dim);
  rows_.resize(N * shape_.emb_dim());
  gather_rows(fmt, table_.data, table_.scale, table_.rows,
              std::span<const int64_t>(row_ids, N * shape_.cols), rows_.data());
  forward_rows(out, hidden, rows_.data(), token_mask, N);
}

}  // namespace engram
