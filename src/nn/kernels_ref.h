// nn/kernels_ref.h: the plain reference twin of every restructured kernel of the kernel library,
// named `<kernel>_ref`, with the fast kernel's signature and contract. Single-threaded loops
// that read like the math (sums in double), kept for the tests, which hold each fast kernel
// against its twin and each twin's backward against finite differences of its forward.
#pragma once

#include <cstdint>

#include "engram/engram_layer.h"
#include "nn/kernels.h"

namespace engram::nn {

// ---- Engram layer and shared kernels (nn/kernels.h) -------------------------------------------
void embedding_gather_ref(float* e, const float* table, const int64_t* row_ids, int64_t N,
                          int64_t cols, int64_t width);
void embedding_backward_sparse_ref(RowGrads& out, const float* de, const int64_t* row_ids,
                                   int64_t N, int64_t cols, int64_t width);
void linear_forward_ref(float* out, const float* inp, const float* weight, const float* bias,
                        int64_t N, int64_t C, int64_t OC, bool accumulate = false);
void linear_backward_ref(float* dinp, float* dweight, float* dbias, const float* dout,
                         const float* inp, const float* weight, int64_t N, int64_t C, int64_t OC);
void rmsnorm_forward_ref(float* out, int64_t ldo, float* rstd, const float* x, int64_t ldx,
                         const float* weight, int64_t N, int64_t C, float eps);
void rmsnorm_backward_ref(float* dx, int64_t lddx, float* dweight, const float* dout, int64_t lddo,
                          const float* x, int64_t ldx, const float* weight, const float* rstd,
                          int64_t N, int64_t C);
void gate_forward_ref(float* gate, float* score, int64_t ldg, const float* k, int64_t ldk,
                      const float* q, int64_t ldq, int64_t N, int64_t C, GateSign sign);
void gate_backward_ref(float* dk, int64_t lddk, float* dq, int64_t lddq, const float* dgate,
                       const float* score, const float* gate, int64_t ldg, const float* k,
                       int64_t ldk, const float* q, int64_t ldq, int64_t N, int64_t C);
void causal_conv_forward_ref(float* y, const float* x, const float* weight, int64_t B, int64_t T,
                             int64_t C, int64_t K, int64_t dil);
void causal_conv_backward_ref(float* dx, float* dweight, const float* dy, const float* x,
                              const float* weight, int64_t B, int64_t T, int64_t C, int64_t K,
                              int64_t dil);

// ---- attention (nn/attention.h) ---------------------------------------------------------------
void attention_forward_ref(float* out, float* att, const float* qkv, int64_t B, int64_t T,
                           int64_t H, int64_t KV, int64_t D);
void attention_backward_ref(float* dqkv, const float* dout, const float* qkv, const float* att,
                            int64_t B, int64_t T, int64_t H, int64_t KV, int64_t D);

// ---- mixture of experts (nn/moe.h) ------------------------------------------------------------
void moe_route_forward_ref(float* probs, int32_t* topk_idx, float* gates, const float* logits,
                           int64_t N, int64_t E, int64_t k, bool norm_topk);
void moe_route_backward_ref(float* dlogits, const float* dgates, const float* dprobs,
                            const float* probs, const int32_t* topk_idx, const float* gates,
                            int64_t N, int64_t E, int64_t k, bool norm_topk);
void moe_dispatch_forward_ref(float* xg, const float* x, const int32_t* order, int64_t A,
                              int64_t C);
void moe_dispatch_backward_ref(float* dx, const float* dxg, const int32_t* slot, int64_t N,
                               int64_t k, int64_t C);
void moe_combine_forward_ref(float* out, const float* e_out, const float* gates,
                             const int32_t* slot, int64_t N, int64_t k, int64_t C);
void moe_combine_backward_ref(float* de_out, float* dgates, const float* dout, const float* e_out,
                              const float* gates, const int32_t* slot, int64_t N, int64_t k,
                              int64_t C);
float moe_aux_loss_forward_ref(const float* probs, const int32_t* topk_idx, int64_t N, int64_t E,
                               int64_t k, float alpha);
void moe_aux_loss_backward_ref(float* dprobs, const int32_t* topk_idx, int64_t N, int64_t E,
                               int64_t k, float alpha, float dloss);

// ---- the DeepSeek-V4.1 Engram layer (engram/engram_layer.h) ---------------------------------
// EngramLayerV41::forward_rows in plain loops: same contract, its weights passed in.
void engram_v41_forward_ref(float* out, const float* hidden, const float* rows,
                            const uint8_t* token_mask, const float* wkv, const float* q_weight,
                            const float* k_weight, const EngramV41Shape& shape, int64_t N);

}  // namespace engram::nn
