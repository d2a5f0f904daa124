#include "arrays.hpp"

#include "cuebm/runtime/error.hpp"

namespace cuebm::python {
namespace {

constexpr int kDlCpu = 1, kDlCudaHost = 3;

template <class Src>
void copy_strided(const Src* src, const std::vector<int64_t>& shape, const int64_t* strides,
                  float* dst) {
  if (shape.size() == 1) {
    for (int64_t i = 0; i < shape[0]; ++i) dst[i] = static_cast<float>(src[i * strides[0]]);
    return;
  }
  const int64_t cols = shape[1];
  for (int64_t i = 0; i < shape[0]; ++i)
    for (int64_t j = 0; j < cols; ++j)
      dst[i * cols + j] = static_cast<float>(src[i * strides[0] + j * strides[1]]);
}

}  // namespace

std::string dtype_name(nb::dlpack::dtype dtype) {
  using Code = nb::dlpack::dtype_code;
  std::string base;
  switch (static_cast<Code>(dtype.code)) {
    case Code::Int:
      base = "int";
      break;
    case Code::UInt:
      base = "uint";
      break;
    case Code::Float:
      base = "float";
      break;
    case Code::Bfloat:
      base = "bfloat";
      break;
    case Code::Complex:
      base = "complex";
      break;
    case Code::Bool:
      return "bool";
    default:
      base = "dtype code " + std::to_string(dtype.code) + " of ";
  }
  std::string name = base + std::to_string(dtype.bits);
  if (dtype.lanes > 1) name += "x" + std::to_string(dtype.lanes);
  return name;
}

bool is_float32(nb::dlpack::dtype dtype) { return dtype == nb::dtype<float>(); }
bool is_float64(nb::dlpack::dtype dtype) { return dtype == nb::dtype<double>(); }

FloatArray::FloatArray(const AnyArray& array, const char* name) : array_(array) {
  if (array.device_type() != kDlCpu && array.device_type() != kDlCudaHost)
    throw InvalidArgument(std::string(name) + " is not in CPU memory (DLPack device type " +
                          std::to_string(array.device_type()) +
                          "); this call reads CPU arrays (cuebm.torch runs CUDA tensors)");
  const bool f32 = is_float32(array.dtype()), f64 = is_float64(array.dtype());
  if (!f32 && !f64)
    throw nb::type_error(
        (std::string(name) + " must be float32 or float64, got " + dtype_name(array.dtype()))
            .c_str());
  shape_.resize(array.ndim());
  for (std::size_t i = 0; i < shape_.size(); ++i) shape_[i] = array.shape_ptr()[i];
  if (shape_.size() > 2)
    throw InvalidArgument(std::string(name) + " must have at most 2 dimensions, got shape " +
                          shape_text());
  // C order: each stride equals the product of the later extents (extents of 1 don't matter).
  bool contiguous = true;
  int64_t expected = 1;
  for (std::size_t i = shape_.size(); i-- > 0;) {
    if (shape_[i] != 1 && array.stride_ptr()[i] != expected) contiguous = false;
    expected *= shape_[i];
  }
  if (f32 && contiguous) {
    data_ = static_cast<const float*>(array.data());
    return;
  }
  copy_.resize(static_cast<std::size_t>(size()));
  if (shape_.empty()) {
    copy_[0] = f32 ? *static_cast<const float*>(array.data())
                   : static_cast<float>(*static_cast<const double*>(array.data()));
  } else if (f32) {
    copy_strided(static_cast<const float*>(array.data()), shape_, array.stride_ptr(), copy_.data());
  } else {
    copy_strided(static_cast<const double*>(array.data()), shape_, array.stride_ptr(),
                 copy_.data());
  }
  data_ = copy_.data();
}

int64_t FloatArray::size() const {
  int64_t n = 1;
  for (int64_t s : shape_) n *= s;
  return n;
}

std::string FloatArray::shape_text() const {
  std::string text = "(";
  for (std::size_t i = 0; i < shape_.size(); ++i)
    text += (i ? ", " : "") + std::to_string(shape_[i]);
  return text + (shape_.size() == 1 ? ",)" : ")");
}

FloatArray as_rows(const AnyArray& array, const char* name, int expected_dim) {
  FloatArray rows(array, name);
  if (rows.ndim() != 2)
    throw InvalidArgument(std::string(name) + " must be a 2-D (n, dim) array, got shape " +
                          rows.shape_text());
  if (expected_dim > 0 && rows.shape(1) != expected_dim)
    throw InvalidArgument(std::string(name) + " has " + std::to_string(rows.shape(1)) +
                          " columns; the energy's dimension is " + std::to_string(expected_dim));
  return rows;
}

FloatArray as_vector(const AnyArray& array, const char* name, int64_t expected) {
  FloatArray v(array, name);
  if (v.ndim() != 1)
    throw InvalidArgument(std::string(name) + " must be a 1-D array, got shape " + v.shape_text());
  if (expected >= 0 && v.shape(0) != expected)
    throw InvalidArgument(std::string(name) + " must hold " + std::to_string(expected) +
                          " values, got " + std::to_string(v.shape(0)));
  return v;
}

StartRows::StartRows(const std::optional<AnyArray>& x0, int dim, int64_t n_chains)
    : n_chains_(n_chains) {
  if (!x0) return;
  rows_.emplace(as_rows(*x0, "x", dim));
  n_chains_ = rows_->shape(0);
}

}  // namespace cuebm::python
