// nn/moe.h: the mixture-of-experts kernels of the transformer's FFN (engram/model.h): routing
// (softmax, top-k, optional renormalization), dispatch of tokens to experts and the weighted
// combine of their outputs, and the load-balancing loss. The experts themselves are SwiGLU MLPs
// built from the linear and SwiGLU kernels.
//
// Conventions as in nn/kernels.h: a forward writes its output (the combine adds into the
// residual stream, stated there), a backward ACCUMULATES (+=) into every gradient it is given.
// Shapes: N tokens, E experts, k experts per token, C features, A = N*k (token, slot)
// assignments. Each kernel has a plain `_ref` twin in nn/kernels_ref.h. Nothing is validated:
// the model's checked config fixes every size.
#pragma once

#include <cstdint>

namespace engram::nn {

// ---- routing ----------------------------------------------------------------------------------
// probs (N, E) = softmax(logits (N, E)); topk_idx (N, k) the k most probable experts per row
// (ties: the lower expert id), in descending probability; gates (N, k) their probabilities,
// divided by their sum when norm_topk.
void moe_route_forward(float* probs, int32_t* topk_idx, float* gates, const float* logits,
                       int64_t N, int64_t E, int64_t k, bool norm_topk);
// dlogits (N, E) += the gradient through the softmax of dgates (N, k) and dprobs (N, E), the
// gradient that reaches the probabilities directly (the load-balancing loss's; may be null).
// The selection is piecewise constant: no gradient flows through which experts were chosen.
void moe_route_backward(float* dlogits, const float* dgates, const float* dprobs,
                        const float* probs, const int32_t* topk_idx, const float* gates, int64_t N,
                        int64_t E, int64_t k, bool norm_topk);

// ---- dispatch and combine ---------------------------------------------------------------------
// The assignments sorted by expert, stably (token order within an expert): expert e's are
// positions [expert_start[e], expert_start[e+1]); order (A) holds each position's token and
// slot (N, k) each (token, slot)'s position. Index bookkeeping only, no gradient.
void moe_dispatch_plan(int32_t* slot, int32_t* order, int64_t* expert_start,
                       const int32_t* topk_idx, int64_t N, int64_t E, int64_t k);
// xg (A, C): row i = x (N, C) row order[i], the experts' inputs grouped by expert.
void moe_dispatch_forward(float* xg, const float* x, const int32_t* order, int64_t A, int64_t C);
// dx (N, C) += sum over the token's k slots of dxg (A, C) at the slot's position.
void moe_dispatch_backward(float* dx, const float* dxg, const int32_t* slot, int64_t N, int64_t k,
                           int64_t C);
// out (N, C) += sum_s gates[n, s] * e_out[slot[n, s]], e_out (A, C) the experts' outputs in
// dispatch order. (Adds: the caller's out already holds the residual and the shared expert.)
void moe_combine_forward(float* out, const float* e_out, const float* gates, const int32_t* slot,
                         int64_t N, int64_t k, int64_t C);
// de_out (A, C) += gates * dout at each assignment; dgates (N, k) += <dout[n], e_out[slot]>.
void moe_combine_backward(float* de_out, float* dgates, const float* dout, const float* e_out,
                          const float* gates, const int32_t* slot, int64_t N, int64_t k, int64_t C);

// ---- load-balancing loss ----------------------------------------------------------------------
// alpha * E * sum_e f_e * P_e with f_e = (assignments to e) / (N k) and P_e = mean_n probs[n, e]
// (Switch Transformer / DeepSeekMoE expert-level balance; sums in double).
float moe_aux_loss_forward(const float* probs, const int32_t* topk_idx, int64_t N, int64_t E,
                           int64_t k, float alpha);
// dprobs (N, E) += dloss * alpha * E * f_e / N: f is a constant (no gradient), as in both papers.
void moe_aux_loss_backward(float* dprobs, const int32_t* topk_idx, int64_t N, int64_t E, int64_t k,
                           float alpha, float dloss);

}  // namespace engram::nn
