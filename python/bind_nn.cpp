// Python bindings of the nn area: the Engram layer in both forms.
//
//   engram.EngramLayerCore(primes, row_width, hidden_size, hc_mult, kernel_size=4, dilation=3,
//                          seed=0)       paper form on explicit hash ids [B, T, cols]
//   engram.EngramLayer(config_path, layer_id, hidden_size, hc_mult, tokenizer_path, seed=0)
//                          the same layer built from an Engram config and a tokenizer; forward
//                          takes raw token ids [B, T] and hashes them (compressor + hasher)
//   engram.EngramLayerV41(embed_weight, embed_scale, wkv_weight, wkv_scale, q_weight, k_weight,
//                         norm_eps=1e-20)  DeepSeek-V4.1 form, forward only
// The two forms return different things, and their method names say so: EngramLayer(Core).forward
// returns the Engram branch alone (the caller adds the residual, as the demo's block does, and
// backward's grad_out is the gradient of that branch); EngramLayerV41.forward_residual returns
// hidden + gate * value, the residual stream after the layer, as the V4.1 inference code does.
// Arrays are NumPy; parameters and gradients use the reference module's state_dict names.
// Every shape and name is checked; a bad one raises ValueError (IndexError for ids).
#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>
#include <pybind11/stl.h>

#include <cstring>
#include <memory>
#include <optional>
#include <sstream>
#include <string>

#include "engram/compressor.h"
#include "engram/config.h"
#include "engram/engram_layer.h"
#include "nn/kernels.h"
#include "engram/error.h"
#include "engram/hasher.h"
#include "engram/v41_checkpoint.h"
#include "engram/v41_layer.h"
#include "module.h"

namespace pb = pybind11;

namespace engram::py {
namespace {

using f32_array = pb::array_t<float, pb::array::c_style | pb::array::forcecast>;
using i64_array = pb::array_t<int64_t, pb::array::c_style | pb::array::forcecast>;
using u8_array = pb::array_t<uint8_t, pb::array::c_style>;
using bool_array = pb::array_t<bool, pb::array::c_style | pb::array::forcecast>;

std::string shape_str(const pb::array& a) {
  std::ostringstream os;
  os << '[';
  for (pb::ssize_t i = 0; i < a.ndim(); i++) os << (i ? ", " : "") << a.shape(i);
  os << ']';
  return os.str();
}

void expect_shape(const pb::array& a, std::vector<int64_t> want, const char* what) {
  bool ok = a.ndim() == static_cast<pb::ssize_t>(want.size());
  for (size_t i = 0; ok && i < want.size(); i++)
    ok = want[i] < 0 || a.shape(i) == want[i];  // -1: any size
  if (!ok) {
    std::ostringstream w;
    w << '[';
    for (size_t i = 0; i < want.size(); i++) {
      w << (i ? ", " : "");
      if (want[i] < 0)
        w << '*';
      else
        w << want[i];
    }
    w << ']';
    fail(Errc::invalid_argument, what, " has shape ", shape_str(a), ", expected ", w.str());
  }
}

f32_array new_f32(std::vector<pb::ssize_t> shape) {
  return f32_array(shape);
}

// The paper-form layer as Python sees it. Derived classes change how ids arrive.
class LayerCore {
 public:
  explicit LayerCore(EngramLayerShape shape, uint64_t seed) : layer_(std::move(shape), seed) {}
  virtual ~LayerCore() = default;

  EngramLayer& layer() { return layer_; }

  pb::dict state_dict() {
    pb::dict d;
    const auto& s = layer_.shape();
    i64_array offsets(std::vector<pb::ssize_t>{s.cols()});
    int64_t acc = 0;
    for (int64_t c = 0; c < s.cols(); c++) {
      offsets.mutable_data()[c] = acc;
      acc += s.primes[c];
    }
    d["multi_head_embedding.offsets"] = offsets;  // the demo's buffer, derived from the primes
    for (auto& t : layer_.named_parameters()) d[pb::str(t.name)] = copy_out(t);
    return d;
  }

  void load_state_dict(const pb::dict& sd) {
    auto params = layer_.named_parameters();
    // Check everything first so a bad dict leaves the layer unchanged.
    std::vector<std::pair<NamedTensor*, f32_array>> plan;
    for (auto& t : params) {
      if (!sd.contains(t.name)) fail(Errc::invalid_argument, "load_state_dict: missing ", t.name);
      f32_array a = f32_array::ensure(sd[pb::str(t.name)]);
      if (!a) fail(Errc::invalid_argument, "load_state_dict: ", t.name, " is not a float array");
      expect_shape(a, t.shape, ("load_state_dict: " + t.name).c_str());
      plan.emplace_back(&t, a);
    }
    for (auto item : sd) {
      const std::string key = pb::str(item.first);
      if (key == "multi_head_embedding.offsets") {
        i64_array off = i64_array::ensure(item.second);
        const auto& s = layer_.shape();
        if (!off) fail(Errc::invalid_argument, "load_state_dict: ", key, " is not an int array");
        expect_shape(off, {s.cols()}, ("load_state_dict: " + key).c_str());
        int64_t acc = 0;
        for (int64_t c = 0; c < s.cols(); c++) {
          if (off.data()[c] != acc)
            fail(Errc::mismatch, "load_state_dict: ", key, "[", c, "] = ", off.data()[c],
                 " but this layer's primes give ", acc);
          acc += s.primes[c];
        }
        continue;
      }
      bool known = false;
      for (auto& t : params) known = known || t.name == key;
      if (!known) fail(Errc::invalid_argument, "load_state_dict: unexpected key ", key);
    }
    for (auto& [t, a] : plan) std::memcpy(t->data, a.data(), sizeof(float) * t->numel());
  }

  // hidden [B, T, hc, d], hash_ids [B, T, cols] -> [B, T, hc, d]
  f32_array forward_hash(const f32_array& hidden, const i64_array& hash_ids) {
    const auto& s = layer_.shape();
    expect_shape(hidden, {-1, -1, s.hc, s.hidden}, "hidden");
    const int64_t B = hidden.shape(0), T = hidden.shape(1);
    expect_shape(hash_ids, {B, T, s.cols()}, "hash_ids");
    f32_array out = new_f32({B, T, s.hc, s.hidden});
    {
      pb::gil_scoped_release unlock;
      layer_.forward(out.mutable_data(), hidden.data(), hash_ids.data(), B, T);
    }
    B_ = B;
    T_ = T;
    return out;
  }

  f32_array backward(const f32_array& grad_out) {
    const auto& s = layer_.shape();
    expect_shape(grad_out, {B_, T_, s.hc, s.hidden}, "grad_out");
    f32_array dh = new_f32({B_, T_, s.hc, s.hidden});
    std::fill(dh.mutable_data(), dh.mutable_data() + dh.size(), 0.0f);
    pb::gil_scoped_release unlock;
    layer_.backward(dh.mutable_data(), grad_out.data());
    return dh;
  }

  pb::dict grads() {
    pb::dict d;
    const auto& s = layer_.shape();
    f32_array table = new_f32({s.table_rows(), s.row_width});
    std::fill(table.mutable_data(), table.mutable_data() + table.size(), 0.0f);
    nn::row_grads_add_to_dense(table.mutable_data(), layer_.table_grad());
    d["multi_head_embedding.embedding.weight"] = table;
    for (auto& t : layer_.named_grads()) d[pb::str(t.name)] = copy_out(t);
    return d;
  }

  // (rows int64 [R], grads float32 [R, row_width]): the table gradient as kept (sparse).
  pb::tuple table_grad() {
    const auto& g = layer_.table_grad();
    const auto R = static_cast<pb::ssize_t>(g.rows.size());
    i64_array rows(std::vector<pb::ssize_t>{R});
    f32_array grads = new_f32({R, layer_.shape().row_width});
    std::copy(g.rows.begin(), g.rows.end(), rows.mutable_data());
    std::copy(g.grads.begin(), g.grads.end(), grads.mutable_data());
    return pb::make_tuple(rows, grads);
  }

  // hidden [B, hc, d], hash_ids [B, cols] -> [B, hc, d]
  f32_array decode_step(const f32_array& hidden, const i64_array& hash_ids) {
    const auto& s = layer_.shape();
    expect_shape(hidden, {-1, s.hc, s.hidden}, "hidden");
    const int64_t B = hidden.shape(0);
    expect_shape(hash_ids, {B, s.cols()}, "hash_ids");
    f32_array out = new_f32({B, s.hc, s.hidden});
    pb::gil_scoped_release unlock;
    layer_.decode_step(out.mutable_data(), hidden.data(), hash_ids.data(), B);
    return out;
  }

 private:
  static f32_array copy_out(const NamedTensor& t) {
    std::vector<pb::ssize_t> shape(t.shape.begin(), t.shape.end());
    f32_array a(shape);
    std::memcpy(a.mutable_data(), t.data, sizeof(float) * t.numel());
    return a;
  }

  EngramLayer layer_;
  int64_t B_ = -1, T_ = -1;  // of the last forward; -1 before any (backward's shape check fails)
};

// EngramConfig -> TokenCompressor -> NgramHasher -> layer.
struct Composed {
  EngramConfig config;
  std::unique_ptr<NgramHasher> hasher;
  int64_t layer_id = 0;
};

Composed compose(const std::string& config_path, int64_t layer_id,
                 const std::string& tokenizer_path) {
  Composed c;
  c.config = EngramConfig::from_file(config_path);
  TokenCompressor comp = TokenCompressor::from_tokenizer_file(tokenizer_path);
  c.config.check_compressed_vocab_size(comp.compressed_vocab_size(), tokenizer_path);
  c.hasher = std::make_unique<NgramHasher>(c.config, comp.lookup(), comp.compressed_vocab_size());
  c.hasher->layout(layer_id);  // throws out_of_range naming the layer when it has no Engram
  c.layer_id = layer_id;
  return c;
}

EngramLayerShape shape_from(const Composed& c, int64_t hidden_size, int64_t hc_mult) {
  EngramLayerShape s;
  s.hidden = hidden_size;
  s.hc = hc_mult;
  s.row_width = c.config.row_dim();
  auto primes = c.hasher->primes(c.layer_id);
  s.primes.assign(primes.begin(), primes.end());
  s.kernel = c.config.kernel_size > 0 ? c.config.kernel_size : 4;
  s.dilation = c.config.max_ngram;
  return s;
}

class LayerFromConfig : public LayerCore {
 public:
  LayerFromConfig(Composed c, int64_t hidden_size, int64_t hc_mult, uint64_t seed)
      : LayerCore(shape_from(c, hidden_size, hc_mult), seed), c_(std::move(c)) {}

  // input_ids [B, T] raw token ids -> hash ids [B, T, cols] (the demo's hash()[layer_id])
  i64_array hash(const i64_array& input_ids) {
    expect_shape(input_ids, {-1, -1}, "input_ids");
    const int64_t B = input_ids.shape(0), T = input_ids.shape(1), C = c_.hasher->num_columns();
    i64_array out(std::vector<pb::ssize_t>{B, T, C});
    c_.hasher->hash(c_.layer_id, {input_ids.data(), static_cast<size_t>(B * T)}, B, T,
                    {out.mutable_data(), static_cast<size_t>(B * T * C)});
    return out;
  }

  f32_array forward_ids(const f32_array& hidden, const i64_array& input_ids) {
    expect_shape(input_ids, {-1, -1}, "input_ids");
    if (hidden.ndim() >= 2 &&
        (hidden.shape(0) != input_ids.shape(0) || hidden.shape(1) != input_ids.shape(1)))
      fail(Errc::invalid_argument, "hidden ", shape_str(hidden), " and input_ids ",
           shape_str(input_ids), " disagree on [B, T]");
    f32_array out = forward_hash(hidden, hash(input_ids));
    // Each sequence's hash history, so decode steps on token ids continue these prompts.
    const int64_t B = input_ids.shape(0), T = input_ids.shape(1);
    states_.assign(B, HashState{});
    for (int64_t b = 0; b < B; b++)
      c_.hasher->advance(states_[b], {input_ids.data() + b * T, static_cast<size_t>(T)});
    return out;
  }

  void reset_decode_ids(int64_t B) {
    layer().reset_decode(B);
    states_.assign(B, HashState{});
  }

  // hidden [B, hc, d] and either input_ids [B] (one new raw token per sequence, hashed against
  // the history of the last forward or reset_decode) or hash_ids [B, cols].
  f32_array decode_step_any(const f32_array& hidden, const i64_array& ids) {
    if (ids.ndim() != 1) return decode_step(hidden, ids);
    const int64_t B = ids.shape(0), C = c_.hasher->num_columns();
    if (static_cast<int64_t>(states_.size()) != B)
      fail(Errc::invalid_argument, "decode_step: ", B, " token ids but the decode state holds ",
           states_.size(), " sequences (run forward on token ids, or reset_decode)");
    i64_array hash_ids(std::vector<pb::ssize_t>{B, C});
    for (int64_t b = 0; b < B; b++)
      c_.hasher->hash_chunk(states_[b], c_.layer_id, {ids.data() + b, 1},
                            {hash_ids.mutable_data() + b * C, static_cast<size_t>(C)});
    f32_array out = decode_step(hidden, hash_ids);
    for (int64_t b = 0; b < B; b++) c_.hasher->advance(states_[b], {ids.data() + b, 1});
    return out;
  }

  int64_t layer_id() const { return c_.layer_id; }

 private:
  Composed c_;
  std::vector<HashState> states_;  // per sequence, for decode_step on token ids
};

class LayerV41 {
 public:
  LayerV41(u8_array embed_weight, u8_array embed_scale, const u8_array& wkv_weight,
           const u8_array& wkv_scale, const f32_array& q_weight, const f32_array& k_weight,
           double norm_eps)
      : embed_weight_(std::move(embed_weight)), embed_scale_(std::move(embed_scale)) {
    expect_shape(embed_weight_, {-1, -1}, "embed.weight");
    const int64_t rows = embed_weight_.shape(0), hd = embed_weight_.shape(1);
    expect_shape(embed_scale_, {rows, hd / 32}, "embed.scale");
    expect_shape(q_weight, {-1, -1}, "q_weight");
    const int64_t hc = q_weight.shape(0), d = q_weight.shape(1);
    expect_shape(k_weight, {hc, d}, "k_weight");
    expect_shape(wkv_weight, {(hc + 1) * d, -1}, "wkv.weight");
    const int64_t E = wkv_weight.shape(1);
    if (hd <= 0 || E % hd != 0)
      fail(Errc::invalid_argument, "wkv.weight has ", E, " inputs, not a multiple of head_dim ",
           hd);
    EngramV41Shape s;
    s.hidden = d;
    s.hc = hc;
    s.cols = E / hd;
    s.head_dim = hd;
    s.norm_eps = static_cast<float>(norm_eps);
    layer_ = std::make_unique<EngramLayerV41>(
        s, std::span<const uint8_t>(wkv_weight.data(), wkv_weight.size()),
        std::span<const uint8_t>(wkv_scale.data(), wkv_scale.size()),
        std::span<const float>(q_weight.data(), q_weight.size()),
        std::span<const float>(k_weight.data(), k_weight.size()));
    layer_->attach_table({embed_weight_.data(), embed_scale_.data(), rows});
  }

  // A layer whose dense weights come from a V4.1 checkpoint directory and whose rows are
  // passed in by the caller (forward_rows_residual), e.g. from a TableStore over the same
  // checkpoint.
  static std::unique_ptr<LayerV41> from_checkpoint(const std::string& dir, int64_t layer_id) {
    const std::unique_ptr<V41Checkpoint> ck = V41Checkpoint::open(dir);
    return std::unique_ptr<LayerV41>(new LayerV41(load_v41_layer(*ck, layer_id)));
  }

  // hidden [B, T, hc, d]; rows float32 [B, T, cols, head_dim] (dequantized, as TableStore.lookup
  // returns them); token_mask bool [B, T] or None -> hidden + gate * value
  f32_array forward_rows(const f32_array& hidden, const f32_array& rows,
                         const std::optional<bool_array>& token_mask) {
    const auto& s = layer_->shape();
    return run(hidden, token_mask, [&](int64_t B, int64_t T) {
      expect_shape(rows, {B, T, s.cols, s.head_dim}, "rows");
      return [&, B, T](float* out, const uint8_t* mask) {
        layer_->forward_rows(out, hidden.data(), rows.data(), mask, B * T);
      };
    });
  }

  // Hash raw token ids with the tables of config_path's layer layer_id (V4.1 form). The config
  // must describe this layer: hidden_size, hc_mult, engram_head_dim, columns and table rows.
  void attach_hasher(const std::string& config_path, int64_t layer_id,
                     const std::string& tokenizer_path) {
    Composed c = compose(config_path, layer_id, tokenizer_path);
    const auto& s = layer_->shape();
    const auto& cfg = c.config;
    auto check = [&](const char* what, int64_t cfg_value, int64_t have) {
      if (cfg_value != have)
        fail(Errc::mismatch, config_path, ": ", what, " is ", cfg_value, " but the weights give ",
             have);
    };
    check("hidden_size", cfg.hidden_size.value_or(-1), s.hidden);
    check("hc_mult", cfg.hc_mult.value_or(-1), s.hc);
    check("engram_head_dim", cfg.row_dim(), s.head_dim);
    check("hash columns", c.hasher->num_columns(), s.cols);
    check(("rows of layer " + std::to_string(layer_id)).c_str(), c.hasher->total_rows(layer_id),
          embed_weight_.shape(0));
    composed_ = std::move(c);
  }

  // input_ids [B, T] -> global row ids [B, T, cols]; positions where token_mask is false are
  // dead (V4.1 image spans: the n-gram look-back stops there).
  i64_array hash_rows(const i64_array& input_ids, const std::optional<bool_array>& token_mask) {
    if (!composed_)
      fail(Errc::invalid_argument, "EngramLayerV41: no hasher (call attach_hasher first)");
    expect_shape(input_ids, {-1, -1}, "input_ids");
    const int64_t B = input_ids.shape(0), T = input_ids.shape(1), C = layer_->shape().cols;
    std::vector<uint8_t> dead;
    if (token_mask) {
      expect_shape(*token_mask, {B, T}, "token_mask");
      dead.resize(B * T);
      for (int64_t i = 0; i < B * T; i++) dead[i] = token_mask->data()[i] ? 0 : 1;
    }
    i64_array out(std::vector<pb::ssize_t>{B, T, C});
    composed_->hasher->hash_rows(composed_->layer_id,
                                 {input_ids.data(), static_cast<size_t>(B * T)}, B, T,
                                 {out.mutable_data(), static_cast<size_t>(B * T * C)}, dead);
    return out;
  }

  // hidden [B, T, hc, d]; ids: row ids [B, T, cols] (global) or raw token ids [B, T] (hashed
  // with the attached hasher); token_mask bool [B, T] or None -> hidden + gate * value
  f32_array forward(const f32_array& hidden, const i64_array& ids,
                    const std::optional<bool_array>& token_mask) {
    if (ids.ndim() == 2) return forward(hidden, hash_rows(ids, token_mask), token_mask);
    const auto& s = layer_->shape();
    return run(hidden, token_mask, [&](int64_t B, int64_t T) {
      expect_shape(ids, {B, T, s.cols}, "row_ids");
      return [&, B, T](float* out, const uint8_t* mask) {
        layer_->forward(out, hidden.data(), ids.data(), mask, B * T);
      };
    });
  }

  const EngramV41Shape& shape() const { return layer_->shape(); }

  f32_array wkv() const {
    const auto& s = layer_->shape();
    f32_array a = new_f32({(s.hc + 1) * s.hidden, s.emb_dim()});
    std::copy(layer_->wkv().begin(), layer_->wkv().end(), a.mutable_data());
    return a;
  }

 private:
  explicit LayerV41(std::unique_ptr<EngramLayerV41> layer) : layer_(std::move(layer)) {}

  // Shared by both forwards: checks hidden [B, T, hc, d] and the mask [B, T], lets
  // check_inputs(B, T) validate the rest and return the kernel call, then runs it without the
  // GIL into a new [B, T, hc, d] array.
  template <typename CheckInputs>
  f32_array run(const f32_array& hidden, const std::optional<bool_array>& token_mask,
                CheckInputs&& check_inputs) {
    const auto& s = layer_->shape();
    expect_shape(hidden, {-1, -1, s.hc, s.hidden}, "hidden");
    const int64_t B = hidden.shape(0), T = hidden.shape(1);
    auto kernel = check_inputs(B, T);
    std::vector<uint8_t> mask;
    if (token_mask) {
      expect_shape(*token_mask, {B, T}, "token_mask");
      mask.assign(token_mask->data(), token_mask->data() + B * T);
    }
    f32_array out = new_f32({B, T, s.hc, s.hidden});
    pb::gil_scoped_release unlock;
    kernel(out.mutable_data(), mask.empty() ? nullptr : mask.data());
    return out;
  }

  u8_array embed_weight_, embed_scale_;  // kept alive: the layer reads rows from them
  std::unique_ptr<EngramLayerV41> layer_;
  std::optional<Composed> composed_;
};

}  // namespace

void bind_nn(pybind11::module_& m) {
  pb::class_<LayerCore>(m, "EngramLayerCore",
                        "Engram layer, paper/demo form, on explicit per-column hash ids.")
      .def(pb::init([](std::vector<int64_t> primes, int64_t row_width, int64_t hidden_size,
                       int64_t hc_mult, int64_t kernel_size, int64_t dilation, uint64_t seed) {
             EngramLayerShape s;
             s.primes = std::move(primes);
             s.row_width = row_width;
             s.hidden = hidden_size;
             s.hc = hc_mult;
             s.kernel = kernel_size;
             s.dilation = dilation;
             return std::make_unique<LayerCore>(std::move(s), seed);
           }),
           pb::arg("primes"), pb::arg("row_width"), pb::arg("hidden_size"), pb::arg("hc_mult"),
           pb::arg("kernel_size") = 4, pb::arg("dilation") = 3, pb::arg("seed") = 0,
           "primes: rows of each hash column's table; row_width: width of one row; hidden_size: "
           "d; hc_mult: residual branches; kernel_size, dilation: the ShortConv's; seed: of the "
           "initial parameters.")
      .def("__repr__",
           [](LayerCore& l) {
             const auto& s = l.layer().shape();
             return pb::str(
                        "EngramLayerCore(primes={}, row_width={}, hidden_size={}, hc_mult={}, "
                        "kernel_size={}, dilation={})")
                 .format(s.primes, s.row_width, s.hidden, s.hc, s.kernel, s.dilation);
           })
      .def("state_dict", &LayerCore::state_dict,
           "Parameters by the reference names (copies), plus the multi_head_embedding.offsets "
           "buffer.")
      .def("load_state_dict", &LayerCore::load_state_dict, pb::arg("state_dict"),
           "Copies every parameter from state_dict (names as state_dict() gives them); checks "
           "every name and shape before changing anything.")
      .def("forward", &LayerCore::forward_hash, pb::arg("hidden"), pb::arg("hash_ids"),
           "hidden float32 [B,T,hc,d], hash_ids int64 [B,T,cols] -> the Engram output "
           "[B,T,hc,d] alone: the caller adds the residual (hidden + forward(...)). "
           "EngramLayerV41.forward_residual returns that sum instead.")
      .def("backward", &LayerCore::backward, pb::arg("grad_out"),
           "After forward: grad_out [B,T,hc,d] -> grad_hidden; parameter grads accumulate.")
      .def("grads", &LayerCore::grads, "Every parameter's gradient in its shape (table dense).")
      .def(
          "zero_grad", [](LayerCore& l) { l.layer().zero_grad(); },
          "Sets every parameter gradient (the sparse table gradient included) to zero.")
      .def("table_grad", &LayerCore::table_grad,
           "(rows int64 [R], grads float32 [R, row_width]): the sparse table gradient.")
      .def(
          "reset_decode", [](LayerCore& l, int64_t B) { l.layer().reset_decode(B); },
          pb::arg("batch"), "Starts decoding batch sequences from an empty history.")
      .def("decode_step", &LayerCore::decode_step, pb::arg("hidden"), pb::arg("hash_ids"),
           "hidden [B,hc,d], hash_ids [B,cols] -> [B,hc,d], continuing the last forward.")
      .def_property_readonly(
          "primes", [](LayerCore& l) { return l.layer().shape().primes; },
          "Rows of each hash column's table.")
      .def_property_readonly(
          "num_columns", [](LayerCore& l) { return l.layer().shape().cols(); },
          "Hash columns (cols).");

  pb::class_<LayerFromConfig, LayerCore>(
      m, "EngramLayer", "Engram layer, paper/demo form, built from a config and a tokenizer.")
      .def(pb::init([](const std::string& config_path, int64_t layer_id, int64_t hidden_size,
                       int64_t hc_mult, const std::string& tokenizer_path, uint64_t seed) {
             return std::make_unique<LayerFromConfig>(
                 compose(config_path, layer_id, tokenizer_path), hidden_size, hc_mult, seed);
           }),
           pb::arg("config_path"), pb::arg("layer_id"), pb::arg("hidden_size"), pb::arg("hc_mult"),
           pb::arg("tokenizer_path"), pb::arg("seed") = 0,
           "config_path: an Engram config; layer_id: one of its Engram layers; hidden_size: d; "
           "hc_mult: residual branches; tokenizer_path: the tokenizer.json whose compression the "
           "hashes use; seed: of the initial parameters.")
      .def("__repr__",
           [](LayerFromConfig& l) {
             const auto& s = l.layer().shape();
             return pb::str(
                        "EngramLayer(layer_id={}, num_columns={}, row_width={}, "
                        "hidden_size={}, hc_mult={})")
                 .format(l.layer_id(), s.cols(), s.row_width, s.hidden, s.hc);
           })
      .def("hash", &LayerFromConfig::hash, pb::arg("input_ids"),
           "input_ids int64 [B,T] -> per-column hash ids [B,T,cols] of this layer")
      .def("forward", &LayerFromConfig::forward_ids, pb::arg("hidden"), pb::arg("input_ids"),
           "hidden float32 [B,T,hc,d], input_ids int64 [B,T] (raw token ids, hashed here) -> the "
           "Engram output [B,T,hc,d] alone, as EngramLayerCore.forward. Later decode steps on "
           "token ids continue these sequences.")
      .def("reset_decode", &LayerFromConfig::reset_decode_ids, pb::arg("batch"),
           "Starts decoding batch sequences from an empty history (hash and convolution).")
      .def("decode_step", &LayerFromConfig::decode_step_any, pb::arg("hidden"), pb::arg("ids"),
           "hidden [B,hc,d]; ids: raw token ids int64 [B] (hashed against each sequence's history) "
           "or hash_ids [B,cols] -> [B,hc,d], the Engram output alone.");

  pb::class_<LayerV41>(m, "EngramLayerV41",
                       "Engram layer, DeepSeek-V4.1 form (forward only). Its forwards return the "
                       "residual stream after the layer (hidden + gate * value), hence the names "
                       "forward_residual and forward_rows_residual.")
      .def(pb::init<u8_array, u8_array, const u8_array&, const u8_array&, const f32_array&,
                    const f32_array&, double>(),
           pb::arg("embed_weight"), pb::arg("embed_scale"), pb::arg("wkv_weight"),
           pb::arg("wkv_scale"), pb::arg("q_weight"), pb::arg("k_weight"),
           pb::arg("norm_eps") = 1e-20,
           "embed_weight uint8 [rows, head_dim] e4m3fn and embed_scale uint8 [rows, head_dim/32] "
           "e8m0: the table (kept alive by the layer); wkv_weight uint8 [(hc+1)*d, cols*head_dim] "
           "and wkv_scale: the block-quantized wkv; q_weight, k_weight float32 [hc, d]; norm_eps: "
           "of the gate's RMS norms.")
      .def("__repr__",
           [](const LayerV41& l) {
             const auto& s = l.shape();
             return pb::str(
                        "EngramLayerV41(hidden_size={}, hc_mult={}, num_columns={}, "
                        "head_dim={})")
                 .format(s.hidden, s.hc, s.cols, s.head_dim);
           })
      .def("forward_residual", &LayerV41::forward, pb::arg("hidden"), pb::arg("ids"),
           pb::arg("token_mask") = pb::none(),
           "hidden float32 [B,T,hc,d]; ids: row ids int64 [B,T,cols] (global) or token ids "
           "[B,T] (needs attach_hasher); token_mask bool [B,T] or None -> hidden + gate * value "
           "[B,T,hc,d] (the residual included, unlike EngramLayer.forward)")
      .def_static("from_checkpoint", &LayerV41::from_checkpoint, pb::arg("dir"),
                  pb::arg("layer_id"),
                  "Dense weights (wkv, q_weight, k_weight) from a V4.1 checkpoint directory; rows "
                  "come from the caller (forward_rows_residual), e.g. a TableStore over it.")
      .def("forward_rows_residual", &LayerV41::forward_rows, pb::arg("hidden"), pb::arg("rows"),
           pb::arg("token_mask") = pb::none(),
           "hidden float32 [B,T,hc,d]; rows float32 [B,T,cols,head_dim] (as TableStore.lookup "
           "returns them); token_mask bool [B,T] or None -> hidden + gate * value [B,T,hc,d]")
      .def("attach_hasher", &LayerV41::attach_hasher, pb::arg("config_path"), pb::arg("layer_id"),
           pb::arg("tokenizer_path"),
           "Hashes raw token ids with config_path's layer layer_id and tokenizer_path's "
           "compression, so forward_residual takes token ids [B,T]; the config must match the "
           "weights (hidden_size, hc_mult, head_dim, columns, rows).")
      .def("hash_rows", &LayerV41::hash_rows, pb::arg("input_ids"),
           pb::arg("token_mask") = pb::none(),
           "token ids [B,T] -> global row ids [B,T,cols]; masked-off positions are dead")
      .def("wkv", &LayerV41::wkv, "The dequantized wkv weight [(hc+1)*d, cols*head_dim].");
}

}  // namespace engram::py
