// The energy interface every sampler and trainer works with.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>

namespace cuebm {

// Rows the CPU backend processes together (two AVX-512 vectors of floats per feature, so
// each broadcast weight feeds two FMAs).
inline constexpr int kRowBlock = 32;

// E(x) for a batch of rows and its gradient dE/dx per row.
class Energy {
 public:
  virtual ~Energy() = default;

  virtual int dim() const = 0;
  virtual std::string name() const = 0;

  // Row-major batches (n x dim). Runs on the CPU backend, in parallel over row blocks.
  void energy(const float* x, int64_t n, float* e) const;
  // grad is n x dim; e (optional, may be null) receives E(x) from the same pass.
  void gradient(const float* x, int64_t n, float* grad, float* e = nullptr) const;

  // Block interface of the CPU backend: kRowBlock rows stored feature-major
  // (value d of row r at x_t[d * kRowBlock + r]), with a caller-provided workspace of
  // block_workspace_floats() floats. Every lane is computed; unused lanes hold any finite value.
  virtual std::size_t block_workspace_floats() const = 0;
  virtual void block_energy(const float* x_t, float* e, float* work) const = 0;
  virtual void block_gradient(const float* x_t, float* grad_t, float* e, float* work) const = 0;
};

}  // namespace cuebm
