// Transformer layer kernels for CPU training, one forward and one backward free function per layer.
//
// Conventions (as in llm.c): a forward writes its output; a backward ACCUMULATES (+=) into the
// gradients of its inputs and parameters, so a tensor used twice needs no special case. The one
// exception is rope_backward, which rotates a gradient in place (stated there). All tensors are
// row-major fp32; N = B*T rows. Linear weights are stored as Hugging Face / PyTorch do, [out, in],
// and a linear layer computes y = x W^T (no bias).
//
// Each kernel whose fast version is non-trivial has a plain `*_ref` version next to it; the tests
// check the fast one against the reference and the reference against finite differences.
// Kernels validate nothing: shapes come from a checked ModelConfig, token ids are checked by the
// model before they reach embedding_forward.
//
// Not here: the Engram layer (src/nn), parameter layout and the training loop (model.cpp,
// optim.cpp).
#pragma once

#include <cstdint>

#include "nn/softmax.h"

namespace engram::model {

using nn::exp_approx;

// ---- token embedding --------------------------------------------------------------------------
// out[n, :] = wte[ids[n], :]                      out (N, C), ids (N), wte (V, C)
void embedding_forward(float* out, const int32_t* ids, const float* wte, int64_t N, int64_t C);
// dwte[ids[n], :] += dout[n, :]  (scatter-add)    dwte (V, C), dout (N, C)
void embedding_backward(float* dwte, const float* dout, const int32_t* ids, int64_t N, int64_t C);

// ---- RMSNorm ----------------------------------------------------------------------------------
// out = x * rstd * w, rstd = 1 / sqrt(mean(x^2) + eps)    out, inp (N, C), rstd (N), weight (C)
void rmsnorm_forward(float* out, float* rstd, const float* inp, const float* weight, int64_t N,
                     int64_t C, float eps);
// dinp (N, C) +=, dweight (C) += ; needs the rstd saved by the forward.
void rmsnorm_backward(float* dinp, float* dweight, const float* dout, const float* inp,
                      const float* weight, const float* rstd, int64_t N, int64_t C);

// ---- linear (no bias) via cblas_sgemm ---------------------------------------------------------
// out (N, OC) = inp (N, IC) @ weight (OC, IC)^T; with accumulate, out += instead (used to add
// a projection straight into the residual stream).
void matmul_forward(float* out, const float* inp, const float* weight, int64_t N, int64_t IC,
                    int64_t OC, bool accumulate = false);
// dinp (N, IC) += dout @ weight; dweight (OC, IC) += dout^T @ inp. dinp may be null (skip).
void matmul_backward(float* dinp, float* dweight, const float* dout, const float* inp,
                     const float* weight, int64_t N, int64_t IC, int64_t OC);
void matmul_forward_ref(float* out, const float* inp, const float* weight, int64_t N, int64_t IC,
                        int64_t OC, bool accumulate = false);
void matmul_backward_ref(float* dinp, float* dweight, const float* dout, const float* inp,
                         const float* weight, int64_t N, int64_t IC, int64_t OC);

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
void attention_forward_ref(float* out, float* att, const float* qkv, int64_t B, int64_t T,
                           int64_t H, int64_t KV, int64_t D);
void attention_backward_ref(float* dqkv, const float* dout, const float* qkv, const float* att,
                            int64_t B, int64_t T, int64_t H, int64_t KV, int64_t D);
// One query row against a KV cache (generation): q (H * D); kcache, vcache (n_ctx, KV * D) hold
// positions 0..n_ctx-1 (the current one included); out (H * D); scratch (n_ctx) floats.
void attention_decode(float* out, const float* q, const float* kcache, const float* vcache,
                      int64_t n_ctx, int64_t H, int64_t KV, int64_t D, float* scratch);

// ---- SwiGLU -----------------------------------------------------------------------------------
// gateup (N, 2F) holds [gate | up] (the fused gate_proj/up_proj output); out (N, F) =
// silu(gate) * up, silu(g) = g * sigmoid(g).
void swiglu_forward(float* out, const float* gateup, int64_t N, int64_t F);
// dgateup (N, 2F) +=
void swiglu_backward(float* dgateup, const float* dout, const float* gateup, int64_t N, int64_t F);

// ---- cross-entropy with the softmax backward fused --------------------------------------------
// For each row n with targets[n] >= 0: losses[n] = logsumexp(logits[n]) - logits[n, targets[n]],
// lse[n] = logsumexp(logits[n]). Rows with a negative target are ignored (loss 0).
void crossentropy_forward(float* losses, float* lse, const float* logits, const int32_t* targets,
                          int64_t N, int64_t V);
// Turns logits into dlogits IN PLACE: dlogits[n] = (softmax(logits[n]) - onehot(target)) * dloss,
// 0 for ignored rows. dloss is the gradient of the reduced loss w.r.t. each row's loss
// (1 / number of counted rows for a mean).
void crossentropy_backward_inplace(float* logits_to_dlogits, const float* lse,
                                   const int32_t* targets, int64_t N, int64_t V, float dloss);

}  // namespace engram::model
