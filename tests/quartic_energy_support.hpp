// QuarticEnergy: a custom energy (E = x0^4 + x1^4) that the CUDA backend does not know, for the
// tests that check it is refused on a device.
#pragma once

#include <cmath>
#include <cstddef>
#include <string>

#include "cuebm/models/energy.hpp"

namespace cuebm::testing_support {

class QuarticEnergy : public Energy {
 public:
  int dim() const override { return 2; }
  std::string name() const override { return "quartic"; }
  std::size_t block_workspace_floats() const override { return 0; }
  void block_energy(const float* x, float* e, float*) const override {
    for (int r = 0; r < kRowBlock; ++r)
      e[r] = std::pow(x[r], 4.0f) + std::pow(x[kRowBlock + r], 4.0f);
  }
  void block_gradient(const float* x, float* g, float* e, float* w) const override {
    block_energy(x, e, w);
    for (int r = 0; r < 2 * kRowBlock; ++r) g[r] = 4 * x[r] * x[r] * x[r];
  }
};

}  // namespace cuebm::testing_support
