// Energies on a regular 2-D grid (metrics: log Z, density figures): the points are generated on
// the device exactly as grid_points() does on the host (double arithmetic, end points exact),
// then the batch energy kernel evaluates them.
#include "cuebm/runtime/error.hpp"
#include "host/models/cuda_models.hpp"
#include "host/runtime/cuda_device.hpp"
#include "kernels/models/device_model.cuh"

namespace cuebm::detail {
namespace {

__global__ void grid_points_kernel(double xmin, double xmax, int nx, double ymin, double ymax,
                                   int ny, float* __restrict__ xy) {
  const int64_t p = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x;
  if (p >= static_cast<int64_t>(nx) * ny) return;
  const int i = static_cast<int>(p % nx), j = static_cast<int>(p / nx);
  const double dx = (xmax - xmin) / (nx - 1), dy = (ymax - ymin) / (ny - 1);
  // No FMA contraction, as the host computes it.
  const double x = i == nx - 1 ? xmax : __dadd_rn(xmin, __dmul_rn(i, dx));
  const double y = j == ny - 1 ? ymax : __dadd_rn(ymin, __dmul_rn(j, dy));
  xy[2 * p] = static_cast<float>(x);
  xy[2 * p + 1] = static_cast<float>(y);
}

}  // namespace

void grid_energy_cuda(const Energy& energy, double xmin, double xmax, int nx, double ymin,
                      double ymax, int ny, float* e, int device) {
  if (energy.dim() != 2)
    throw InvalidArgument("grid_energy_cuda: the energy must be 2-D, got dimension " +
                          std::to_string(energy.dim()));
  if (nx < 2 || ny < 2 || !(xmax > xmin) || !(ymax > ymin))
    throw InvalidArgument("grid_energy_cuda: needs nx, ny >= 2 and xmin < xmax, ymin < ymax");
  DeviceGuard guard(device);
  Stream stream;
  DeviceModel m;
  make_device_model(energy, m, stream.get());
  const int64_t n = static_cast<int64_t>(nx) * ny;
  DeviceBuffer<float> xy(2 * n), de(n);
  const int64_t sf = eval_scratch_floats(m, n);
  DeviceBuffer<float> scratch(sf);
  grid_points_kernel<<<static_cast<unsigned>((n + 255) / 256), 256, 0, stream.get()>>>(
      xmin, xmax, nx, ymin, ymax, ny, xy.data());
  CUEBM_CUDA_CHECK_LAUNCH();
  launch_eval(m, xy.data(), n, de.data(), nullptr, scratch.data(), sf, stream.get());
  CUEBM_CUDA_CHECK(cudaMemcpyAsync(e, de.data(), de.bytes(), cudaMemcpyDeviceToHost, stream.get()));
  CUEBM_CUDA_CHECK(cudaStreamSynchronize(stream.get()));
}

}  // namespace cuebm::detail
