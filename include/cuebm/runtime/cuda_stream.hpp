// cudaStream_t for headers that take a caller's CUDA stream but must stay usable without any
// CUDA header (plain C++ compilers, the CPU-only build). CUstream_st* is the type CUDA's own
// driver_types.h gives cudaStream_t, so this header and <cuda_runtime.h> may be included in
// either order: after CUDA's headers nothing is declared, before them CUDA's typedef repeats
// the same type, which C++ allows.
#pragma once

#if !defined(__CUDA_RUNTIME_H__) && !defined(__DRIVER_TYPES_H__)
struct CUstream_st;
using cudaStream_t = CUstream_st*;
#endif
