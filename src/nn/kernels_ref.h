// nn/kernels_ref.h: the plain reference twin of every restructured kernel of the kernel library,
// named `<kernel>_ref`, with the fast kernel's signature and contract. Single-threaded loops
// that read like the math (sums in double), kept for the tests, which hold each fast kernel
// against its twin and each twin's backward against finite differences of its forward.
#pragma once

#include <cstdint>

namespace engram::nn {

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

}  // namespace engram::nn
