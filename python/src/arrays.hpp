// Arrays in and out. Inputs come as any DLPack / buffer-protocol object (NumPy arrays, torch
// tensors, ...): a C-contiguous float32 CPU array is read in place; float64 and non-contiguous
// arrays are converted into a float32 copy; other dtypes raise TypeError naming the dtype.
// Outputs are NumPy arrays that own a std::vector's memory (no copy).
#pragma once

#include <nanobind/nanobind.h>
#include <nanobind/ndarray.h>

#include <cstddef>
#include <cstdint>
#include <initializer_list>
#include <optional>
#include <string>
#include <utility>
#include <vector>

namespace nb = nanobind;

namespace cuebm::python {

using AnyArray = nb::ndarray<nb::ro>;
template <class T>
using NumpyArray = nb::ndarray<nb::numpy, T>;

// "float32", "int64", "bool", "complex64", "bfloat16", ...
std::string dtype_name(nb::dlpack::dtype dtype);
bool is_float32(nb::dlpack::dtype dtype);
bool is_float64(nb::dlpack::dtype dtype);

// A float32 C-order view of an input array: borrowed or converted as described above.
class FloatArray {
 public:
  // name: the argument's name in messages. Throws TypeError (nb::type_error) for a dtype other
  // than float32/float64, ValueError (InvalidArgument) for an array not in CPU memory.
  FloatArray(const AnyArray& array, const char* name);
  FloatArray(FloatArray&&) = default;  // a vector's move keeps its buffer: data() stays valid
  FloatArray(const FloatArray&) = delete;
  FloatArray& operator=(const FloatArray&) = delete;

  const float* data() const { return data_; }
  std::size_t ndim() const { return shape_.size(); }
  int64_t shape(std::size_t i) const { return shape_[i]; }
  const std::vector<int64_t>& shape() const { return shape_; }
  int64_t size() const;
  // True when data() points into the caller's memory (no copy was made).
  bool borrowed() const { return copy_.empty() && size() > 0; }
  std::string shape_text() const;

 private:
  AnyArray array_;  // keeps a borrowed array alive
  std::vector<int64_t> shape_;
  std::vector<float> copy_;
  const float* data_ = nullptr;
};

// A batch of rows: a 2-D (n, dim) array; dim is checked when expected_dim > 0.
FloatArray as_rows(const AnyArray& array, const char* name, int expected_dim);
// A 1-D array of `expected` values (any length when expected < 0).
FloatArray as_vector(const AnyArray& array, const char* name, int64_t expected);

// The start of a chain sampler: x0 as (n, dim) rows (n is then the chain count), or None for
// n_chains chains from the sampler's N(0, I) start (data() is null).
class StartRows {
 public:
  StartRows(const std::optional<AnyArray>& x0, int dim, int64_t n_chains);
  const float* data() const { return rows_ ? rows_->data() : nullptr; }
  int64_t n_chains() const { return n_chains_; }

 private:
  std::optional<FloatArray> rows_;
  int64_t n_chains_;
};

template <class T>
NumpyArray<T> to_numpy(std::vector<T>&& values, std::initializer_list<std::size_t> shape) {
  auto* owned = new std::vector<T>(std::move(values));
  nb::capsule owner(owned, [](void* p) noexcept { delete static_cast<std::vector<T>*>(p); });
  return NumpyArray<T>(owned->data(), shape.size(), shape.begin(), owner);
}
template <class T>
NumpyArray<T> to_numpy(std::vector<T>&& values, const std::vector<std::size_t>& shape) {
  auto* owned = new std::vector<T>(std::move(values));
  nb::capsule owner(owned, [](void* p) noexcept { delete static_cast<std::vector<T>*>(p); });
  return NumpyArray<T>(owned->data(), shape.size(), shape.data(), owner);
}

}  // namespace cuebm::python
