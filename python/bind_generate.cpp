// Generation from Python, over engram/generator.h:
//   Model.generate(prompt_ids, max_tokens=64, *, temperature=0.8, top_k=40, top_p=0.95, seed=0,
//                  stop_ids=[], callback=None, vocab_limit=0, tables="resident", tables_file="",
//                  cache_bytes=4 MiB, direct=True, fetch_threads=-1)  -> list of generated ids
//   engram.generate(model, tokenizer, text, max_tokens=64, *, the same but vocab_limit,
//                   stop_at_eos=True)  -> the generated text
// Model.generate's callback gets each id as it is drawn; engram.generate's gets each newly
// stable piece of text (what `engram generate` streams). A callback that returns False ends the
// generation after that token (None or True continue); an exception it raises ends it and is
// raised again from generate. The GIL is released while decoding and taken back for callbacks.
#include <pybind11/pybind11.h>
#include <pybind11/stl.h>

#include <climits>

#include "engram/error.h"
#include "engram/generator.h"
#include "engram/model.h"
#include "engram/tokenizer.h"
#include "module.h"

namespace pyb = pybind11;
using namespace pybind11::literals;

namespace engram::py {

namespace {

std::vector<int32_t> to_ids(const std::vector<int64_t>& v, const char* what) {
  std::vector<int32_t> out(v.size());
  for (size_t i = 0; i < v.size(); i++) {
    if (v[i] < INT32_MIN || v[i] > INT32_MAX)
      fail(Errc::out_of_range, what, "[", i, "] = ", v[i], " does not fit a token id (int32)");
    out[i] = int32_t(v[i]);
  }
  return out;
}

// Keyword arguments shared by both entry points, gathered into GenerateOptions.
GenerateOptions options(int64_t max_tokens, float temperature, int64_t top_k, float top_p,
                        uint64_t seed, const std::vector<int64_t>& stop_ids,
                        const std::string& tables, const std::string& tables_file,
                        uint64_t cache_bytes, bool direct, int fetch_threads) {
  GenerateOptions o;
  o.max_tokens = max_tokens;
  o.sampling = SamplingOptions{temperature, top_k, top_p, seed};
  o.stop_ids = to_ids(stop_ids, "stop_ids");
  o.serve.tier = parse_table_tier(tables);
  o.serve.tables_file = tables_file;
  o.serve.cache_bytes = cache_bytes;
  o.serve.direct = direct;
  o.serve.fetch_threads = fetch_threads;
  return o;
}

// Calls a Python callable with the GIL held; False ends the generation.
bool call_back(const pyb::object& fn, const pyb::object& arg) {
  pyb::gil_scoped_acquire gil;
  const pyb::object r = fn(arg);
  return !(pyb::isinstance<pyb::bool_>(r) && !r.cast<bool>());
}

constexpr const char* kSamplingDoc =
    "temperature: softmax temperature (0: greedy argmax); top_k: keep the k most likely ids "
    "(0: all); top_p: then keep the smallest most-likely-first set reaching this probability "
    "(1: all); seed: the sampling stream (the same seed gives the same ids, as `engram "
    "generate --seed`); stop_ids: ids that end the generation (not returned); tables: where the "
    "Engram rows come from (resident, dram, file, cache), tables_file: the model's exported "
    "tables for those (empty: a temporary export), cache_bytes: the cache tier's size, direct: "
    "O_DIRECT reads, fetch_threads: prefetch workers (-1: one per Engram layer, 0: inline). "
    "See include/engram/generator.h.";

}  // namespace

void bind_generate(pyb::module_& m) {
  pyb::object model_class = m.attr("Model");
  model_class.attr("generate") = pyb::cpp_function(
      [](Model& self, const std::vector<int64_t>& prompt_ids, int64_t max_tokens, float temperature,
         int64_t top_k, float top_p, uint64_t seed, const std::vector<int64_t>& stop_ids,
         const pyb::object& callback, int64_t vocab_limit, const std::string& tables,
         const std::string& tables_file, uint64_t cache_bytes, bool direct, int fetch_threads) {
        GenerateOptions o = options(max_tokens, temperature, top_k, top_p, seed, stop_ids, tables,
                                    tables_file, cache_bytes, direct, fetch_threads);
        o.vocab_limit = vocab_limit;
        if (!callback.is_none())
          o.on_token = [&callback](int32_t id) { return call_back(callback, pyb::int_(id)); };
        const std::vector<int32_t> prompt = to_ids(prompt_ids, "prompt_ids");
        pyb::gil_scoped_release nogil;
        return generate(self, prompt, o).ids;
      },
      pyb::name("generate"), pyb::is_method(model_class),
      pyb::sibling(pyb::getattr(model_class, "generate", pyb::none())), "prompt_ids"_a,
      "max_tokens"_a = 64, pyb::kw_only(), "temperature"_a = 0.8f, "top_k"_a = 40,
      "top_p"_a = 0.95f, "seed"_a = 0, "stop_ids"_a = std::vector<int64_t>{},
      "callback"_a = pyb::none(), "vocab_limit"_a = 0, "tables"_a = "resident",
      "tables_file"_a = "", "cache_bytes"_a = uint64_t(4) << 20, "direct"_a = true,
      "fetch_threads"_a = -1,
      (std::string("Generates up to max_tokens ids after prompt_ids (the KV cache is reset "
                   "first) and returns them. callback(id), if given, sees each id as it is "
                   "drawn; returning False stops. vocab_limit: sample only ids below it (0: "
                   "every id; engram.generate passes the tokenizer's size). ") +
       kSamplingDoc)
          .c_str());

  m.def(
      "generate",
      [](Model& model, const Tokenizer& tokenizer, const std::string& text, int64_t max_tokens,
         float temperature, int64_t top_k, float top_p, uint64_t seed,
         const std::vector<int64_t>& stop_ids, bool stop_at_eos, const pyb::object& callback,
         const std::string& tables, const std::string& tables_file, uint64_t cache_bytes,
         bool direct, int fetch_threads) {
        const GenerateOptions o = options(max_tokens, temperature, top_k, top_p, seed, stop_ids,
                                          tables, tables_file, cache_bytes, direct, fetch_threads);
        TextOptions t;
        t.stop_at_eos = stop_at_eos;
        bool stopped = false;
        if (!callback.is_none()) {
          // on_text has no way to stop the generation: a False from the callback is passed on
          // through on_token, which runs right after it for the same token.
          t.on_text = [&](std::string_view piece) {
            stopped = !call_back(callback, pyb::str(piece.data(), piece.size()));
          };
        }
        GenerateOptions with_stop = o;
        with_stop.on_token = [&stopped](int32_t) { return !stopped; };
        pyb::gil_scoped_release nogil;
        return generate_text(model, tokenizer, text, with_stop, t).text;
      },
      "model"_a, "tokenizer"_a, "text"_a, "max_tokens"_a = 64, pyb::kw_only(),
      "temperature"_a = 0.8f, "top_k"_a = 40, "top_p"_a = 0.95f, "seed"_a = 0,
      "stop_ids"_a = std::vector<int64_t>{}, "stop_at_eos"_a = true, "callback"_a = pyb::none(),
      "tables"_a = "resident", "tables_file"_a = "", "cache_bytes"_a = uint64_t(4) << 20,
      "direct"_a = true, "fetch_threads"_a = -1,
      (std::string("Continues `text` (encoded without special tokens) by up to max_tokens "
                   "tokens and returns the continuation as text, exactly what `engram generate` "
                   "prints for the same options. Stops at <|eos|> when stop_at_eos and the "
                   "tokenizer has it; never samples an id the tokenizer cannot decode. "
                   "callback(piece), if given, sees the text as it grows (the pieces concatenate "
                   "to the result); returning False stops. ") +
       kSamplingDoc)
          .c_str());
}

}  // namespace engram::py
