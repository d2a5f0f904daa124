// A stand-in for the cuBLAS calls cuEBM makes (handle, stream, math mode, Sgemm, Sgemv):
// column-major reference loops that accumulate in float in increasing k, enqueued on the
// handle's stream like any kernel (so they are ordered, deferred and captured as on a GPU).
// Any other cuBLAS call fails to link rather than doing the wrong thing.
#include <cublas_v2.h>

#include <cstdint>
#include <memory>

#include "emulator.hpp"

struct cublasContext {
  cudaStream_t stream = nullptr;
  cublasMath_t math = CUBLAS_DEFAULT_MATH;
  int device = 0;
};

namespace {

cublasStatus_t to_status(cudaError_t e) {
  return e == cudaSuccess ? CUBLAS_STATUS_SUCCESS : CUBLAS_STATUS_EXECUTION_FAILED;
}

// Element (i, j) of op(M) for a column-major M with leading dimension ld.
inline float at(const float* m, int64_t ld, bool transposed, int64_t i, int64_t j) {
  return transposed ? m[j + i * ld] : m[i + j * ld];
}

}  // namespace

extern "C" {

cublasStatus_t cublasCreate_v2(cublasHandle_t* handle) {
  if (!handle) return CUBLAS_STATUS_INVALID_VALUE;
  *handle = new cublasContext();
  (*handle)->device = cuemu::detail::current_device();
  return CUBLAS_STATUS_SUCCESS;
}

cublasStatus_t cublasDestroy_v2(cublasHandle_t handle) {
  if (!handle) return CUBLAS_STATUS_NOT_INITIALIZED;
  delete handle;
  return CUBLAS_STATUS_SUCCESS;
}

cublasStatus_t cublasSetStream_v2(cublasHandle_t handle, cudaStream_t stream) {
  if (!handle) return CUBLAS_STATUS_NOT_INITIALIZED;
  handle->stream = stream;
  return CUBLAS_STATUS_SUCCESS;
}

cublasStatus_t cublasGetStream_v2(cublasHandle_t handle, cudaStream_t* stream) {
  if (!handle) return CUBLAS_STATUS_NOT_INITIALIZED;
  if (!stream) return CUBLAS_STATUS_INVALID_VALUE;
  *stream = handle->stream;
  return CUBLAS_STATUS_SUCCESS;
}

cublasStatus_t cublasSetMathMode(cublasHandle_t handle, cublasMath_t mode) {
  if (!handle) return CUBLAS_STATUS_NOT_INITIALIZED;
  handle->math = mode;
  return CUBLAS_STATUS_SUCCESS;
}

// C = alpha op(A) op(B) + beta C; C is m x n, op(A) m x k, op(B) k x n (column-major).
cublasStatus_t cublasSgemm_v2(cublasHandle_t handle, cublasOperation_t transa,
                              cublasOperation_t transb, int m, int n, int k, const float* alpha,
                              const float* A, int lda, const float* B, int ldb, const float* beta,
                              float* C, int ldc) {
  if (!handle) return CUBLAS_STATUS_NOT_INITIALIZED;
  const bool ta = transa != CUBLAS_OP_N, tb = transb != CUBLAS_OP_N;
  if (m < 0 || n < 0 || k < 0 || !alpha || !beta || lda < (ta ? k : m) || lda < 1 ||
      ldb < (tb ? n : k) || ldb < 1 || ldc < m || ldc < 1)
    return CUBLAS_STATUS_INVALID_VALUE;
  if (m == 0 || n == 0) return CUBLAS_STATUS_SUCCESS;
  const float a = *alpha, b = *beta;  // host pointer mode: read at the call
  return to_status(cuemu::detail::enqueue(
      handle->stream,
      [=] {
        for (int64_t j = 0; j < n; ++j)
          for (int64_t i = 0; i < m; ++i) {
            float s = 0.0f;
            for (int64_t p = 0; p < k; ++p) s += at(A, lda, ta, i, p) * at(B, ldb, tb, p, j);
            float& c = C[i + j * static_cast<int64_t>(ldc)];
            c = b == 0.0f ? a * s : a * s + b * c;  // beta 0: C is not read (may be NaN)
          }
      },
      "cublasSgemm"));
}

// y = alpha op(A) x + beta y; A is m x n (column-major).
cublasStatus_t cublasSgemv_v2(cublasHandle_t handle, cublasOperation_t trans, int m, int n,
                              const float* alpha, const float* A, int lda, const float* x, int incx,
                              const float* beta, float* y, int incy) {
  if (!handle) return CUBLAS_STATUS_NOT_INITIALIZED;
  if (m < 0 || n < 0 || !alpha || !beta || lda < m || lda < 1 || incx == 0 || incy == 0)
    return CUBLAS_STATUS_INVALID_VALUE;
  const bool t = trans != CUBLAS_OP_N;
  const int64_t rows = t ? n : m, cols = t ? m : n;
  if (rows == 0) return CUBLAS_STATUS_SUCCESS;
  const float a = *alpha, b = *beta;
  return to_status(cuemu::detail::enqueue(
      handle->stream,
      [=] {
        const int64_t x0 = incx > 0 ? 0 : (1 - cols) * incx;
        const int64_t y0 = incy > 0 ? 0 : (1 - rows) * incy;
        for (int64_t i = 0; i < rows; ++i) {
          float s = 0.0f;
          for (int64_t j = 0; j < cols; ++j) s += at(A, lda, t, i, j) * x[x0 + j * incx];
          float& out = y[y0 + i * incy];
          out = b == 0.0f ? a * s : a * s + b * out;
        }
      },
      "cublasSgemv"));
}

}  // extern "C"
