// Exceptions thrown by cuEBM. Every message names the offending value or call.
#pragma once

#include <stdexcept>
#include <string>

namespace cuebm {

// Base of every cuEBM error.
class Error : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

// A caller passed a bad value (shape, size, step, name, NaN in data, ...).
class InvalidArgument : public Error {
 public:
  using Error::Error;
};

// A file could not be read or written, or its content is malformed.
class IoError : public Error {
 public:
  using Error::Error;
};

// A chain or training run produced NaN or Inf.
class NumericalError : public Error {
 public:
  using Error::Error;
};

// A CUDA, cuBLAS or cuRAND call failed; the message names the call.
class CudaError : public Error {
 public:
  using Error::Error;
};

}  // namespace cuebm
