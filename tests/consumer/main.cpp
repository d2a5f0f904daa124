// Uses the installed cuEBM: an analytic energy, an MLP written and read back as a model file.
#include <cmath>
#include <cstdio>
#include <string>

#include "cuebm/cuebm.hpp"
#include "cuebm/safetensors.hpp"

int main(int argc, char** argv) {
  const cuebm::AnalyticEnergy harmonic = cuebm::AnalyticEnergy::harmonic(2, 2.0f);
  const float x[2] = {1.0f, -2.0f};
  float e = 0;
  harmonic.energy(x, 1, &e);  // k/2 |x|^2 = 5
  if (std::fabs(e - 5.0f) > 1e-6f) {
    std::fprintf(stderr, "harmonic energy %g, expected 5\n", e);
    return 1;
  }
  const cuebm::Mlp model(cuebm::MlpSpec{}, 1);
  const std::string path = argc > 1 ? argv[1] : "consumer_model.safetensors";
  cuebm::save_mlp(path, model);
  const cuebm::Mlp back = cuebm::load_mlp(path);
  float e1 = 0, e2 = 0;
  model.energy(x, 1, &e1);
  back.energy(x, 1, &e2);
  if (e1 != e2) {
    std::fprintf(stderr, "model file round trip changed the energy\n");
    return 1;
  }
  std::printf("cuebm consumer: harmonic E = %g, %s E = %g\n", e, model.name().c_str(), e1);
  return 0;
}
