// Analytic energies of behaviour.md with their closed-form gradients.
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "cuebm/models/energy.hpp"

namespace cuebm {

enum class AnalyticKind { kGaussian, kDoubleWell, kHarmonic, kRosenbrock, kAckley, kRastrigin };

class AnalyticEnergy : public Energy {
 public:
  static AnalyticEnergy gaussian(std::vector<float> mean, std::vector<double> covariance);
  static AnalyticEnergy double_well(int dim, float barrier_height = 2.0f, float b = 1.0f);
  static AnalyticEnergy harmonic(int dim, float k = 1.0f);
  static AnalyticEnergy rosenbrock(int dim, float a = 1.0f, float b = 100.0f);
  static AnalyticEnergy ackley(int dim, float a = 20.0f, float b = 0.2f, float c = 6.28318530718f);
  static AnalyticEnergy rastrigin(int dim, float a = 10.0f);
  // By name ("gaussian", "double_well", "harmonic", "rosenbrock", "ackley", "rastrigin") with
  // named parameters ("h", "b", "k", "a", "c", "mean", "std" for an isotropic Gaussian);
  // unknown names and keys throw InvalidArgument.
  static AnalyticEnergy by_name(const std::string& name, int dim,
                                const std::map<std::string, double>& params = {});
  static std::vector<std::string> names();

  AnalyticKind kind() const { return kind_; }
  int dim() const override { return dim_; }
  std::string name() const override;
  // Scalar parameters p[0..2] as the kind reads them (see kernels/models/analytic.cuh).
  const float* scalars() const { return scalars_; }
  // Gaussian only: the mean (D) and the precision matrix Sigma^-1 (D x D, row-major).
  const std::vector<float>& mean() const { return mean_; }
  const std::vector<float>& precision() const { return precision_; }

  std::size_t block_workspace_floats() const override { return 0; }
  void block_energy(const float* x_t, float* e, float* work) const override;
  void block_gradient(const float* x_t, float* grad_t, float* e, float* work) const override;

 private:
  AnalyticEnergy(AnalyticKind kind, int dim);
  AnalyticKind kind_;
  int dim_;
  float scalars_[3] = {0, 0, 0};
  std::vector<float> mean_;
  std::vector<float> precision_;
};

}  // namespace cuebm
