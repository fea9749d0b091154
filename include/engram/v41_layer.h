// engram/v41_layer.h: a DeepSeek-V4.1 Engram layer built from a checkpoint directory.
//
// Joins the checkpoint opener (v41_checkpoint.h, which validates names, dtypes, shapes and byte
// spans) with the layer math (engram_layer.h): reads layers.{L}.engram.wkv.{weight,scale},
// q_weight and k_weight, takes hidden_size / hc_mult / head_dim / norm eps from config.json, and
// returns a layer whose table rows come from elsewhere (a RowStore tier, through forward_rows).
// The embed table is NOT loaded: that is the point of serving it from a store.
#pragma once

#include <cstdint>
#include <memory>

#include "engram/engram_layer.h"
#include "engram/v41_checkpoint.h"

namespace engram {

// Throws Errc::out_of_range when layer_id is not an Engram layer of the checkpoint,
// Errc::mismatch when a weight's dtype or size disagrees with config.json, Errc::io on a
// failed read.
std::unique_ptr<EngramLayerV41> load_v41_layer(const V41Checkpoint& checkpoint, int64_t layer_id);

}  // namespace engram
