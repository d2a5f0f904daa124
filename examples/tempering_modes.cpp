// Mode coverage of unadjusted Langevin against parallel tempering on a separated mixture: the
// 2-D double well h sum_i (x_i^2 - 1)^2 (four modes at (+-1, +-1), barrier h = 2) at T = 0.1,
// 300 chains started in the mode (1, 1), 2000 steps each. Writes one figure: the density, the
// Langevin chains (white) and the T = 0.1 replicas of parallel tempering (red), and prints how
// many of each ended in every mode. Usage: tempering_modes [output.png]
#include <cmath>
#include <cstdio>
#include <exception>
#include <string>
#include <vector>

#include "cuebm/io/figure.hpp"
#include "cuebm/models/analytic.hpp"
#include "cuebm/sampling/langevin.hpp"
#include "cuebm/sampling/tempering.hpp"

namespace {

void print_modes(const char* who, const std::vector<float>& xy) {
  int count[4] = {0, 0, 0, 0};
  for (std::size_t i = 0; i + 1 < xy.size(); i += 2)
    ++count[(xy[i] < 0 ? 1 : 0) + (xy[i + 1] < 0 ? 2 : 0)];
  std::printf("%-20s (+,+) %3d  (-,+) %3d  (+,-) %3d  (-,-) %3d\n", who, count[0], count[1],
              count[2], count[3]);
}

}  // namespace

int main(int argc, char** argv) {
  try {
    const std::string path = argc > 1 ? argv[1] : "tempering_vs_langevin.png";
    const cuebm::AnalyticEnergy well = cuebm::AnalyticEnergy::double_well(2, 2.0f, 1.0f);
    const double t = 0.1;
    const int64_t n = 300;
    const int steps = 2000;
    const std::vector<float> start(2 * n, 1.0f);

    cuebm::LangevinOptions l;
    l.step_size = 0.01f;
    l.noise_scale = static_cast<float>(std::sqrt(t));
    l.n_steps = steps;
    l.seed = 1;
    const cuebm::LangevinResult lr = cuebm::langevin_sample(well, start.data(), n, l);

    cuebm::TemperingOptions p;
    p.n_replicas = 8;
    p.t_min = t;
    p.t_max = 4.0;
    p.step_size = 0.01f;
    p.n_steps = steps;
    p.seed = 1;
    const cuebm::TemperingResult pr = cuebm::parallel_tempering(well, start.data(), n, p);
    print_modes("Langevin", lr.samples);
    print_modes("parallel tempering", pr.samples);
    std::printf("swap acceptance of adjacent pairs:");
    for (double a : pr.swap_acceptance) std::printf(" %.2f", a);
    std::printf("\n");

    cuebm::DensityFigure fig;
    fig.title = "Double well at T = 0.1: Langevin vs parallel tempering, 2000 steps";
    fig.xmin = fig.ymin = -2.0;
    fig.xmax = fig.ymax = 2.0;
    fig.nx = fig.ny = 161;
    std::vector<float> grid(2 * fig.nx * fig.ny), e(fig.nx * fig.ny);
    for (int j = 0; j < fig.ny; ++j)
      for (int i = 0; i < fig.nx; ++i) {
        grid[2 * (j * fig.nx + i)] = static_cast<float>(-2.0 + 4.0 * i / (fig.nx - 1));
        grid[2 * (j * fig.nx + i) + 1] = static_cast<float>(-2.0 + 4.0 * j / (fig.ny - 1));
      }
    well.energy(grid.data(), fig.nx * fig.ny, e.data());
    float e_min = e[0];
    for (float v : e) e_min = std::min(e_min, v);
    fig.density.resize(e.size());
    for (std::size_t k = 0; k < e.size(); ++k)
      fig.density[k] = static_cast<float>(std::exp(-(e[k] - e_min) / t));
    fig.data = lr.samples;
    fig.data_label = "Langevin";
    fig.samples = pr.samples;
    fig.samples_label = "Parallel tempering";
    cuebm::write_density_png(fig, path);
    std::printf("wrote %s\n", path.c_str());
    return 0;
  } catch (const std::exception& e) {
    std::fprintf(stderr, "tempering_modes: %s\n", e.what());
    return 2;
  }
}
