// engram::Model (engram/model.h): construction and gradient clipping. The model's inside is
// model/model_impl.h, implemented one concern a file (listed there).
#include <span>
#include <vector>

#include "engram/optim.h"
#include "model/model_impl.h"

namespace engram {

Model::Model(const ModelConfig& config, uint64_t seed) : impl_(std::make_unique<Impl>(config)) {
  impl_->init_weights(seed);
  impl_->build_engram(seed);
}
Model::~Model() = default;
Model::Model(Model&&) noexcept = default;
Model& Model::operator=(Model&&) noexcept = default;

float Model::clip_grad_norm(float max_norm) {
  std::vector<std::span<float>> grads;
  for (const ParamSpan& ps : param_spans()) grads.emplace_back(ps.grad, ps.numel);
  for (const EngramTableView& t : engram_tables()) grads.push_back(t.grad_values);
  return engram::clip_grad_norm(grads, max_norm);
}

}  // namespace engram
