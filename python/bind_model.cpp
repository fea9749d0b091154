// Python bindings of src/model: engram.Model (the transformer: parameters by name as NumPy arrays,
// forward / backward / decode), engram.AdamW, engram.SparseRowAdam, engram.clip_grad_norm and
// engram.LrSchedule. Arrays are copied in and out (a parameter array from Python is never kept
// by reference); long calls release the GIL.
#include <pybind11/numpy.h>
#include <pybind11/stl.h>

#include <algorithm>
#include <cstring>

#include "engram/error.h"
#include "engram/model.h"
#include "engram/optim.h"
#include "engram/tokenizer.h"
#include "module.h"

namespace py = pybind11;
using namespace pybind11::literals;

namespace engram::py {

namespace {

using I64Array = ::py::array_t<int64_t, ::py::array::c_style | ::py::array::forcecast>;
using F32Array = ::py::array_t<float, ::py::array::c_style | ::py::array::forcecast>;

// (B, T) token array -> int32 ids, refusing values that do not fit.
std::vector<int32_t> to_ids(const I64Array& a, const char* what, int64_t& B, int64_t& T) {
  if (a.ndim() != 2) fail(Errc::invalid_argument, what, ": expected a 2-D (B, T) array");
  B = a.shape(0);
  T = a.shape(1);
  std::vector<int32_t> out(B * T);
  const int64_t* p = a.data();
  for (int64_t i = 0; i < B * T; i++) {
    if (p[i] < INT32_MIN || p[i] > INT32_MAX) {
      fail(Errc::out_of_range, what, "[", i / T, ", ", i % T, "] = ", p[i], " does not fit int32");
    }
    out[i] = static_cast<int32_t>(p[i]);
  }
  return out;
}

::py::array_t<float> to_array(std::span<const float> data, const std::vector<int64_t>& shape) {
  ::py::array_t<float> out(shape);
  std::memcpy(out.mutable_data(), data.data(), data.size() * sizeof(float));
  return out;
}

void copy_into(std::span<float> dst, const ParamInfo& info, const F32Array& a) {
  std::vector<int64_t> shape(a.shape(), a.shape() + a.ndim());
  if (shape != info.shape) {
    std::string got, want;
    for (int64_t s : shape) got += std::to_string(s) + ",";
    for (int64_t s : info.shape) want += std::to_string(s) + ",";
    fail(Errc::mismatch, info.name, ": array of shape (", got, ") where (", want, ") is expected");
  }
  std::memcpy(dst.data(), a.data(), dst.size() * sizeof(float));
}

}  // namespace

void bind_model(::py::module_& m) {
  m.def("tokenizer_compress_lookup", &tokenizer_compress_lookup, "tokenizer"_a, "vocab_size"_a,
        "Model.compress_lookup for a tokenizer: TokenCompressor's lookup extended to vocab_size "
        "ids (a model's vocab_size may round the tokenizer's up; the extra ids get compressed ids "
        "of their own). ValueError when the tokenizer has more than vocab_size ids.");
  ::py::class_<Model>(m, "Model",
                      "Decoder-only transformer (RMSNorm, RoPE, causal GQA attention, SwiGLU or "
                      "MoE FFN) trained in fp32 on CPU. See include/engram/model.h.")
      .def(::py::init([](const std::string& config_json, uint64_t seed,
                         std::vector<int64_t> compress_lookup) {
             ModelConfig c = ModelConfig::from_json(config_json);
             c.engram.compress_lookup = std::move(compress_lookup);
             return Model(c, seed);
           }),
           "config_json"_a, "seed"_a = 0, "compress_lookup"_a = std::vector<int64_t>{},
           "config_json: the model config as JSON text (docs/training.md); seed: of the initial "
           "parameters; compress_lookup: raw id -> compressed id, vocab_size entries, required "
           "when the config's engram object sets compress_tokens (tokenizer_compress_lookup).")
      .def("__repr__",
           [](const Model& self) {
             const ModelConfig& c = self.config();
             return ::py::str(
                        "Model(vocab_size={}, hidden_size={}, n_layers={}, n_heads={}, "
                        "n_kv_heads={}, max_seq_len={}, params={})")
                 .format(c.vocab_size, c.hidden_size, c.n_layers, c.n_heads, c.n_kv_heads,
                         c.max_seq_len, self.param_infos().size());
           })
      .def_property_readonly(
          "config_json", [](const Model& self) { return self.config().to_json(); },
          "The model config as JSON text (what save writes to config.json).")
      .def("save", &Model::save, "dir"_a,
           "Writes config.json and model.safetensors (F32) into dir, atomically per file.")
      .def_static("load", &Model::load, "dir"_a,
                  "A model from config.json + model.safetensors; strict about tensor names, "
                  "shapes and dtype.")
      .def(
          "param_names",
          [](const Model& self) {
            std::vector<std::string> names;
            for (const ParamInfo& info : self.param_infos()) names.push_back(info.name);
            return names;
          },
          "Every parameter's name (PyTorch state_dict names), in layout order.")
      .def(
          "param_shape",
          [](const Model& self, const std::string& name) { return self.param_info(name).shape; },
          "name"_a, "The shape of parameter name; IndexError for an unknown name.")
      .def(
          "weight_decay",
          [](const Model& self, const std::string& name) {
            return self.param_info(name).weight_decay;
          },
          "name"_a, "Whether AdamW applies weight decay to parameter name.")
      .def(
          "num_params", [](Model& self) { return self.params().size(); },
          "Number of backbone parameters (floats; Engram parameters are held apart).")
      .def(
          "get_param",
          [](Model& self, const std::string& name) {
            return to_array(self.param(name), self.param_info(name).shape);
          },
          "name"_a, "A copy of parameter name, float32 in its shape.")
      .def(
          "set_param",
          [](Model& self, const std::string& name, const F32Array& a) {
            copy_into(self.param(name), self.param_info(name), a);
          },
          "name"_a, "value"_a, "Copies value (float32, the parameter's shape) into parameter name.")
      .def(
          "get_grad",
          [](Model& self, const std::string& name) {
            return to_array(self.grad(name), self.param_info(name).shape);
          },
          "name"_a,
          "A copy of the gradient of dense parameter name (an Engram table's: see grads()).")
      .def(
          "set_grad",
          [](Model& self, const std::string& name, const F32Array& a) {
            copy_into(self.grad(name), self.param_info(name), a);
          },
          "name"_a, "value"_a, "Copies value into the gradient of dense parameter name.")
      .def(
          "params",
          [](Model& self) {
            ::py::dict d;
            for (const ParamInfo& info : self.param_infos()) {
              d[::py::str(info.name)] = to_array(self.param(info.name), info.shape);
            }
            return d;
          },
          "Every parameter by name (copies, float32 in their shapes).")
      .def(
          "grads",
          [](Model& self) {
            ::py::dict d;
            std::vector<EngramTableView> tables = self.engram_tables();
            for (const ParamInfo& info : self.param_infos()) {
              const EngramTableView* table = nullptr;
              for (const EngramTableView& t : tables) {
                if (t.name == info.name) table = &t;
              }
              if (table == nullptr) {
                d[::py::str(info.name)] = to_array(self.grad(info.name), info.shape);
                continue;
              }
              ::py::array_t<float> dense(info.shape);
              float* out = dense.mutable_data();
              std::fill(out, out + info.numel, 0.0f);
              for (size_t r = 0; r < table->grad_rows.size(); r++) {
                std::memcpy(out + table->grad_rows[r] * table->width,
                            table->grad_values.data() + r * table->width,
                            table->width * sizeof(float));
              }
              d[::py::str(info.name)] = dense;
            }
            return d;
          },
          "Every gradient by name; Engram tables' sparse gradients are returned densified.")
      .def(
          "engram_hash_ids",
          [](Model& self, int64_t layer, const I64Array& ids) {
            int64_t B, T;
            std::vector<int32_t> i = to_ids(ids, "ids", B, T);
            std::vector<int64_t> h = self.engram_hash_ids(layer, i.data(), B, T);
            const int64_t cols = static_cast<int64_t>(h.size()) / (B * T);
            ::py::array_t<int64_t> out(std::vector<int64_t>{B, T, cols});
            std::memcpy(out.mutable_data(), h.data(), h.size() * sizeof(int64_t));
            return out;
          },
          "layer"_a, "ids"_a,
          "ids int [B,T] -> int64 [B,T,columns]: Engram layer layer's per-column hash ids, "
          "before the column offsets.")
      .def("clip_grad_norm", &Model::clip_grad_norm, "max_norm"_a,
           "Global L2 norm over every gradient (Engram tables' rows included); all of them are "
           "scaled in place when it exceeds max_norm.")
      .def(
          "forward",
          [](Model& self, const I64Array& ids, const I64Array& targets) {
            int64_t B, T, Bt, Tt;
            std::vector<int32_t> i = to_ids(ids, "ids", B, T);
            std::vector<int32_t> t = to_ids(targets, "targets", Bt, Tt);
            if (B != Bt || T != Tt) {
              fail(Errc::mismatch, "forward: ids are (", B, ", ", T, ") but targets are (", Bt,
                   ", ", Tt, ")");
            }
            ::py::gil_scoped_release release;
            return self.forward(i.data(), t.data(), B, T);
          },
          "ids"_a, "targets"_a,
          "Training forward; returns mean cross-entropy + MoE aux loss. Negative targets are "
          "ignored.")
      .def(
          "forward_logits",
          [](Model& self, const I64Array& ids) {
            int64_t B, T;
            std::vector<int32_t> i = to_ids(ids, "ids", B, T);
            {
              ::py::gil_scoped_release release;
              self.forward(i.data(), B, T);
            }
            return to_array(self.logits(), {B, T, self.config().vocab_size});
          },
          "ids"_a, "Inference forward: ids int [B,T] -> float32 logits [B,T,vocab_size].")
      .def_property_readonly("last_ce_loss", &Model::last_ce_loss,
                             "Mean cross-entropy of the last training forward.")
      .def_property_readonly("last_aux_loss", &Model::last_aux_loss,
                             "Sum of the MoE load-balancing losses of the last forward.")
      .def("zero_grad", &Model::zero_grad, "Sets every gradient to zero.")
      .def("backward", &Model::backward, ::py::call_guard<::py::gil_scoped_release>(),
           "Accumulates (+=) the gradient of the last training forward's loss.")
      .def(
          "decode_step",
          [](Model& self, int64_t token) {
            if (token < INT32_MIN || token > INT32_MAX) {
              fail(Errc::out_of_range, "decode_step: token ", token, " does not fit int32");
            }
            auto logits = self.decode_step(static_cast<int32_t>(token));
            return to_array(logits, {self.config().vocab_size});
          },
          "token"_a,
          "Feeds one token at position cache_length (KV cache, batch 1) -> float32 logits "
          "[vocab_size]. Fails once max_seq_len positions are used.")
      .def("reset_cache", &Model::reset_cache,
           "Empties the KV cache: the next decode_step is "
           "position 0.")
      .def_property_readonly("cache_length", &Model::cache_length,
                             "Positions held in the KV cache.")
      .def("train_flops", &Model::train_flops, "B"_a, "T"_a,
           "Floating-point operations of one training step (forward + backward) on B x T tokens.");

  ::py::class_<AdamW>(m, "AdamW", "AdamW over all of a Model's parameters (see engram/optim.h).")
      .def(::py::init([](Model& model, float beta1, float beta2, float eps, float weight_decay) {
             return AdamW(model.param_spans(), AdamWOptions{beta1, beta2, eps, weight_decay});
           }),
           "model"_a, "beta1"_a = 0.9f, "beta2"_a = 0.95f, "eps"_a = 1e-8f, "weight_decay"_a = 0.1f,
           ::py::keep_alive<1, 2>(),
           "AdamW over model's dense parameters (Engram tables have EngramTableAdam); "
           "weight_decay applies where Model.weight_decay(name) is true. Keeps model alive.")
      .def("__repr__",
           [](const AdamW& self) { return ::py::str("AdamW(steps={})").format(self.steps()); })
      .def("step", &AdamW::step, "lr"_a, ::py::call_guard<::py::gil_scoped_release>(),
           "One update of every parameter at learning rate lr from the current gradients.")
      .def_property_readonly("steps", &AdamW::steps, "Updates made so far.");

  m.def(
      "clip_grad_norm", [](Model& model, float max_norm) { return clip_grad_norm(model, max_norm); },
      "model"_a, "max_norm"_a,
      "Global L2 norm of all the model's gradients (Engram tables' rows included), clipped to "
      "max_norm in place.");

  ::py::class_<EngramTableAdam>(m, "EngramTableAdam",
                                "Sparse Adam for the model's Engram tables: lr_multiplier x lr, "
                                "no weight decay, per-row bias correction.")
      .def(::py::init<Model&, float, float, float, float>(), "model"_a, "lr_multiplier"_a = 5.0f,
           "beta1"_a = 0.9f, "beta2"_a = 0.95f, "eps"_a = 1e-8f, ::py::keep_alive<1, 2>(),
           "Sparse Adam over model's Engram tables; keeps model alive.")
      .def("__repr__",
           [](EngramTableAdam& self) {
             return ::py::str("EngramTableAdam(tables={})").format(self.tables().size());
           })
      .def("step", &EngramTableAdam::step, "lr"_a, ::py::call_guard<::py::gil_scoped_release>(),
           "Applies the last backward's table gradients at lr x lr_multiplier.");

  ::py::class_<LrSchedule>(m, "LrSchedule", "Linear warmup, then cosine decay to min_lr.")
      .def(::py::init([](float max_lr, float min_lr, int64_t warmup, int64_t total) {
             return LrSchedule{max_lr, min_lr, warmup, total};
           }),
           "max_lr"_a, "min_lr"_a, "warmup"_a, "total"_a,
           "max_lr after warmup steps, decaying to min_lr at step total.")
      .def("__repr__",
           [](const LrSchedule& s) {
             return ::py::str("LrSchedule(max_lr={:g}, min_lr={:g}, warmup={}, total={})")
                 .format(s.max_lr, s.min_lr, s.warmup, s.total);
           })
      .def("at", &LrSchedule::at, "step"_a, "The learning rate at step (counted from 0).");

  ::py::class_<SparseRowAdam>(m, "SparseRowAdam",
                              "Adam on table rows, per-row step counts (see engram/optim.h).")
      .def(::py::init<int64_t, int64_t, float, float, float>(), "rows"_a, "width"_a,
           "beta1"_a = 0.9f, "beta2"_a = 0.95f, "eps"_a = 1e-8f,
           "State for a table of rows x width floats.")
      .def("__repr__",
           [](const SparseRowAdam& self) {
             return ::py::str("SparseRowAdam(rows={}, width={})").format(self.rows(), self.width());
           })
      .def(
          "step",
          [](SparseRowAdam& self, ::py::array_t<float, ::py::array::c_style> table,
             const I64Array& row_ids, const F32Array& row_grads, float lr) {
            if (table.ndim() != 2 || table.shape(0) != self.rows() ||
                table.shape(1) != self.width()) {
              fail(Errc::mismatch, "table: expected a float32 (", self.rows(), ", ", self.width(),
                   ") array");
            }
            const int64_t n = row_ids.size();
            if (row_grads.ndim() != 2 || row_grads.shape(0) != n ||
                row_grads.shape(1) != table.shape(1)) {
              fail(Errc::mismatch, "row_grads: expected (", n, ", ", table.shape(1), ")");
            }
            self.step(table.mutable_data(), row_ids.data(), row_grads.data(), n, lr);
          },
          "table"_a, "row_ids"_a, "row_grads"_a, "lr"_a,
          "Updates table float32 [rows, width] in place: the rows row_ids int [n] with "
          "row_grads float32 [n, width] at learning rate lr.")
      .def("row_steps", &SparseRowAdam::row_steps, "row"_a, "Updates row has received.");
}

}  // namespace engram::py
