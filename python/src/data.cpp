// The toy 2-D datasets and cuEBM's shuffling mini-batch loader.
#include <nanobind/stl/map.h>
#include <nanobind/stl/string.h>
#include <nanobind/stl/vector.h>

#include <memory>

#include "arrays.hpp"
#include "bindings.hpp"
#include "cuebm/data/datasets.hpp"

namespace cuebm::python {
namespace {

NumpyArray<float> points_of(Dataset&& d) {
  return to_numpy(std::move(d.points),
                  {static_cast<std::size_t>(d.n), static_cast<std::size_t>(d.dim)});
}

NumpyArray<float> centres_of(std::vector<float>&& c) {
  const std::size_t k = c.size() / 2;
  return to_numpy(std::move(c), {k, std::size_t{2}});
}

// DataLoader over a copy of the data (the C++ loader borrows; the copy keeps it alive).
class Loader {
 public:
  Loader(const AnyArray& data, int64_t batch_size, bool shuffle, bool drop_last, uint64_t seed)
      : rows_(as_rows(data, "data", 0)),
        data_(rows_.data(), rows_.data() + rows_.size()),
        loader_(data_.data(), rows_.shape(0), static_cast<int>(rows_.shape(1)), batch_size, shuffle,
                drop_last, seed) {}
  DataLoader& loader() { return loader_; }

 private:
  FloatArray rows_;
  std::vector<float> data_;
  DataLoader loader_;
};

}  // namespace

void bind_data(nb::module_& m) {
  m.def(
      "make_dataset",
      [](const std::string& name, const std::map<std::string, double>& params, uint64_t seed) {
        return points_of(make_dataset(name, params, seed));
      },
      nb::arg("name"), nb::arg("params") = std::map<std::string, double>{}, nb::arg("seed") = 42,
      "A dataset of datasets.hpp by name (dataset_names()) as an (n, 2) float32 array; params "
      "override the defaults by field name (n, std, components, radius, ...).");
  m.def("dataset_names", &dataset_names);
  m.def(
      "gaussian_mixture_centres",
      [](int components, float radius) {
        return centres_of(gaussian_mixture_centres(components, radius));
      },
      nb::arg("components"), nb::arg("radius"));
  m.def(
      "eight_gaussians_centres",
      [](float scale) { return centres_of(eight_gaussians_centres(scale)); }, nb::arg("scale"));

  nb::class_<Loader>(m, "DataLoader",
                     "Mini-batches of an (n, dim) array; epoch e visits the rows in a "
                     "permutation keyed by (seed, e) when shuffling (cuebm::DataLoader).")
      .def(nb::init<const AnyArray&, int64_t, bool, bool, uint64_t>(), nb::arg("data"),
           nb::arg("batch_size"), nb::arg("shuffle") = true, nb::arg("drop_last") = true,
           nb::arg("seed") = 0)
      .def(
          "start_epoch", [](Loader& l, int64_t epoch) { l.loader().start_epoch(epoch); },
          nb::arg("epoch"))
      .def("num_batches", [](Loader& l) { return l.loader().num_batches(); })
      .def(
          "batch",
          [](Loader& l, int64_t b) {
            const float* p = l.loader().batch(b);
            const auto rows = static_cast<std::size_t>(l.loader().batch_rows(b));
            const auto d = static_cast<std::size_t>(l.loader().dim());
            return to_numpy(std::vector<float>(p, p + rows * d), {rows, d});
          },
          nb::arg("b"), "Batch b of the current epoch (a copy).");
}

}  // namespace cuebm::python
