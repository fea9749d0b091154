// nn/kernels.h: the fp32 CPU kernels of the Engram layer (DESIGN.md 2.4, 2.5) and the transformer.
//
// Plain free functions in the style of llm.c: a forward writes its output, a backward
// ACCUMULATES (+=) into every gradient it is given, so a tensor used twice needs no special
// case and callers zero gradients themselves. Every kernel whose fast path is restructured
// (BLAS, sorting, gathers, strided reductions) has a plain single-threaded `_ref` twin with the
// same signature in nn/kernels_ref.h that the tests hold it against; the one-loop elementwise
// kernels (gated value, SiLU, SwiGLU) and the decode helpers are checked by finite differences
// and against the full forward. One library for the Engram layer and the transformer: the
// latter's attention is in nn/attention.h, its mixture of experts in nn/moe.h.
// Shapes are in the comments; N is the number of token positions (B*T). A gradient pointer
// may be null when that gradient is not wanted. These functions do not validate shapes or
// ids: the layer classes (engram_layer.h) check inputs before calling them.
#pragma once

#include <cstdint>
#include <vector>

#include "engram/engram_layer.h"  // RowGrads

namespace engram::nn {

// ---- Embedding rows --------------------------------------------------------------------------
// e[n, c*width + k] = table[row_ids[n*cols + c], k]
// e: [N, cols*width]; table: [rows, width]; row_ids: [N, cols] global row ids (hash + offset).
void embedding_gather(float* e, const float* table, const int64_t* row_ids, int64_t N, int64_t cols,
                      int64_t width);

// The gradient of the rows read, sparse (engram::RowGrads of engram/engram_layer.h).
using RowGrads = engram::RowGrads;
// out = sparse gradient of embedding_gather given de: [N, cols*width] (out is overwritten).
void embedding_backward_sparse(RowGrads& out, const float* de, const int64_t* row_ids, int64_t N,
                               int64_t cols, int64_t width);
// dtable[rows, width] += the scatter of de (the dense twin, for tests and small tables).
void embedding_backward_dense(float* dtable, const float* de, const int64_t* row_ids, int64_t N,
                              int64_t cols, int64_t width);
// dtable[rows, width] += g (sparse -> dense).
void row_grads_add_to_dense(float* dtable, const RowGrads& g);

// ---- Linear (nn.Linear convention: weight is [OC, C]) --------------------------------------
// out[N, OC] = inp[N, C] @ weight[OC, C]^T + bias[OC]   (bias may be null); with accumulate,
// out += instead (a projection added straight into the residual stream).
void linear_forward(float* out, const float* inp, const float* weight, const float* bias, int64_t N,
                    int64_t C, int64_t OC, bool accumulate = false);
// dinp[N, C] += dout @ weight; dweight[OC, C] += dout^T @ inp; dbias[OC] += sum_n dout.
void linear_backward(float* dinp, float* dweight, float* dbias, const float* dout, const float* inp,
                     const float* weight, int64_t N, int64_t C, int64_t OC);

// ---- RMSNorm over rows of width C, rows strided (ld* = distance between rows, in floats) ----
// (The transformer's rows are contiguous: ld* = C.)
// rstd[n] = 1 / sqrt(mean_j x[n,j]^2 + eps); out[n, j] = x[n, j] * rstd[n] * weight[j]
void rmsnorm_forward(float* out, int64_t ldo, float* rstd, const float* x, int64_t ldx,
                     const float* weight, int64_t N, int64_t C, float eps);
// dx[n, :] += d out / d x . dout;  dweight[j] += sum_n dout[n, j] * x[n, j] * rstd[n]
void rmsnorm_backward(float* dx, int64_t lddx, float* dweight, const float* dout, int64_t lddo,
                      const float* x, int64_t ldx, const float* weight, const float* rstd,
                      int64_t N, int64_t C);

// ---- The gate ---------------------------------------------------------------------------------
// score[n] = <k[n, :], q[n, :]> / sqrt(C); s = sign(score) * sqrt(max(|score|, 1e-6));
// gate[n] = sigmoid(s). Paper form: sign(0) = 0 (torch.sign). V4.1 form: copysign, so a score
// of exactly +0 takes the positive branch. gate, score: [N] with stride ldg (one branch of
// an [N, hc] array); k, q: [N, C] rows strided.
enum class GateSign { torch_sign, copysign };
constexpr float kGateClamp = 1e-6f;
void gate_forward(float* gate, float* score, int64_t ldg, const float* k, int64_t ldk,
                  const float* q, int64_t ldq, int64_t N, int64_t C, GateSign sign);
// dk[n, :] += dscore * q, dq[n, :] += dscore * k with dscore from dgate through the sigmoid,
// the signed square root (zero gradient where |score| < 1e-6, as torch's clamp_min) and 1/sqrt(C).
void gate_backward(float* dk, int64_t lddk, float* dq, int64_t lddq, const float* dgate,
                   const float* score, const float* gate, int64_t ldg, const float* k, int64_t ldk,
                   const float* q, int64_t ldq, int64_t N, int64_t C);

// ---- Gated value: v[n, b, :] = gate[n, b] * value[n, :] --------------------------------------
// v: [N, H, C]; gate: [N, H]; value: [N, C] rows strided by ldval.
void gated_value_forward(float* v, const float* gate, const float* value, int64_t ldval, int64_t N,
                         int64_t H, int64_t C);
// dgate[n, b] += <dv[n, b, :], value[n, :]>; dvalue[n, :] += sum_b gate[n, b] * dv[n, b, :]
void gated_value_backward(float* dgate, float* dvalue, int64_t lddval, const float* dv,
                          const float* gate, const float* value, int64_t ldval, int64_t N,
                          int64_t H, int64_t C);

// ---- ShortConv core: causal depthwise conv over time, dilated, no bias ------------------------
// x, y: [B, T, C]; weight: [C, K] (nn.Conv1d's [C, 1, K]);
// y[b, t, c] = sum_i weight[c, i] * x[b, t - (K-1-i)*dil, c], zero before t = 0.
void causal_conv_forward(float* y, const float* x, const float* weight, int64_t B, int64_t T,
                         int64_t C, int64_t K, int64_t dil);
// dx[B, T, C] += conv^T dy;  dweight[C, K] += sum_{b,t} dy * shifted x
void causal_conv_backward(float* dx, float* dweight, const float* dy, const float* x,
                          const float* weight, int64_t B, int64_t T, int64_t C, int64_t K,
                          int64_t dil);
// One decode step. state: [B, (K-1)*dil, C], the last (K-1)*dil inputs of each sequence,
// oldest first (zeros before the sequence start); x_new: [B, C]; y: [B, C]. Writes y exactly
// as causal_conv_forward would at the next position, then shifts x_new into the state.
void causal_conv_decode_step(float* y, float* state, const float* x_new, const float* weight,
                             int64_t B, int64_t C, int64_t K, int64_t dil);
// Fills state [B, (K-1)*dil, C] from the last (K-1)*dil positions of x [B, T, C] (prefill).
void causal_conv_state_from_prefix(float* state, const float* x, int64_t B, int64_t T, int64_t C,
                                   int64_t K, int64_t dil);

// ---- Elementwise ----------------------------------------------------------------------------
// out[i] = res[i] + silu(y[i]) (the ShortConv activation plus the layer's v + conv(v)); [n]
void residual_silu_forward(float* out, const float* res, const float* y, int64_t n);
// dy[i] += dout[i] * silu'(y[i])
void silu_backward(float* dy, const float* dout, const float* y, int64_t n);

// ---- token embedding (the transformer's) ----------------------------------------------------
// out[n, :] = wte[ids[n], :]                      out (N, C), ids (N), wte (V, C)
void embedding_forward(float* out, const int32_t* ids, const float* wte, int64_t N, int64_t C);
// dwte[ids[n], :] += dout[n, :]  (scatter-add)    dwte (V, C), dout (N, C)
void embedding_backward(float* dwte, const float* dout, const int32_t* ids, int64_t N, int64_t C);

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

}  // namespace engram::nn
