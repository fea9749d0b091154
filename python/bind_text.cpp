// Python bindings of the text area: the tokenizer and tokenizer compression.
//
//   engram.Tokenizer(path)                         a Hugging Face tokenizer.json (BPE)
//     .encode(text, add_special_tokens=True) -> list[int]
//     .decode(ids, skip_special_tokens=False) -> str
//     .vocab_size, .id_to_token(id), .token_to_id(token) -> int | None, .is_special(id)
//   engram.TokenCompressor.from_tokenizer(path)    DESIGN.md 2.1
//   engram.TokenCompressor.from_lookup(lookup)     validated lookup (dense, first-appearance order)
//     .lookup -> int64 ndarray [vocab_size] (a copy), .vocab_size, .compressed_vocab_size
//     (ids) -> int64 ndarray of the same shape: lookup[id] for id >= 0, negative ids unchanged
//     TokenCompressor.normalize_key(text) -> str   the normalization key of one token text
// Errors: ValueError (parse, unsupported, bad argument), IndexError (id out of range), OSError.
#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>
#include <pybind11/stl.h>

#include <string>
#include <vector>

#include "engram/compressor.h"
#include "engram/error.h"
#include "engram/tokenizer.h"
#include "module.h"

namespace pyb = pybind11;

namespace engram::py {
namespace {

// Ids from a Python sequence or array; each must fit int32 (decode range-checks them).
std::vector<int32_t> ids_from_object(const pyb::object& obj) {
  std::vector<int32_t> ids;
  for (const pyb::handle item : pyb::iter(obj)) {
    if (!pyb::hasattr(item, "__index__")) {
      fail(Errc::invalid_argument, "decode: ids must be integers, got ",
           std::string(pyb::str(pyb::type::of(item))));
    }
    const pyb::object index = pyb::reinterpret_steal<pyb::object>(PyNumber_Index(item.ptr()));
    if (!index) throw pyb::error_already_set();
    int overflow = 0;
    const long long v = PyLong_AsLongLongAndOverflow(index.ptr(), &overflow);
    if (overflow != 0 || v < INT32_MIN || v > INT32_MAX) {
      fail(Errc::out_of_range, "decode: id ", std::string(pyb::str(index)), " at position ",
           ids.size(), " does not fit int32");
    }
    ids.push_back(static_cast<int32_t>(v));
  }
  return ids;
}

pyb::array_t<int64_t> compress_array(const TokenCompressor& c, const pyb::object& obj) {
  pyb::array arr = pyb::array::ensure(obj);
  if (!arr) fail(Errc::invalid_argument, "TokenCompressor: expected an integer array");
  const char kind = arr.dtype().kind();
  if (kind != 'i' && kind != 'u' && !(arr.size() == 0 && kind == 'f')) {
    fail(Errc::invalid_argument, "TokenCompressor: expected integer ids, got dtype ",
         std::string(pyb::str(arr.dtype())));
  }
  if (kind == 'u' && arr.itemsize() == 8) {
    auto u = pyb::array_t<uint64_t, pyb::array::c_style | pyb::array::forcecast>::ensure(arr);
    for (pyb::ssize_t i = 0; i < u.size(); ++i) {
      if (u.data()[i] > static_cast<uint64_t>(INT64_MAX)) {
        fail(Errc::out_of_range, "TokenCompressor: id ", u.data()[i], " at position ", i,
             " is >= vocab size ", c.vocab_size());
      }
    }
  }
  auto in = pyb::array_t<int64_t, pyb::array::c_style | pyb::array::forcecast>::ensure(arr);
  std::vector<pyb::ssize_t> shape(in.shape(), in.shape() + in.ndim());
  pyb::array_t<int64_t> out(shape);
  {
    pyb::gil_scoped_release nogil;
    c.compress(std::span<const int64_t>(in.data(), static_cast<size_t>(in.size())),
               std::span<int64_t>(out.mutable_data(), static_cast<size_t>(out.size())));
  }
  return out;
}

}  // namespace

void bind_text(pyb::module_& m) {
  pyb::class_<Tokenizer>(m, "Tokenizer",
                         "A Hugging Face tokenizer.json (BPE model) for encode and decode")
      .def(pyb::init([](const std::string& path) { return Tokenizer::from_file(path); }),
           pyb::arg("path"), "path: a Hugging Face tokenizer.json file.")
      .def_static(
          "from_json", [](const std::string& text) { return Tokenizer::from_json(text); },
          pyb::arg("json_text"), "A tokenizer from the text of a tokenizer.json.")
      .def("__repr__",
           [](const Tokenizer& t) {
             return pyb::str("Tokenizer(vocab_size={})").format(t.vocab_size());
           })
      .def(
          "encode",
          [](const Tokenizer& t, const std::string& text, bool add_special_tokens) {
            std::vector<int32_t> ids;
            {
              pyb::gil_scoped_release nogil;
              ids = t.encode(text, add_special_tokens);
            }
            return ids;
          },
          pyb::arg("text"), pyb::arg("add_special_tokens") = true,
          "text (UTF-8) -> token ids; add_special_tokens: prepend/append what the tokenizer's "
          "post-processor adds (e.g. BOS).")
      .def(
          "decode",
          [](const Tokenizer& t, const pyb::object& ids, bool skip_special_tokens) {
            const std::vector<int32_t> v = ids_from_object(ids);
            std::string s;
            {
              pyb::gil_scoped_release nogil;
              s = t.decode(v, skip_special_tokens);
            }
            return pyb::str(s);
          },
          pyb::arg("ids"), pyb::arg("skip_special_tokens") = false,
          "ids: a sequence or array of token ids -> text; skip_special_tokens: leave out special "
          "tokens (BOS, EOS, ...). IndexError for an id outside the vocabulary.")
      .def_property_readonly("vocab_size", &Tokenizer::vocab_size,
                             "Number of token ids (added tokens included).")
      .def(
          "id_to_token", [](const Tokenizer& t, int32_t id) { return pyb::str(t.id_to_token(id)); },
          pyb::arg("id"), "The token text of id (as stored in the vocabulary).")
      .def("token_to_id", &Tokenizer::token_to_id, pyb::arg("token"),
           "The id of a token text, or None when the vocabulary lacks it.")
      .def("is_special", &Tokenizer::is_special, pyb::arg("id"),
           "Whether id is a special (added, special=true) token.");

  pyb::class_<TokenCompressor>(m, "TokenCompressor",
                               "Engram's tokenizer compression: raw id -> compressed id")
      .def_static(
          "from_tokenizer",
          [](const std::string& path) { return TokenCompressor::from_tokenizer_file(path); },
          pyb::arg("path"),
          "The compression of a tokenizer.json: tokens whose normalized text agrees share one "
          "compressed id (DESIGN.md 2.1).")
      .def_static(
          "from_lookup",
          [](const pyb::array_t<int64_t, pyb::array::c_style | pyb::array::forcecast>& lookup) {
            if (lookup.ndim() != 1)
              fail(Errc::invalid_argument, "from_lookup: expected a 1-D array, got ", lookup.ndim(),
                   " dimensions");
            return TokenCompressor::from_lookup(
                std::vector<int64_t>(lookup.data(), lookup.data() + lookup.size()));
          },
          pyb::arg("lookup"),
          "A compressor from its lookup: int64 [vocab_size] raw id -> compressed id, dense and in "
          "first-appearance order (checked).")
      .def("__repr__",
           [](const TokenCompressor& c) {
             return pyb::str("TokenCompressor(vocab_size={}, compressed_vocab_size={})")
                 .format(c.vocab_size(), c.compressed_vocab_size());
           })
      .def_property_readonly(
          "lookup",
          [](const TokenCompressor& c) {
            const auto& l = c.lookup();
            pyb::array_t<int64_t> out(static_cast<pyb::ssize_t>(l.size()));
            std::copy(l.begin(), l.end(), out.mutable_data());
            return out;
          },
          "int64 [vocab_size]: raw id -> compressed id (a copy).")
      .def_property_readonly("vocab_size", &TokenCompressor::vocab_size, "Number of raw token ids.")
      .def_property_readonly("compressed_vocab_size", &TokenCompressor::compressed_vocab_size,
                             "Number of compressed ids.")
      .def("__call__", &compress_array, pyb::arg("input_ids"),
           "input_ids: integer array of raw ids, any shape -> int64 array of the same shape, "
           "lookup[id] for id >= 0; negative ids (padding) pass unchanged.")
      .def_static(
          "normalize_key",
          [](const std::string& text) { return pyb::str(TokenCompressor::normalize_key(text)); },
          pyb::arg("text"), "The normalization key of one token's text (equal keys share an id).");
}

}  // namespace engram::py
