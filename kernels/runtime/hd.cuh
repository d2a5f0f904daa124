// CUEBM_HD marks math shared by the CPU backend and the CUDA kernels.
#pragma once

#if defined(__CUDACC__)
#define CUEBM_HD __host__ __device__ __forceinline__
#else
#define CUEBM_HD inline
#endif
