// Builds an EngramLayerV41 from the dense weights of a validated V4.1 checkpoint (v41_layer.h).
#include "engram/v41_layer.h"

#include <cstring>
#include <vector>

#include "engram/error.h"
#include "engram/row_format.h"

namespace engram {
namespace {

std::vector<std::byte> read_tensor(const V41Checkpoint& ck, const TensorInfo& info) {
  return ck.weights().tensor(info.name).file->read(info.name);
}

// q_weight / k_weight are F32 or BF16 [hc, d] (the opener checked the shape).
std::vector<float> read_f32(const V41Checkpoint& ck, const TensorInfo& info) {
  const std::vector<std::byte> bytes = read_tensor(ck, info);
  std::vector<float> out(static_cast<size_t>(info.numel()));
  if (info.dtype == Dtype::F32) {
    std::memcpy(out.data(), bytes.data(), out.size() * sizeof(float));
  } else if (info.dtype == Dtype::BF16) {
    for (size_t i = 0; i < out.size(); i++) {
      uint16_t b;
      std::memcpy(&b, bytes.data() + 2 * i, 2);
      out[i] = bf16_to_f32(b);
    }
  } else {
    fail(Errc::mismatch, ck.dir(), ": ", info.name, " must be F32 or BF16");
  }
  return out;
}

}  // namespace

std::unique_ptr<EngramLayerV41> load_v41_layer(const V41Checkpoint& ck, int64_t layer_id) {
  const V41Layer* layer = nullptr;
  for (const V41Layer& l : ck.layers())
    if (l.layer_id == layer_id) layer = &l;
  if (layer == nullptr) fail(Errc::out_of_range, ck.dir(), ": layer ", layer_id, " has no Engram");
  const EngramConfig& cfg = ck.config();
  EngramV41Shape s;
  s.hidden = layer->q_weight->shape.at(1);
  s.hc = layer->q_weight->shape.at(0);
  s.head_dim = cfg.row_dim();
  s.cols = cfg.num_columns();
  s.norm_eps = static_cast<float>(cfg.norm_eps.value_or(1e-20));
  const std::vector<std::byte> wkv = read_tensor(ck, *layer->wkv_weight);
  const std::vector<std::byte> wkv_scale = read_tensor(ck, *layer->wkv_scale);
  const std::vector<float> q = read_f32(ck, *layer->q_weight);
  const std::vector<float> k = read_f32(ck, *layer->k_weight);
  return std::make_unique<EngramLayerV41>(
      s, std::span(reinterpret_cast<const uint8_t*>(wkv.data()), wkv.size()),
      std::span(reinterpret_cast<const uint8_t*>(wkv_scale.data()), wkv_scale.size()), q, k);
}

}  // namespace engram
