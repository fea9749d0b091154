// nn/attention.h: rotary position embedding and causal multi-head attention (grouped KV heads
// allowed) for the transformer, training and one-row decode. Conventions as in nn/kernels.h:
// forwards write, backwards ACCUMULATE (+=), except rope_backward, which rotates a gradient in
// place (stated there). Row-major fp32; the `_ref` twins are in nn/kernels_ref.h.
#pragma once

#include <cstdint>

namespace engram::nn {

// ---- RoPE -------------------------------------------------------------------------------------
// Rotate-half convention (Llama / Hugging Face `rotate_half`): within a head of size D, element
// i < D/2 pairs with element i + D/2, angle = pos * theta^(-2i/D):
//   out[i]       = x[i] * cos - x[i + D/2] * sin
//   out[i + D/2] = x[i + D/2] * cos + x[i] * sin
// rope_tables fills cos, sin (max_T, D/2) for positions 0..max_T-1.
void rope_tables(float* cos_t, float* sin_t, int64_t max_T, int64_t D, float theta);
// Rotates n_heads heads of size D inside each of the B*T rows of x, in place. Row (b, t) has
// position pos0 + t and starts at x + (b*T + t) * row_stride.
void rope_forward(float* x, const float* cos_t, const float* sin_t, int64_t B, int64_t T,
                  int64_t n_heads, int64_t D, int64_t row_stride, int64_t pos0 = 0);
// The inverse rotation applied to a gradient IN PLACE (RoPE is orthogonal and linear, so this is
// its exact backward and needs no saved input).
void rope_backward(float* dx, const float* cos_t, const float* sin_t, int64_t B, int64_t T,
                   int64_t n_heads, int64_t D, int64_t row_stride, int64_t pos0 = 0);

// ---- causal multi-head attention (grouped KV heads allowed) -----------------------------------
// qkv (B, T, (H + 2*KV) * D): per row the H query heads, then KV key heads, then KV value heads
// (this is the output of the fused q/k/v projection, after RoPE on q and k). Query head h reads
// KV head h / (H / KV). Scale 1/sqrt(D), softmax over positions 0..t (numerically stable: max
// subtracted). att (B, H, T, T) keeps the probabilities for the backward (entries above the
// diagonal are written as 0); out (B, T, H * D).
// Fast version: OpenMP over (b, KV head); per query head, S = Q K^T, P V and the four backward
// products run as register-tiled matrix products (4 x 32 output tiles) that skip the tiles above
// the diagonal, so attention costs the causal half of its FLOPs at close to GEMM speed.
void attention_forward(float* out, float* att, const float* qkv, int64_t B, int64_t T, int64_t H,
                       int64_t KV, int64_t D);
// dqkv (B, T, (H + 2*KV) * D) +=; dout (B, T, H * D).
void attention_backward(float* dqkv, const float* dout, const float* qkv, const float* att,
                        int64_t B, int64_t T, int64_t H, int64_t KV, int64_t D);
// One query row against a KV cache (generation): q (H * D); kcache, vcache (n_ctx, KV * D) hold
// positions 0..n_ctx-1 (the current one included); out (H * D); scratch (n_ctx) floats.
void attention_decode(float* out, const float* q, const float* kcache, const float* vcache,
                      int64_t n_ctx, int64_t H, int64_t KV, int64_t D, float* scratch);

}  // namespace engram::nn
