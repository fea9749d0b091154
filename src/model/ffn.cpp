// The FFN of each layer of engram::Model (model/model_impl.h): the dense SwiGLU MLP, or the
// mixture of experts of engram/model.h: router and top-k, dispatch to the experts grouped by
// expert, the experts' SwiGLU MLPs, the gated combine, the shared expert, and the
// load-balancing loss. The routing, dispatch, combine and loss are kernels (nn/moe.h).
#include <algorithm>

#include "model/model_impl.h"
#include "nn/kernels.h"
#include "nn/moe.h"

namespace engram {

using namespace nn;

void Model::Impl::ffn_forward(int64_t l, LayerActs& la, Acts& a, float* out, int64_t N) {
  const LayerParams& w = p.layers[l];
  if (!moe) {
    linear_forward(la.gateup, la.xn2, w.w_gateup, nullptr, N, C, 2 * F);
    swiglu_forward(la.act, la.gateup, N, F);
    linear_forward(out, la.act, w.w_down, nullptr, N, F, C, true);
    return;
  }
  // Router and top-k.
  linear_forward(a.rlogits, la.xn2, w.router, nullptr, N, C, E);
  moe_route_forward(la.probs, la.topk, la.gates, a.rlogits, N, E, K, cfg.moe.norm_topk_prob);
  moe_dispatch_plan(la.slot, la.order, la.e_start, la.topk, N, E, K);
  la.aux = moe_aux_loss_forward(la.probs, la.topk, N, E, K, cfg.moe.aux_loss_coef);
  // Experts over their gathered rows.
  const int64_t* start = la.e_start;
  moe_dispatch_forward(a.xg, la.xn2, la.order, N * K, C);
  for (int64_t e = 0; e < E; e++) {
    const int64_t s0 = start[e], cnt = start[e + 1] - start[e];
    linear_forward(la.e_gateup + s0 * 2 * Fe, a.xg + s0 * C, w.e_gateup + e * 2 * Fe * C, nullptr,
                   cnt, C, 2 * Fe);
    swiglu_forward(la.e_act + s0 * Fe, la.e_gateup + s0 * 2 * Fe, cnt, Fe);
    linear_forward(la.e_out + s0 * C, la.e_act + s0 * Fe, w.e_down + e * C * Fe, nullptr, cnt, Fe,
                   C);
  }
  if (Fs > 0) {
    linear_forward(la.s_gateup, la.xn2, w.s_gateup, nullptr, N, C, 2 * Fs);
    swiglu_forward(la.s_act, la.s_gateup, N, Fs);
    linear_forward(out, la.s_act, w.s_down, nullptr, N, Fs, C, true);
  }
  moe_combine_forward(out, la.e_out, la.gates, la.slot, N, K, C);
}

void Model::Impl::ffn_backward(int64_t l, LayerActs& la, Acts& a, float* dxn, const float* dout,
                               int64_t N) {
  const LayerParams& w = p.layers[l];
  const LayerParams& gw = g.layers[l];
  if (!moe) {
    std::fill(a.dact, a.dact + N * F, 0.0f);
    std::fill(a.dgateup, a.dgateup + N * 2 * F, 0.0f);
    linear_backward(a.dact, gw.w_down, nullptr, dout, la.act, w.w_down, N, F, C);
    swiglu_backward(a.dgateup, a.dact, la.gateup, N, F);
    linear_backward(dxn, gw.w_gateup, nullptr, a.dgateup, la.xn2, w.w_gateup, N, C, 2 * F);
    return;
  }
  const int64_t A = N * K;
  if (Fs > 0) {
    std::fill(a.dact, a.dact + N * Fs, 0.0f);
    std::fill(a.dgateup, a.dgateup + N * 2 * Fs, 0.0f);
    linear_backward(a.dact, gw.s_down, nullptr, dout, la.s_act, w.s_down, N, Fs, C);
    swiglu_backward(a.dgateup, a.dact, la.s_gateup, N, Fs);
    linear_backward(dxn, gw.s_gateup, nullptr, a.dgateup, la.xn2, w.s_gateup, N, C, 2 * Fs);
  }
  std::fill(a.de_out, a.de_out + A * C, 0.0f);
  std::fill(a.dgates, a.dgates + N * K, 0.0f);
  moe_combine_backward(a.de_out, a.dgates, dout, la.e_out, la.gates, la.slot, N, K, C);
  moe_dispatch_forward(a.xg, la.xn2, la.order, A, C);
  std::fill(a.de_act, a.de_act + A * Fe, 0.0f);
  std::fill(a.de_gateup, a.de_gateup + A * 2 * Fe, 0.0f);
  std::fill(a.dxg, a.dxg + A * C, 0.0f);
  const int64_t* start = la.e_start;
  for (int64_t e = 0; e < E; e++) {
    const int64_t s0 = start[e], cnt = start[e + 1] - start[e];
    linear_backward(a.de_act + s0 * Fe, gw.e_down + e * C * Fe, nullptr, a.de_out + s0 * C,
                    la.e_act + s0 * Fe, w.e_down + e * C * Fe, cnt, Fe, C);
    swiglu_backward(a.de_gateup + s0 * 2 * Fe, a.de_act + s0 * Fe, la.e_gateup + s0 * 2 * Fe, cnt,
                    Fe);
    linear_backward(a.dxg + s0 * C, gw.e_gateup + e * 2 * Fe * C, nullptr,
                    a.de_gateup + s0 * 2 * Fe, a.xg + s0 * C, w.e_gateup + e * 2 * Fe * C, cnt, C,
                    2 * Fe);
  }
  moe_dispatch_backward(dxn, a.dxg, la.slot, N, K, C);
  // Router: the gates' and the load-balancing loss's gradients -> probs -> logits.
  std::fill(a.dprobs, a.dprobs + N * E, 0.0f);
  moe_aux_loss_backward(a.dprobs, la.topk, N, E, K, cfg.moe.aux_loss_coef, 1.0f);
  float* dlogits = a.rlogits;  // reuse: (N, E)
  std::fill(dlogits, dlogits + N * E, 0.0f);
  moe_route_backward(dlogits, a.dgates, a.dprobs, la.probs, la.topk, la.gates, N, E, K,
                     cfg.moe.norm_topk_prob);
  linear_backward(dxn, gw.router, nullptr, dlogits, la.xn2, w.router, N, C, E);
}

}  // namespace engram
