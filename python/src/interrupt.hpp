// The GIL and Ctrl-C during long calls: the compute runs without the GIL (so other Python
// threads run meanwhile), and afterwards, or between chunks, the caller checks for signals with
// the GIL held; a pending KeyboardInterrupt (or any exception a signal handler raised)
// propagates as nb::python_error.
#pragma once

#include <Python.h>
#include <nanobind/nanobind.h>

#include <utility>

namespace cuebm::python {

// Needs the GIL.
inline void raise_pending_signals() {
  if (PyErr_CheckSignals() != 0) throw nanobind::python_error();
}

// f() with the GIL released; f must not touch Python objects.
template <class F>
auto without_gil(F&& f) {
  nanobind::gil_scoped_release unlocked;
  return std::forward<F>(f)();
}

// without_gil(f), then a Ctrl-C pressed meanwhile is raised (f's result is dropped).
template <class F>
auto interruptible(F&& f) {
  auto result = without_gil(std::forward<F>(f));
  raise_pending_signals();
  return result;
}

}  // namespace cuebm::python
