// Samples a user-defined energy (a ring, examples/ring_energy.hpp) on the CPU backend with
// cuebm::langevin_chain<Energy> and compares the mean radius with its closed form.
// examples/custom_energy_cuda.cu runs the same type on a GPU.
#include <cstdio>

#include "cuebm/sampling/custom_energy.hpp"
#include "ring_energy.hpp"

int main() {
  const RingEnergy ring{1.0f, 0.2f};
  cuebm::LangevinOptions options;
  options.step_size = 1e-3f;   // well below s^2 = 0.04, the ring's radial stiffness inverse
  options.noise_scale = 1.0f;  // temperature T = sigma^2 = 1
  options.n_steps = 1500;
  options.seed = 7;
  const long n = 4096;
  // Null initial state: N(0, I), as cuebm::langevin_sample.
  const cuebm::LangevinResult res = cuebm::langevin_chain(ring, 2, nullptr, n, options);
  double mean, se;
  radius_mean_se(res.samples.data(), n, &mean, &se);
  const double exact = ring_mean_radius(ring.r, ring.s, res.temperature);
  std::printf("CPU: %ld chains, %d steps, T = %.3f\n", n, options.n_steps, res.temperature);
  std::printf("mean radius %.4f +- %.4f (closed form %.4f, %.1f standard errors)\n", mean, se,
              exact, (mean - exact) / se);
  return std::abs(mean - exact) < 4 * se ? 0 : 1;
}
