// Python bindings of the hash area: Engram configs, the n-gram hasher, and NumPy's RNG.
//
//   engram.EngramConfig.from_file(path) / .from_json(text)      either config form (config.h)
//   engram.NgramHasher(config_path, tokenizer_path)              compression from tokenizer.json
//   engram.NgramHasher(config, lookup, compressed_vocab_size=None)
//        config: a path or an EngramConfig; lookup: int64 raw id -> compressed id (so tests need
//        no tokenizer); compressed_vocab_size defaults to max(lookup) + 1
//     .hash(input_ids [B,T], dead_mask=None, out=None) -> {layer_id: int64 [B,T,columns]}
//          (no offsets); out: {layer_id: array} to write into instead of fresh arrays
//     .hash_rows(...) -> the same plus column offsets (rows of each layer's flat table)
//     .primes(layer) / .offsets(layer) / .multipliers(layer) / .total_rows(layer)
//     .layer_ids, .num_columns, .max_ngram, .n_head, .pad_compressed, .num_threads (settable)
//     .new_state() -> HashState; .hash_chunk(state, layer, ids [T], dead=None, add_offsets=False)
//     .advance(state, ids [T], dead=None)         streaming; copy.copy(state) snapshots it
//   engram.numpy_integers(seed, low, high, size)  default_rng(seed).integers(low, high, size,
//                                                 dtype=np.int64), for tests of the RNG
//   engram.seed_sequence_state(seed, n_words, dtype="uint32")   SeedSequence.generate_state
//   engram.pcg64_raw(seed, size)                  default_rng(seed).bit_generator.random_raw(size)
// Errors: ValueError (bad config, shapes, mismatch), IndexError (ids out of range), OSError.
#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>
#include <pybind11/stl.h>

#include <algorithm>
#include <cstring>
#include <optional>
#include <string>

#include "engram/compressor.h"
#include "engram/config.h"
#include "engram/error.h"
#include "engram/hasher.h"
#include "hash/numpy_rng.h"
#include "module.h"

namespace pyb = pybind11;

namespace engram::py {
namespace {

using i64_array = pyb::array_t<int64_t, pyb::array::c_style>;
using u8_array = pyb::array_t<uint8_t, pyb::array::c_style>;

// Any integer array-like -> C-contiguous int64 with ndim dims. Floats and objects are refused
// rather than truncated.
i64_array as_int64(const pyb::object& obj, const char* what, pyb::ssize_t ndim) {
  pyb::array arr = pyb::array::ensure(obj);
  if (!arr) fail(Errc::invalid_argument, what, ": expected an integer array");
  const char kind = arr.dtype().kind();
  if (kind != 'i' && kind != 'u' && !(arr.size() == 0 && kind == 'f')) {
    fail(Errc::invalid_argument, what, ": expected integer ids, got dtype ",
         std::string(pyb::str(arr.dtype())));
  }
  if (arr.ndim() != ndim) {
    fail(Errc::invalid_argument, what, ": expected ", ndim, " dimensions, got ", arr.ndim());
  }
  if (kind == 'u' && arr.itemsize() == 8) {
    auto u = pyb::array_t<uint64_t, pyb::array::c_style | pyb::array::forcecast>::ensure(arr);
    const uint64_t* p = u.data();
    for (pyb::ssize_t i = 0; i < u.size(); ++i) {
      if (p[i] > static_cast<uint64_t>(INT64_MAX)) {
        fail(Errc::out_of_range, what, ": id ", p[i], " at flat index ", i, " exceeds int64");
      }
    }
  }
  return pyb::array_t<int64_t, pyb::array::c_style | pyb::array::forcecast>::ensure(arr);
}

// Optional dead mask (bool or integers, nonzero = dead) of a given shape -> uint8 0/1.
std::vector<uint8_t> as_dead_mask(const pyb::object& obj, const i64_array& ids) {
  if (obj.is_none()) return {};
  pyb::array arr = pyb::array::ensure(obj);
  if (!arr) fail(Errc::invalid_argument, "dead_mask: expected a bool or integer array");
  const char kind = arr.dtype().kind();
  if (kind != 'b' && kind != 'i' && kind != 'u') {
    fail(Errc::invalid_argument, "dead_mask: expected bool or integers, got dtype ",
         std::string(pyb::str(arr.dtype())));
  }
  bool same = arr.ndim() == ids.ndim();
  for (pyb::ssize_t d = 0; same && d < arr.ndim(); ++d) same = arr.shape(d) == ids.shape(d);
  if (!same) fail(Errc::invalid_argument, "dead_mask: shape differs from input_ids");
  auto b = pyb::array_t<bool, pyb::array::c_style | pyb::array::forcecast>::ensure(arr);
  std::vector<uint8_t> out(static_cast<size_t>(b.size()));
  const bool* p = b.data();
  for (size_t i = 0; i < out.size(); ++i) out[i] = p[i] ? 1 : 0;
  return out;
}

i64_array to_array(std::span<const int64_t> values) {
  i64_array out(static_cast<pyb::ssize_t>(values.size()));
  std::copy(values.begin(), values.end(), out.mutable_data());
  return out;
}

NgramHasher hasher_from_lookup(EngramConfig config, const pyb::object& lookup_obj,
                               std::optional<int64_t> compressed_vocab_size) {
  const i64_array lookup_arr = as_int64(lookup_obj, "lookup", 1);
  std::vector<int64_t> lookup(lookup_arr.data(), lookup_arr.data() + lookup_arr.size());
  int64_t vocab = 0;
  if (compressed_vocab_size) {
    vocab = *compressed_vocab_size;
  } else {
    for (int64_t v : lookup) vocab = std::max(vocab, v + 1);
  }
  return NgramHasher(std::move(config), std::move(lookup), vocab);
}

// out: None (fresh arrays) or {layer_id: writable C-contiguous int64 [B,T,C]} reused by the
// caller across calls, which saves the kernel's page zeroing of fresh output memory.
pyb::dict hash_all_layers(const NgramHasher& h, const pyb::object& ids_obj,
                          const pyb::object& dead_obj, const pyb::object& out_obj,
                          bool add_offsets) {
  const i64_array ids = as_int64(ids_obj, "input_ids", 2);
  const std::vector<uint8_t> dead = as_dead_mask(dead_obj, ids);
  const int64_t B = ids.shape(0), T = ids.shape(1), C = h.num_columns();
  pyb::dict result;
  std::vector<std::span<int64_t>> outs;
  const size_t n = static_cast<size_t>(B * T * C);
  for (int64_t layer : h.layer_ids()) {
    if (out_obj.is_none()) {
      i64_array a(std::vector<int64_t>{B, T, C});
      outs.emplace_back(a.mutable_data(), n);
      result[pyb::int_(layer)] = a;
      continue;
    }
    const pyb::dict out = out_obj.cast<pyb::dict>();
    if (!out.contains(pyb::int_(layer)))
      fail(Errc::invalid_argument, "out: no array for layer ", layer);
    pyb::array a = out[pyb::int_(layer)].cast<pyb::array>();
    const bool ok = a.dtype().is(pyb::dtype::of<int64_t>()) && a.ndim() == 3 && a.shape(0) == B &&
                    a.shape(1) == T && a.shape(2) == C && a.writeable() &&
                    (a.flags() & pyb::array::c_style);
    if (!ok) {
      fail(Errc::invalid_argument, "out[", layer,
           "]: expected a writable C-contiguous int64 array [", B, ", ", T, ", ", C, "]");
    }
    outs.emplace_back(static_cast<int64_t*>(a.mutable_data()), n);
    result[pyb::int_(layer)] = a;
  }
  {
    pyb::gil_scoped_release release;
    h.hash_layers({ids.data(), static_cast<size_t>(B * T)}, B, T, outs, dead, add_offsets);
  }
  return result;
}

}  // namespace

void bind_hash(pybind11::module_& m) {
  pyb::class_<EngramConfig>(m, "EngramConfig",
                            "Engram hyper-parameters from a demo-form JSON or a DeepSeek-V4.1 "
                            "config.json (keys validated, errors name the file and key).")
      .def_static("from_file", &EngramConfig::from_file, pyb::arg("path"),
                  "A config from a demo-form JSON or a DeepSeek-V4.1 config.json file.")
      .def_static("from_json", &EngramConfig::from_json, pyb::arg("text"),
                  pyb::arg("origin") = "<memory>",
                  "A config from JSON text; origin names it in error messages (a file name).")
      .def("__repr__",
           [](const EngramConfig& c) {
             return pyb::str(
                        "EngramConfig(form={!r}, layer_ids={}, max_ngram={}, n_head={}, "
                        "num_columns={}, row_dim={})")
                 .format(form_name(c.form), c.layer_ids, c.max_ngram, c.n_head, c.num_columns(),
                         c.row_dim());
           })
      .def_property_readonly(
          "form", [](const EngramConfig& c) { return form_name(c.form); },
          "Which form the config was read as: \"demo\" or \"deepseek_v41\".")
      .def_readonly("origin", &EngramConfig::origin,
                    "Where the config came from (a file path, or from_json's origin).")
      .def_readonly("layer_ids", &EngramConfig::layer_ids, "Layers that have an Engram module.")
      .def_readonly("max_ngram", &EngramConfig::max_ngram, "N: n-gram orders 2..N are hashed.")
      .def_readonly("n_head", &EngramConfig::n_head, "Hash heads per n-gram order.")
      .def_readonly("vocab_size_per_ngram", &EngramConfig::vocab_size_per_ngram,
                    "[N-1] per order 2..N: where the search for its primes starts, + 1.")
      .def_readonly("pad_id", &EngramConfig::pad_id,
                    "Raw token id used before the start of a sequence and after a dead position.")
      .def_readonly("seed", &EngramConfig::seed,
                    "Layer L draws its multipliers from default_rng(seed + 10007 L).")
      .def_readonly("n_embed_per_ngram", &EngramConfig::n_embed_per_ngram,
                    "Demo form: width of one n-gram order's rows, all heads together.")
      .def_readonly("kernel_size", &EngramConfig::kernel_size,
                    "Demo form: the ShortConv kernel size.")
      .def_readonly("head_dim", &EngramConfig::head_dim, "V4.1 form: row width of every head.")
      .def_readonly("num_embeddings", &EngramConfig::num_embeddings,
                    "V4.1 form: [layers] total rows per layer (checked against the primes).")
      .def_readonly("compressed_vocab_size", &EngramConfig::compressed_vocab_size,
                    "The tokenizer's compressed vocabulary size, or None (V4.1: required).")
      .def_readonly("hidden_size", &EngramConfig::hidden_size,
                    "The backbone's hidden size, or None.")
      .def_readonly("hc_mult", &EngramConfig::hc_mult, "The backbone's residual branches, or None.")
      .def_readonly("norm_eps", &EngramConfig::norm_eps, "The backbone's RMSNorm epsilon, or None.")
      .def_property_readonly("num_columns", &EngramConfig::num_columns,
                             "Hash columns per layer: (max_ngram - 1) x n_head.")
      .def_property_readonly("row_dim", &EngramConfig::row_dim, "Width of one table row.");

  pyb::class_<HashState>(m, "HashState",
                         "Streaming state of one sequence: last max_ngram-1 compressed ids, dead "
                         "flags, positions seen. copy.copy() snapshots it for rollback.")
      .def(pyb::init<>(), "An empty state: the start of a sequence.")
      .def_readonly("seen", &HashState::seen, "Positions this state has moved past.")
      .def(
          "copy", [](const HashState& s) { return s; }, "A snapshot of this state.")
      .def("__repr__",
           [](const HashState& s) { return pyb::str("HashState(seen={})").format(s.seen); })
      .def("__copy__", [](const HashState& s) { return s; })
      .def(
          "__deepcopy__", [](const HashState& s, pyb::dict) { return s; }, pyb::arg("memo"));

  pyb::class_<NgramHasher>(m, "NgramHasher",
                           "Engram n-gram hashing, bit-exact with the demo's NgramHashMapping.")
      .def(pyb::init([](const std::string& config_path, const std::string& tokenizer_path) {
             EngramConfig config = EngramConfig::from_file(config_path);
             const TokenCompressor comp = TokenCompressor::from_tokenizer_file(tokenizer_path);
             config.check_compressed_vocab_size(comp.compressed_vocab_size(), tokenizer_path);
             return NgramHasher(std::move(config), comp.lookup(), comp.compressed_vocab_size());
           }),
           pyb::arg("config_path"), pyb::arg("tokenizer_path"),
           "config_path: an Engram config (either form); tokenizer_path: the tokenizer.json whose "
           "compression the hashes use.")
      .def(pyb::init([](const std::string& config_path, const pyb::object& lookup,
                        std::optional<int64_t> compressed_vocab_size) {
             return hasher_from_lookup(EngramConfig::from_file(config_path), lookup,
                                       compressed_vocab_size);
           }),
           pyb::arg("config_path"), pyb::arg("lookup"),
           pyb::arg("compressed_vocab_size") = pyb::none(),
           "config_path: an Engram config file; lookup: int64 [vocab] raw id -> compressed id; "
           "compressed_vocab_size: defaults to max(lookup) + 1.")
      .def(pyb::init([](const EngramConfig& config, const pyb::object& lookup,
                        std::optional<int64_t> compressed_vocab_size) {
             return hasher_from_lookup(config, lookup, compressed_vocab_size);
           }),
           pyb::arg("config"), pyb::arg("lookup"), pyb::arg("compressed_vocab_size") = pyb::none(),
           "config: an EngramConfig; lookup and compressed_vocab_size as above.")
      .def("__repr__",
           [](const NgramHasher& h) {
             return pyb::str(
                        "NgramHasher(layer_ids={}, num_columns={}, max_ngram={}, n_head={}, "
                        "vocab_size={}, compressed_vocab_size={})")
                 .format(h.layer_ids(), h.num_columns(), h.max_ngram(), h.n_head(), h.vocab_size(),
                         h.compressed_vocab_size());
           })
      .def(
          "hash",
          [](const NgramHasher& h, const pyb::object& ids, const pyb::object& dead,
             const pyb::object& out) { return hash_all_layers(h, ids, dead, out, false); },
          pyb::arg("input_ids"), pyb::arg("dead_mask") = pyb::none(), pyb::arg("out") = pyb::none(),
          "input_ids int [B,T] (raw ids) -> {layer_id: int64 [B,T,columns]}, before offsets; "
          "dead_mask: optional bool [B,T], true where the n-gram look-back stops; "
          "out: optional {layer_id: int64 [B,T,columns]} to write into")
      .def(
          "hash_rows",
          [](const NgramHasher& h, const pyb::object& ids, const pyb::object& dead,
             const pyb::object& out) { return hash_all_layers(h, ids, dead, out, true); },
          pyb::arg("input_ids"), pyb::arg("dead_mask") = pyb::none(), pyb::arg("out") = pyb::none(),
          "like hash() plus column offsets: rows of each layer's flat table")
      .def(
          "primes", [](const NgramHasher& h, int64_t l) { return to_array(h.primes(l)); },
          pyb::arg("layer_id"), "int64 [columns]: each hash column's table size (a prime).")
      .def(
          "offsets", [](const NgramHasher& h, int64_t l) { return to_array(h.offsets(l)); },
          pyb::arg("layer_id"), "int64 [columns]: each column's first row in the layer's table.")
      .def(
          "multipliers", [](const NgramHasher& h, int64_t l) { return to_array(h.multipliers(l)); },
          pyb::arg("layer_id"), "int64 [max_ngram]: the layer's odd multiplier of each look-back.")
      .def("total_rows", &NgramHasher::total_rows, pyb::arg("layer_id"),
           "Rows of the layer's flat table (the sum of its primes).")
      .def_property_readonly("layer_ids", &NgramHasher::layer_ids,
                             "Layers that have an Engram module.")
      .def_property_readonly("num_columns", &NgramHasher::num_columns,
                             "Hash columns per layer: (max_ngram - 1) x n_head.")
      .def_property_readonly("max_ngram", &NgramHasher::max_ngram,
                             "N: n-gram orders 2..N are hashed.")
      .def_property_readonly("n_head", &NgramHasher::n_head, "Hash heads per n-gram order.")
      .def_property_readonly("vocab_size", &NgramHasher::vocab_size,
                             "Raw token ids the lookup covers.")
      .def_property_readonly("compressed_vocab_size", &NgramHasher::compressed_vocab_size,
                             "Compressed ids (the multipliers depend on it).")
      .def_property_readonly(
          "pad_compressed", &NgramHasher::pad_compressed,
          "The compressed id of pad_id, used before the start and after dead positions.")
      .def_property_readonly("config", &NgramHasher::config,
                             "The EngramConfig this hasher was built from.")
      .def_property("num_threads", &NgramHasher::num_threads, &NgramHasher::set_num_threads,
                    "threads for large inputs (0: OpenMP's default)")
      .def(
          "new_state", [](const NgramHasher&) { return HashState{}; },
          "An empty HashState for hash_chunk / advance.")
      .def(
          "hash_chunk",
          [](const NgramHasher& h, const HashState& state, int64_t layer_id,
             const pyb::object& ids_obj, const pyb::object& dead_obj, bool add_offsets) {
            const i64_array ids = as_int64(ids_obj, "input_ids", 1);
            const std::vector<uint8_t> dead = as_dead_mask(dead_obj, ids);
            const int64_t T = ids.shape(0);
            i64_array out(std::vector<int64_t>{T, h.num_columns()});
            h.hash_chunk(state, layer_id, {ids.data(), static_cast<size_t>(T)},
                         {out.mutable_data(), static_cast<size_t>(out.size())}, dead, add_offsets);
            return out;
          },
          pyb::arg("state"), pyb::arg("layer_id"), pyb::arg("input_ids"),
          pyb::arg("dead_mask") = pyb::none(), pyb::arg("add_offsets") = false,
          "One sequence chunk input_ids int [T] continuing state -> int64 [T,columns] of "
          "layer_id; dead_mask: optional bool [T]; add_offsets: add the column offsets (table "
          "rows). state is unchanged (advance moves it).")
      .def(
          "advance",
          [](const NgramHasher& h, HashState& state, const pyb::object& ids_obj,
             const pyb::object& dead_obj) {
            const i64_array ids = as_int64(ids_obj, "input_ids", 1);
            const std::vector<uint8_t> dead = as_dead_mask(dead_obj, ids);
            h.advance(state, {ids.data(), static_cast<size_t>(ids.shape(0))}, dead);
          },
          pyb::arg("state"), pyb::arg("input_ids"), pyb::arg("dead_mask") = pyb::none(),
          "Moves state past input_ids int [T] (dead_mask: optional bool [T]).");

  m.def(
      "numpy_integers",
      [](uint64_t seed, int64_t low, int64_t high, int64_t size) {
        Pcg64 rng = Pcg64::from_seed(seed);
        return to_array(integers_i64(rng, low, high, size));
      },
      pyb::arg("seed"), pyb::arg("low"), pyb::arg("high"), pyb::arg("size"),
      "np.random.default_rng(seed).integers(low, high, size, dtype=np.int64)");
  m.def(
      "seed_sequence_state",
      [](uint64_t seed, int64_t n_words, const std::string& dtype) -> pyb::object {
        const SeedSequence seq(seed);
        if (dtype == "uint32") {
          const auto s = seq.generate_state_u32(n_words);
          pyb::array_t<uint32_t> out(static_cast<pyb::ssize_t>(s.size()));
          std::copy(s.begin(), s.end(), out.mutable_data());
          return out;
        }
        if (dtype == "uint64") {
          const auto s = seq.generate_state_u64(n_words);
          pyb::array_t<uint64_t> out(static_cast<pyb::ssize_t>(s.size()));
          std::copy(s.begin(), s.end(), out.mutable_data());
          return out;
        }
        fail(Errc::invalid_argument,
             "seed_sequence_state: dtype must be 'uint32' or 'uint64', got '", dtype, "'");
      },
      pyb::arg("seed"), pyb::arg("n_words"), pyb::arg("dtype") = "uint32",
      "np.random.SeedSequence(seed).generate_state(n_words, dtype)");
  m.def(
      "pcg64_raw",
      [](uint64_t seed, int64_t size) {
        if (size < 0) fail(Errc::invalid_argument, "pcg64_raw: negative size ", size);
        Pcg64 rng = Pcg64::from_seed(seed);
        pyb::array_t<uint64_t> out(static_cast<pyb::ssize_t>(size));
        for (int64_t i = 0; i < size; ++i) out.mutable_data()[i] = rng.next_u64();
        return out;
      },
      pyb::arg("seed"), pyb::arg("size"),
      "np.random.default_rng(seed).bit_generator.random_raw(size)");
}

}  // namespace engram::py
