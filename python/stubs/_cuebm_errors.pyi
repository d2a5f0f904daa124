
# The exceptions of errors.cpp, appended by python/CMakeLists.txt: their __module__ is "cuebm"
# (so tracebacks say cuebm.InvalidArgument), which makes nanobind's stubgen leave them out.
class Error(Exception):
    """Base of every cuEBM error."""

class InvalidArgument(Error, ValueError):
    """A bad value (shape, size, step, name, NaN in data, ...)."""

class NumericalError(Error, FloatingPointError):
    """A chain or training run produced NaN or Inf."""

class CudaError(Error, RuntimeError):
    """A CUDA, cuBLAS or cuRAND call failed."""

class IoError(Error, OSError):
    """A file could not be read or written, or is malformed."""
