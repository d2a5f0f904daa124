// Step-size and noise schedules; a float converts to a constant schedule implicitly.
#include <nanobind/stl/vector.h>

#include "bindings.hpp"
#include "cuebm/sampling/schedule.hpp"

namespace cuebm::python {

void bind_schedule(nb::module_& m) {
  nb::class_<Schedule> schedule(m, "Schedule",
                                "A value per step: constant, exponential, linear, cosine, "
                                "multistep, optionally with a warm-up (value(t) after t steps).");
  nb::enum_<Schedule::Kind>(schedule, "Kind")
      .value("constant", Schedule::Kind::kConstant)
      .value("exponential", Schedule::Kind::kExponential)
      .value("linear", Schedule::Kind::kLinear)
      .value("cosine", Schedule::Kind::kCosine)
      .value("multistep", Schedule::Kind::kMultiStep);
  schedule.def(nb::init<float>(), nb::arg("value"))
      .def_static("constant", &Schedule::constant, nb::arg("value"))
      .def_static("exponential", &Schedule::exponential, nb::arg("start"), nb::arg("rate"),
                  nb::arg("min_value") = 0.0f, "max(min_value, start * rate^t)")
      .def_static("linear", &Schedule::linear, nb::arg("start"), nb::arg("end"), nb::arg("n_steps"),
                  "start + (end - start) t / n_steps, then end")
      .def_static("cosine", &Schedule::cosine, nb::arg("start"), nb::arg("end"), nb::arg("n_steps"),
                  "end + (start - end)(1 + cos(pi t / n_steps)) / 2")
      .def_static("multistep", &Schedule::multistep, nb::arg("start"), nb::arg("milestones"),
                  nb::arg("gamma"), "start * gamma^(milestones <= t)")
      .def("with_warmup", &Schedule::with_warmup, nb::arg("warmup_steps"), nb::arg("factor"),
           "Linear warm-up from start * factor to start over warmup_steps, then this schedule.")
      .def_prop_ro("kind", &Schedule::kind)
      .def_prop_ro("start", &Schedule::start)
      .def("value", &Schedule::value, nb::arg("t"), "The value after t steps.");
  nb::implicitly_convertible<float, Schedule>();
}

}  // namespace cuebm::python
