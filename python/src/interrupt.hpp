// Ctrl-C during long calls: the compute runs without the GIL in chunks, and between chunks the
// caller checks for signals with the GIL held; a pending KeyboardInterrupt (or any exception a
// signal handler raised) propagates as nb::python_error.
#pragma once

#include <Python.h>
#include <nanobind/nanobind.h>

namespace cuebm::python {

// Needs the GIL.
inline void raise_pending_signals() {
  if (PyErr_CheckSignals() != 0) throw nanobind::python_error();
}

}  // namespace cuebm::python
