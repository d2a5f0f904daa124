// cuEBM's C++ exceptions as Python exceptions with the same message:
//   cuebm.Error(Exception)                      any cuEBM error
//   cuebm.InvalidArgument(Error, ValueError)    a bad value
//   cuebm.NumericalError(Error, FloatingPointError)  NaN or Inf in a chain or a run
//   cuebm.CudaError(Error, RuntimeError)        a failed CUDA call
//   cuebm.IoError(Error, OSError)               a file that cannot be read or written
// so `except ValueError` and `except cuebm.InvalidArgument` both catch a bad value.
#include <Python.h>

#include "bindings.hpp"
#include "cuebm/runtime/error.hpp"

namespace cuebm::python {
namespace {

// New exception types; references held for the interpreter's lifetime (module state would
// need multi-phase init, which this module does not use).
PyObject* g_error = nullptr;
PyObject* g_invalid_argument = nullptr;
PyObject* g_numerical_error = nullptr;
PyObject* g_cuda_error = nullptr;
PyObject* g_io_error = nullptr;

PyObject* new_exception(nb::module_& m, const char* name, const char* doc, PyObject* bases) {
  const std::string qualified = std::string("cuebm.") + name;
  PyObject* type = PyErr_NewExceptionWithDoc(qualified.c_str(), doc, bases, nullptr);
  if (!type) throw nb::python_error();
  m.attr(name) = nb::borrow(type);
  return type;
}

nb::object bases_of(PyObject* a, PyObject* b) { return nb::steal(PyTuple_Pack(2, a, b)); }

}  // namespace

void bind_errors(nb::module_& m) {
  g_error = new_exception(m, "Error", "Base of every cuEBM error.", PyExc_Exception);
  g_invalid_argument = new_exception(m, "InvalidArgument",
                                     "A bad value (shape, size, step, name, NaN in data, ...).",
                                     bases_of(g_error, PyExc_ValueError).ptr());
  g_numerical_error =
      new_exception(m, "NumericalError", "A chain or training run produced NaN or Inf.",
                    bases_of(g_error, PyExc_FloatingPointError).ptr());
  g_cuda_error = new_exception(m, "CudaError", "A CUDA, cuBLAS or cuRAND call failed.",
                               bases_of(g_error, PyExc_RuntimeError).ptr());
  g_io_error = new_exception(m, "IoError", "A file could not be read or written, or is malformed.",
                             bases_of(g_error, PyExc_OSError).ptr());
  nb::register_exception_translator([](const std::exception_ptr& p, void*) {
    try {
      std::rethrow_exception(p);
    } catch (const InvalidArgument& e) {
      PyErr_SetString(g_invalid_argument, e.what());
    } catch (const NumericalError& e) {
      PyErr_SetString(g_numerical_error, e.what());
    } catch (const CudaError& e) {
      PyErr_SetString(g_cuda_error, e.what());
    } catch (const IoError& e) {
      PyErr_SetString(g_io_error, e.what());
    } catch (const Error& e) {
      PyErr_SetString(g_error, e.what());
    }
  });
}

}  // namespace cuebm::python
