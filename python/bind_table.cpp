// Python bindings for row formats (engram/row_format.h) and safetensors (engram/safetensors.h):
// element-wise conversions and row/block dequantization on NumPy arrays, for parity tests
// against PyTorch and NumPy, and a small safetensors load/save API.
// Inputs must already have the stated dtype (no silent casts): a wrong dtype is a TypeError.
// bf16 travels as uint16 and F8_* / E8M0 as uint8 (NumPy has none of these types).
#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>
#include <pybind11/stl.h>

#include <cstring>
#include <string>
#include <vector>

#include "engram/error.h"
#include "engram/row_format.h"
#include "engram/row_gather.h"
#include "engram/safetensors.h"
#include "module.h"

namespace py = pybind11;

namespace engram::py {
namespace {

// The array as a C-contiguous array of exactly T, or TypeError naming the argument.
template <typename T>
::py::array_t<T, ::py::array::c_style> require(const ::py::array& a, const char* what) {
  if (!a.dtype().is(::py::dtype::of<T>())) {
    throw ::py::type_error(str_cat(what, ": expected dtype ",
                                   std::string(::py::str(::py::dtype::of<T>())), ", got ",
                                   std::string(::py::str(a.dtype()))));
  }
  return ::py::array_t<T, ::py::array::c_style>::ensure(a);
}

std::vector<::py::ssize_t> shape_of(const ::py::array& a) {
  return std::vector<::py::ssize_t>(a.shape(), a.shape() + a.ndim());
}

// out[i] = f(in[i]) over any shape.
template <typename In, typename Out, Out (*F)(In)>
::py::array_t<Out> elementwise(const ::py::array& a, const char* what) {
  auto in = require<In>(a, what);
  ::py::array_t<Out> out(shape_of(in));
  const In* src = in.data();
  Out* dst = out.mutable_data();
  const ::py::ssize_t n = in.size();
  {
    ::py::gil_scoped_release nogil;
    for (::py::ssize_t i = 0; i < n; ++i) dst[i] = F(src[i]);
  }
  return out;
}

RowDtype row_dtype_of(const ::py::array& data) {
  if (data.dtype().is(::py::dtype::of<float>())) return RowDtype::f32;
  if (data.dtype().is(::py::dtype::of<uint16_t>())) return RowDtype::bf16;
  if (data.dtype().is(::py::dtype::of<uint8_t>())) return RowDtype::f8_e4m3;
  throw ::py::type_error("row data must be float32 (f32), uint16 (bf16) or uint8 (f8_e4m3)");
}

// Checks data [R, W] and, for f8, scale [R, W/32]; returns the format.
RowFormat check_table(const ::py::array& data, const ::py::object& scale, const char* who) {
  if (data.ndim() != 2) throw ::py::value_error(str_cat(who, ": data must be 2-D [rows, width]"));
  const RowFormat fmt = RowFormat::make(row_dtype_of(data), data.shape(1));
  if (fmt.dtype == RowDtype::f8_e4m3) {
    if (scale.is_none()) throw ::py::value_error(str_cat(who, ": uint8 (f8_e4m3) rows need scale"));
    const ::py::array s = scale.cast<::py::array>();
    if (s.ndim() != 2 || s.shape(0) != data.shape(0) || s.shape(1) != fmt.scale_bytes) {
      throw ::py::value_error(
          str_cat(who, ": scale must have shape [", data.shape(0), ", ", fmt.scale_bytes, "]"));
    }
  } else if (!scale.is_none()) {
    throw ::py::value_error(str_cat(who, ": scale is only for uint8 (f8_e4m3) rows"));
  }
  return fmt;
}

struct RowArrays {
  ::py::array data_keep, scale_keep;  // keep contiguous copies alive
  const uint8_t* data = nullptr;
  const uint8_t* scale = nullptr;
};

RowArrays row_arrays(const RowFormat& fmt, const ::py::array& data, const ::py::object& scale) {
  RowArrays r;
  switch (fmt.dtype) {
    case RowDtype::f32:
      r.data_keep = require<float>(data, "data");
      break;
    case RowDtype::bf16:
      r.data_keep = require<uint16_t>(data, "data");
      break;
    case RowDtype::f8_e4m3:
      r.data_keep = require<uint8_t>(data, "data");
      r.scale_keep = require<uint8_t>(scale.cast<::py::array>(), "scale");
      r.scale = static_cast<const uint8_t*>(r.scale_keep.data());
      break;
  }
  r.data = static_cast<const uint8_t*>(r.data_keep.data());
  return r;
}

::py::array gather(const ::py::array& data, const ::py::array& ids_in, const ::py::object& scale,
                   const std::string& out_dtype) {
  const RowFormat fmt = check_table(data, scale, "gather_rows");
  const RowArrays t = row_arrays(fmt, data, scale);
  auto ids = require<int64_t>(ids_in, "ids");
  if (ids.ndim() != 1) throw ::py::value_error("gather_rows: ids must be 1-D");
  const std::span<const int64_t> idv(ids.data(), static_cast<size_t>(ids.size()));
  const int64_t rows = data.shape(0);
  const std::vector<::py::ssize_t> shape = {ids.size(), fmt.width};
  if (out_dtype == "float32") {
    ::py::array_t<float> out(shape);
    float* o = out.mutable_data();
    ::py::gil_scoped_release nogil;
    gather_rows(fmt, t.data, t.scale, rows, idv, o);
    return out;
  }
  if (out_dtype == "bfloat16") {
    ::py::array_t<uint16_t> out(shape);
    uint16_t* o = out.mutable_data();
    ::py::gil_scoped_release nogil;
    gather_rows_bf16(fmt, t.data, t.scale, rows, idv, o);
    return out;
  }
  throw ::py::value_error("gather_rows: out_dtype must be 'float32' or 'bfloat16'");
}

// ---- safetensors <-> NumPy --------------------------------------------------------------------

::py::dtype numpy_dtype(Dtype d) {
  switch (d) {
    case Dtype::BOOL:
      return ::py::dtype::of<bool>();
    case Dtype::U8:
    case Dtype::F8_E4M3:
    case Dtype::F8_E5M2:
    case Dtype::F8_E8M0:
      return ::py::dtype::of<uint8_t>();
    case Dtype::I8:
      return ::py::dtype::of<int8_t>();
    case Dtype::I16:
      return ::py::dtype::of<int16_t>();
    case Dtype::U16:
    case Dtype::BF16:
      return ::py::dtype::of<uint16_t>();
    case Dtype::F16:
      return ::py::dtype("float16");
    case Dtype::I32:
      return ::py::dtype::of<int32_t>();
    case Dtype::U32:
      return ::py::dtype::of<uint32_t>();
    case Dtype::F32:
      return ::py::dtype::of<float>();
    case Dtype::I64:
      return ::py::dtype::of<int64_t>();
    case Dtype::U64:
      return ::py::dtype::of<uint64_t>();
    case Dtype::F64:
      return ::py::dtype::of<double>();
    case Dtype::C64:
      return ::py::dtype("complex64");
  }
  throw ::py::value_error("unknown dtype");
}

// The safetensors dtype for a NumPy array (uint8 -> U8, uint16 -> U16; pass a dtype name to
// save F8_* or BF16).
Dtype dtype_for_numpy(const ::py::array& a, const std::string& name) {
  const char kind = a.dtype().kind();
  const size_t size = static_cast<size_t>(a.itemsize());
  if (kind == 'b') return Dtype::BOOL;
  if (kind == 'f' && size == 2) return Dtype::F16;
  if (kind == 'f' && size == 4) return Dtype::F32;
  if (kind == 'f' && size == 8) return Dtype::F64;
  if (kind == 'c' && size == 8) return Dtype::C64;
  if (kind == 'i') {
    if (size == 1) return Dtype::I8;
    if (size == 2) return Dtype::I16;
    if (size == 4) return Dtype::I32;
    if (size == 8) return Dtype::I64;
  }
  if (kind == 'u') {
    if (size == 1) return Dtype::U8;
    if (size == 2) return Dtype::U16;
    if (size == 4) return Dtype::U32;
    if (size == 8) return Dtype::U64;
  }
  throw ::py::type_error(str_cat("safetensors_save: tensor ", name, " has dtype ",
                                 std::string(::py::str(a.dtype())), ", which safetensors lacks"));
}

::py::dict load(const std::string& path) {
  const SafetensorsFile f = SafetensorsFile::open(path);
  ::py::dict out;
  for (const TensorInfo& t : f.tensors()) {
    std::vector<::py::ssize_t> shape(t.shape.begin(), t.shape.end());
    ::py::array a(numpy_dtype(t.dtype), shape);
    auto* dst = static_cast<std::byte*>(a.mutable_data());
    {
      ::py::gil_scoped_release nogil;
      f.read(t.name, std::span<std::byte>(dst, t.nbytes));
    }
    out[::py::str(t.name)] = a;
  }
  return out;
}

void save(const std::string& path, const ::py::dict& tensors, const ::py::object& metadata) {
  std::vector<::py::array> keep;
  std::vector<TensorView> views;
  for (auto [k, v] : tensors) {
    const std::string name = k.cast<std::string>();
    std::optional<Dtype> dtype;
    ::py::object value = ::py::reinterpret_borrow<::py::object>(v);
    if (::py::isinstance<::py::tuple>(value)) {  // ("F8_E4M3", uint8 array)
      auto tup = value.cast<::py::tuple>();
      if (tup.size() != 2) throw ::py::value_error("safetensors_save: use (dtype_name, array)");
      const std::string dn = tup[0].cast<std::string>();
      dtype = dtype_from_name(dn);
      if (!dtype) throw ::py::value_error("safetensors_save: unknown dtype " + dn);
      value = tup[1];
    }
    ::py::array a = ::py::array::ensure(value, ::py::array::c_style);
    if (!a) throw ::py::type_error("safetensors_save: " + name + " is not an array");
    const Dtype natural = dtype_for_numpy(a, name);
    if (dtype && dtype_size(*dtype) != dtype_size(natural)) {
      throw ::py::type_error(str_cat("safetensors_save: ", name, " is ", dtype_name(natural),
                                     "-sized, cannot be saved as ", dtype_name(*dtype)));
    }
    keep.push_back(a);
    TensorView tv;
    tv.name = name;
    tv.dtype = dtype.value_or(natural);
    for (::py::ssize_t d = 0; d < a.ndim(); ++d) tv.shape.push_back(a.shape(d));
    tv.data = std::span<const std::byte>(static_cast<const std::byte*>(a.data()),
                                         static_cast<size_t>(a.nbytes()));
    views.push_back(std::move(tv));
  }
  std::map<std::string, std::string> meta;
  if (!metadata.is_none()) meta = metadata.cast<std::map<std::string, std::string>>();
  ::py::gil_scoped_release nogil;
  save_safetensors(path, views, meta);
}

}  // namespace

void bind_table(::py::module_& m) {
  m.def(
      "bf16_to_f32",
      [](const ::py::array& x) {
        return elementwise<uint16_t, float, bf16_to_f32>(x, "bf16_to_f32");
      },
      ::py::arg("x"), "uint16 bf16 bits -> float32 (exact)");
  m.def(
      "f32_to_bf16",
      [](const ::py::array& x) {
        return elementwise<float, uint16_t, f32_to_bf16>(x, "f32_to_bf16");
      },
      ::py::arg("x"), "float32 -> uint16 bf16 bits, round to nearest even, NaN -> 0xFFFF");
  m.def(
      "e4m3_to_f32",
      [](const ::py::array& x) {
        return elementwise<uint8_t, float, e4m3_to_f32>(x, "e4m3_to_f32");
      },
      ::py::arg("x"), "uint8 float8_e4m3fn bits -> float32");
  m.def(
      "f32_to_e4m3",
      [](const ::py::array& x) {
        return elementwise<float, uint8_t, f32_to_e4m3>(x, "f32_to_e4m3");
      },
      ::py::arg("x"), "float32 -> float8_e4m3fn bits, round to nearest even, saturating at +-448");
  m.def(
      "e8m0_to_f32",
      [](const ::py::array& x) {
        return elementwise<uint8_t, float, e8m0_to_f32>(x, "e8m0_to_f32");
      },
      ::py::arg("x"), "uint8 e8m0 scale bits -> float32 2^(x-127); 255 is NaN");
  m.def(
      "f32_to_e8m0",
      [](const ::py::array& x) {
        return elementwise<float, uint8_t, f32_to_e8m0>(x, "f32_to_e8m0");
      },
      ::py::arg("x"), "float32 -> e8m0: smallest power of two >= |x|");

  m.def(
      "dequantize_rows",
      [](const ::py::array& data, const ::py::array& scale) {
        const RowFormat fmt = check_table(data, scale, "dequantize_rows");
        const RowArrays t = row_arrays(fmt, data, scale);
        ::py::array_t<float> out(std::vector<::py::ssize_t>{data.shape(0), fmt.width});
        float* o = out.mutable_data();
        ::py::gil_scoped_release nogil;
        dequantize_rows(fmt, t.data, t.scale, data.shape(0), o);
        return out;
      },
      ::py::arg("data"), ::py::arg("scale"),
      "data uint8 [n, W] e4m3fn, scale uint8 [n, W/32] e8m0 -> float32 [n, W]");
  m.def("gather_rows", &gather, ::py::arg("data"), ::py::arg("ids"),
        ::py::arg("scale") = ::py::none(), ::py::arg("out_dtype") = "float32",
        "Rows ids of a table: data float32 / uint16 (bf16) / uint8 (e4m3fn, needs scale) "
        "[R, W] -> float32 [n, W] (or uint16 bf16 bits with out_dtype='bfloat16')");
  m.def(
      "dequantize_blocks",
      [](const ::py::array& w_in, const ::py::array& s_in) {
        auto w = require<uint8_t>(w_in, "w");
        auto s = require<uint8_t>(s_in, "s");
        if (w.ndim() != 2 || s.ndim() != 2) throw ::py::value_error("dequantize_blocks: 2-D only");
        const int64_t rows = w.shape(0), cols = w.shape(1);
        if (s.shape(0) != (rows + 31) / 32 || s.shape(1) != (cols + 31) / 32) {
          throw ::py::value_error(str_cat("dequantize_blocks: s must have shape [",
                                          (rows + 31) / 32, ", ", (cols + 31) / 32, "]"));
        }
        ::py::array_t<float> out(std::vector<::py::ssize_t>{rows, cols});
        float* o = out.mutable_data();
        ::py::gil_scoped_release nogil;
        dequantize_blocks(w.data(), s.data(), rows, cols, o);
        return out;
      },
      ::py::arg("w"), ::py::arg("s"),
      "w uint8 [O, I] e4m3fn, s uint8 [ceil(O/32), ceil(I/32)] e8m0 -> float32 [O, I]");
  m.def(
      "quantize_rows",
      [](const ::py::array& x_in) {
        auto x = require<float>(x_in, "x");
        if (x.ndim() != 2) throw ::py::value_error("quantize_rows: x must be 2-D [n, W]");
        const RowFormat fmt = RowFormat::make(RowDtype::f8_e4m3, x.shape(1));
        const int64_t n = x.shape(0);
        ::py::array_t<uint8_t> q(std::vector<::py::ssize_t>{n, fmt.width});
        ::py::array_t<uint8_t> s(std::vector<::py::ssize_t>{n, fmt.scale_bytes});
        for (int64_t i = 0; i < n; ++i) {
          quantize_row(fmt, x.data() + i * fmt.width, q.mutable_data() + i * fmt.data_bytes,
                       s.mutable_data() + i * fmt.scale_bytes);
        }
        return ::py::make_tuple(q, s);
      },
      ::py::arg("x"), "float32 [n, W] -> (uint8 e4m3fn [n, W], uint8 e8m0 [n, W/32])");
  m.def(
      "quantize_blocks",
      [](const ::py::array& x_in) {
        auto x = require<float>(x_in, "x");
        if (x.ndim() != 2) throw ::py::value_error("quantize_blocks: x must be 2-D");
        const int64_t rows = x.shape(0), cols = x.shape(1);
        ::py::array_t<uint8_t> w(std::vector<::py::ssize_t>{rows, cols});
        ::py::array_t<uint8_t> s(std::vector<::py::ssize_t>{(rows + 31) / 32, (cols + 31) / 32});
        quantize_blocks(x.data(), rows, cols, w.mutable_data(), s.mutable_data());
        return ::py::make_tuple(w, s);
      },
      ::py::arg("x"),
      "float32 [O, I] -> (uint8 e4m3fn [O, I], uint8 e8m0 [ceil(O/32), ceil(I/32)])");

  m.def("safetensors_load", &load, ::py::arg("path"),
        "{name: ndarray}; BF16 as uint16 bits, F8_* and F8_E8M0 as uint8 bits");
  m.def("safetensors_save", &save, ::py::arg("path"), ::py::arg("tensors"),
        ::py::arg("metadata") = ::py::none(),
        "Atomic write of {name: ndarray or (dtype_name, ndarray)}; metadata {str: str}");
  m.def(
      "safetensors_info",
      [](const std::string& path) {
        const SafetensorsFile f = SafetensorsFile::open(path);
        ::py::list out;
        for (const TensorInfo& t : f.tensors()) {
          out.append(::py::make_tuple(t.name, dtype_name(t.dtype), t.shape, t.offset, t.nbytes));
        }
        return ::py::make_tuple(out, f.metadata());
      },
      ::py::arg("path"),
      "([(name, dtype, shape, absolute byte offset, nbytes)] by offset, metadata)");
}

}  // namespace engram::py
