// The stream-ordered API's launchers in a library built without CUDA: every call has been
// validated (host/training/stream_api_common.cpp) and then fails here.
#include "cuebm/runtime/error.hpp"
#include "host/training/stream_api_impl.hpp"

#if !CUEBM_HAVE_CUDA
namespace cuebm::detail {
namespace {
[[noreturn]] void no_cuda(const char* who) {
  throw InvalidArgument(std::string(who) +
                        ": cuEBM was built without CUDA; the stream API needs the CUDA backend");
}
}  // namespace

void stream_mlp_energy(const MlpShape&, Activation, const float*, const float*, int64_t, int64_t,
                       float*, float*, int64_t, char*, const WsLayout&, cudaStream_t) {
  no_cuda("mlp_energy");
}
void stream_langevin(const MlpShape&, Activation, const float*, float*, int64_t, int64_t,
                     const LangevinOptions&, const CustomChainSteps&, char*, const WsLayout&,
                     cudaStream_t) {
  no_cuda("langevin_chain (stream API)");
}
void stream_cd(const MlpShape&, Activation, const float*, int64_t, int64_t,
               const CdIterationOptions&, const CustomChainSteps&, const CdDeviceState&, float*,
               float*, float*, char*, const WsLayout&, cudaStream_t) {
  no_cuda("cd_iteration");
}

}  // namespace cuebm::detail
#endif
