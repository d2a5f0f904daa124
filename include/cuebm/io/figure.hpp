// PNG figures of a 2-D density with data and model samples on top, drawn with cairo to look like
// matplotlib's contourf(X, Y, density, levels=20, cmap="viridis") + colorbar + scatter + legend.
#pragma once

#include <string>
#include <vector>

namespace cuebm {

struct DensityFigure {
  std::string title;  // centred above the axes; empty for none, e.g. "Epoch 20"
  double xmin = -2.5, xmax = 2.5, ymin = -2.5, ymax = 2.5;
  int nx = 100, ny = 100;
  // nx*ny values; point (i, j) sits at x = linspace(xmin, xmax, nx)[i],
  // y = linspace(ymin, ymax, ny)[j] and is stored at index j * nx + i (x fastest). Expected to be
  // normalised to a maximum of 1; values are clamped to [0, 1] for colouring.
  std::vector<float> density;
  std::vector<float> data;     // n x 2 points (x0, y0, x1, y1, ...), white dots with a dark edge
  std::vector<float> samples;  // m x 2 points, red dots drawn over the data
  std::string data_label = "Data", samples_label = "Model samples";  // empty: no legend entry
  int width_px = 800, height_px = 700;
};

// Pixel rectangle [x0, x1) x [y0, y1) of an image; y grows downwards.
struct PixelRect {
  int x0 = 0, y0 = 0, x1 = 0, y1 = 0;
};

// The pixels the filled contours cover in the image write_density_png draws for fig (inside the
// axes frame). Data point (x, y) is drawn centred at pixel coordinates
// (x0 + (x - xmin) / (xmax - xmin) * (x1 - x0), y0 + (ymax - y) / (ymax - ymin) * (y1 - y0)).
// Throws InvalidArgument for a bad width_px or height_px.
PixelRect density_plot_area(const DensityFigure& fig);

// Writes fig as a width_px x height_px PNG: filled contours (the bilinearly interpolated density
// quantised into 20 bands of [0, 1], viridis), a colour bar with ticks 0.0 .. 1.0 at the right,
// an axes frame with outward ticks and numeric labels, the title, the data (white) and samples
// (red) as dots, and a legend in the corner of the axes that covers the fewest points. Points
// outside the plotted box or with non-finite coordinates are skipped.
//
// The file is written atomically to "<path>.tmp-<pid>" and renamed to path; on failure the
// temporary file is removed and IoError names path and the reason. Throws InvalidArgument when
// density.size() != nx * ny, nx or ny < 2, a density value is not finite, data or samples has an
// odd size, a bound is not finite or xmax <= xmin or ymax <= ymin, width_px is outside
// [200, 8192] or height_px outside [150, 8192], or path is empty.
void write_density_png(const DensityFigure& fig, const std::string& path);

}  // namespace cuebm
