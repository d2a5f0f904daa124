// CUEBM_HOST_DEVICE: marks functions that run on the host and, when compiled by nvcc, on the
// device. Use it on the members of a user-defined energy (include/cuebm/sampling/custom_energy.hpp)
// so that one type serves the CPU backend (any C++ compiler) and the CUDA backend (nvcc).
#pragma once

#if defined(__CUDACC__)
#define CUEBM_HOST_DEVICE __host__ __device__
#else
#define CUEBM_HOST_DEVICE
#endif
