// Error checking and RAII memory for the CUDA backend. Every CUDA, cuBLAS and cuRAND call goes
// through one of the CUEBM_*_CHECK macros, which throw cuebm::CudaError naming the call, the
// file and line, and the library's error string.
#pragma once

#include <cublas_v2.h>
#include <cuda_runtime.h>
#include <curand.h>

#include <cstddef>
#include <string>
#include <utility>

#include "cuebm/runtime/error.hpp"

namespace cuebm::detail {

[[noreturn]] inline void throw_cuda_error(const char* lib, const char* call, const char* file,
                                          int line, const std::string& what) {
  throw CudaError(std::string(lib) + " call `" + call + "` failed at " + file + ":" +
                  std::to_string(line) + ": " + what);
}

inline const char* cublas_status_string(cublasStatus_t s) {
  switch (s) {
    case CUBLAS_STATUS_SUCCESS:
      return "CUBLAS_STATUS_SUCCESS";
    case CUBLAS_STATUS_NOT_INITIALIZED:
      return "CUBLAS_STATUS_NOT_INITIALIZED";
    case CUBLAS_STATUS_ALLOC_FAILED:
      return "CUBLAS_STATUS_ALLOC_FAILED";
    case CUBLAS_STATUS_INVALID_VALUE:
      return "CUBLAS_STATUS_INVALID_VALUE";
    case CUBLAS_STATUS_ARCH_MISMATCH:
      return "CUBLAS_STATUS_ARCH_MISMATCH";
    case CUBLAS_STATUS_MAPPING_ERROR:
      return "CUBLAS_STATUS_MAPPING_ERROR";
    case CUBLAS_STATUS_EXECUTION_FAILED:
      return "CUBLAS_STATUS_EXECUTION_FAILED";
    case CUBLAS_STATUS_INTERNAL_ERROR:
      return "CUBLAS_STATUS_INTERNAL_ERROR";
    case CUBLAS_STATUS_NOT_SUPPORTED:
      return "CUBLAS_STATUS_NOT_SUPPORTED";
    case CUBLAS_STATUS_LICENSE_ERROR:
      return "CUBLAS_STATUS_LICENSE_ERROR";
    default:
      return "unknown cuBLAS status";
  }
}

}  // namespace cuebm::detail

#define CUEBM_CUDA_CHECK(call)                                                                \
  do {                                                                                        \
    const cudaError_t cuebm_status_ = (call);                                                 \
    if (cuebm_status_ != cudaSuccess)                                                         \
      ::cuebm::detail::throw_cuda_error("CUDA", #call, __FILE__, __LINE__,                    \
                                        std::string(cudaGetErrorName(cuebm_status_)) + " (" + \
                                            cudaGetErrorString(cuebm_status_) + ")");         \
  } while (0)

#define CUEBM_CUBLAS_CHECK(call)                                                               \
  do {                                                                                         \
    const cublasStatus_t cuebm_status_ = (call);                                               \
    if (cuebm_status_ != CUBLAS_STATUS_SUCCESS)                                                \
      ::cuebm::detail::throw_cuda_error("cuBLAS", #call, __FILE__, __LINE__,                   \
                                        ::cuebm::detail::cublas_status_string(cuebm_status_)); \
  } while (0)

#define CUEBM_CURAND_CHECK(call)                                                \
  do {                                                                          \
    const curandStatus_t cuebm_status_ = (call);                                \
    if (cuebm_status_ != CURAND_STATUS_SUCCESS)                                 \
      ::cuebm::detail::throw_cuda_error(                                        \
          "cuRAND", #call, __FILE__, __LINE__,                                  \
          "curandStatus_t " + std::to_string(static_cast<int>(cuebm_status_))); \
  } while (0)

// Checks the last kernel launch (configuration errors) without synchronising.
#define CUEBM_CUDA_CHECK_LAUNCH() CUEBM_CUDA_CHECK(cudaGetLastError())

namespace cuebm::detail {

// Device memory for `size` elements of T; move-only, freed on destruction.
template <class T>
class DeviceBuffer {
 public:
  DeviceBuffer() = default;
  explicit DeviceBuffer(std::size_t size) { resize(size); }
  DeviceBuffer(const DeviceBuffer&) = delete;
  DeviceBuffer& operator=(const DeviceBuffer&) = delete;
  DeviceBuffer(DeviceBuffer&& o) noexcept
      : ptr_(std::exchange(o.ptr_, nullptr)), size_(std::exchange(o.size_, 0)) {}
  DeviceBuffer& operator=(DeviceBuffer&& o) noexcept {
    if (this != &o) {
      release();
      ptr_ = std::exchange(o.ptr_, nullptr);
      size_ = std::exchange(o.size_, 0);
    }
    return *this;
  }
  ~DeviceBuffer() { release(); }

  // Reallocates (contents are lost) unless the size is unchanged.
  void resize(std::size_t size) {
    if (size == size_) return;
    release();
    if (size > 0) CUEBM_CUDA_CHECK(cudaMalloc(reinterpret_cast<void**>(&ptr_), size * sizeof(T)));
    size_ = size;
  }
  T* data() { return ptr_; }
  const T* data() const { return ptr_; }
  std::size_t size() const { return size_; }
  std::size_t bytes() const { return size_ * sizeof(T); }

 private:
  void release() noexcept {
    if (ptr_) cudaFree(ptr_);  // errors at teardown cannot be reported from a destructor
    ptr_ = nullptr;
    size_ = 0;
  }
  T* ptr_ = nullptr;
  std::size_t size_ = 0;
};

// Page-locked host memory (so cudaMemcpyAsync is truly asynchronous); move-only.
template <class T>
class PinnedBuffer {
 public:
  PinnedBuffer() = default;
  explicit PinnedBuffer(std::size_t size) { resize(size); }
  PinnedBuffer(const PinnedBuffer&) = delete;
  PinnedBuffer& operator=(const PinnedBuffer&) = delete;
  PinnedBuffer(PinnedBuffer&& o) noexcept
      : ptr_(std::exchange(o.ptr_, nullptr)), size_(std::exchange(o.size_, 0)) {}
  PinnedBuffer& operator=(PinnedBuffer&& o) noexcept {
    if (this != &o) {
      release();
      ptr_ = std::exchange(o.ptr_, nullptr);
      size_ = std::exchange(o.size_, 0);
    }
    return *this;
  }
  ~PinnedBuffer() { release(); }

  void resize(std::size_t size) {
    if (size == size_) return;
    release();
    if (size > 0)
      CUEBM_CUDA_CHECK(cudaMallocHost(reinterpret_cast<void**>(&ptr_), size * sizeof(T)));
    size_ = size;
  }
  T* data() { return ptr_; }
  const T* data() const { return ptr_; }
  T& operator[](std::size_t i) { return ptr_[i]; }
  const T& operator[](std::size_t i) const { return ptr_[i]; }
  std::size_t size() const { return size_; }

 private:
  void release() noexcept {
    if (ptr_) cudaFreeHost(ptr_);
    ptr_ = nullptr;
    size_ = 0;
  }
  T* ptr_ = nullptr;
  std::size_t size_ = 0;
};

// A stream owned by RAII.
class Stream {
 public:
  Stream() { CUEBM_CUDA_CHECK(cudaStreamCreateWithFlags(&s_, cudaStreamNonBlocking)); }
  Stream(const Stream&) = delete;
  Stream& operator=(const Stream&) = delete;
  ~Stream() {
    if (s_) cudaStreamDestroy(s_);
  }
  cudaStream_t get() const { return s_; }

 private:
  cudaStream_t s_ = nullptr;
};

// Makes `device` current for the lifetime of the guard, restoring the previous one.
class DeviceGuard {
 public:
  explicit DeviceGuard(int device) {
    CUEBM_CUDA_CHECK(cudaGetDevice(&previous_));
    if (previous_ != device) CUEBM_CUDA_CHECK(cudaSetDevice(device));
  }
  DeviceGuard(const DeviceGuard&) = delete;
  DeviceGuard& operator=(const DeviceGuard&) = delete;
  ~DeviceGuard() {
    int now = previous_;
    cudaGetDevice(&now);
    if (now != previous_) cudaSetDevice(previous_);
  }

 private:
  int previous_ = 0;
};

}  // namespace cuebm::detail
