// Density figures drawn with cairo; see include/cuebm/io/figure.hpp.
#include "cuebm/io/figure.hpp"

#ifndef CUEBM_HAVE_CAIRO  // set by CMakeLists.txt
#define CUEBM_HAVE_CAIRO 1
#endif
#if CUEBM_HAVE_CAIRO
#include <cairo.h>
#endif
#include <unistd.h>

#include <algorithm>
#include <array>
#include <cerrno>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <memory>
#include <numbers>

#include "cuebm/runtime/error.hpp"

namespace cuebm {
namespace {

constexpr int kLevels = 20;  // filled bands between 0 and 1
constexpr int kMinWidth = 200, kMinHeight = 150, kMaxSide = 8192;
constexpr const char* kFont = "DejaVu Sans";
constexpr double kPi = std::numbers::pi;
constexpr const char* kMinus = "\xe2\x88\x92";  // U+2212, as matplotlib writes negative labels

#if CUEBM_HAVE_CAIRO  // the colours (without cairo only the arguments are checked)
struct Rgb {
  double r, g, b;
};

// matplotlib's viridis (256 entries) sampled at entries 0, 16, ..., 240 and 255.
constexpr std::array<Rgb, 17> kViridis = {{
    {0.267004, 0.004874, 0.329415},
    {0.282327, 0.094955, 0.417331},
    {0.278826, 0.175490, 0.483397},
    {0.258965, 0.251537, 0.524736},
    {0.229739, 0.322361, 0.545706},
    {0.199430, 0.387607, 0.554642},
    {0.172719, 0.448791, 0.557885},
    {0.149039, 0.508051, 0.557250},
    {0.127568, 0.566949, 0.550556},
    {0.120638, 0.625828, 0.533488},
    {0.157851, 0.683765, 0.501686},
    {0.246070, 0.738910, 0.452024},
    {0.369214, 0.788888, 0.382914},
    {0.515992, 0.831158, 0.294279},
    {0.678489, 0.863742, 0.189503},
    {0.845561, 0.887322, 0.099702},
    {0.993248, 0.906157, 0.143936},
}};

Rgb viridis(double t) {
  const double pos = std::clamp(t, 0.0, 1.0) * 255.0;  // index into the 256-entry table
  const int k = std::min(static_cast<int>(pos / 16.0), 15);
  const double lo = 16.0 * k, hi = k == 15 ? 255.0 : 16.0 * (k + 1);
  const double f = std::clamp((pos - lo) / (hi - lo), 0.0, 1.0);
  const Rgb& a = kViridis[static_cast<size_t>(k)];
  const Rgb& b = kViridis[static_cast<size_t>(k) + 1];
  return {a.r + f * (b.r - a.r), a.g + f * (b.g - a.g), a.b + f * (b.b - a.b)};
}

// Colour of band k of kLevels; like matplotlib, the lowest band gets the colormap's first colour
// and the highest its last.
Rgb band_colour(int k) { return viridis(static_cast<double>(k) / (kLevels - 1)); }

int band_of(double v) {
  return std::clamp(static_cast<int>(std::floor(v * kLevels)), 0, kLevels - 1);
}
#endif  // CUEBM_HAVE_CAIRO

std::string num(double v) {
  char buf[64];
  std::snprintf(buf, sizeof(buf), "%.17g", v);
  return buf;
}

[[noreturn]] void invalid(const std::string& what) {
  throw InvalidArgument("write_density_png: " + what);
}

void check_canvas(const DensityFigure& fig) {
  if (fig.width_px < kMinWidth || fig.width_px > kMaxSide) {
    invalid("width_px must be in [" + std::to_string(kMinWidth) + ", " + std::to_string(kMaxSide) +
            "], got " + std::to_string(fig.width_px));
  }
  if (fig.height_px < kMinHeight || fig.height_px > kMaxSide) {
    invalid("height_px must be in [" + std::to_string(kMinHeight) + ", " +
            std::to_string(kMaxSide) + "], got " + std::to_string(fig.height_px));
  }
}

void check_figure(const DensityFigure& fig) {
  check_canvas(fig);
  if (!std::isfinite(fig.xmin) || !std::isfinite(fig.xmax) || !(fig.xmax > fig.xmin)) {
    invalid("need finite xmin < xmax, got xmin=" + num(fig.xmin) + " xmax=" + num(fig.xmax));
  }
  if (!std::isfinite(fig.ymin) || !std::isfinite(fig.ymax) || !(fig.ymax > fig.ymin)) {
    invalid("need finite ymin < ymax, got ymin=" + num(fig.ymin) + " ymax=" + num(fig.ymax));
  }
  if (fig.nx < 2 || fig.ny < 2) {
    invalid("nx and ny must be >= 2, got nx=" + std::to_string(fig.nx) +
            " ny=" + std::to_string(fig.ny));
  }
  const size_t expected = static_cast<size_t>(fig.nx) * static_cast<size_t>(fig.ny);
  if (fig.density.size() != expected) {
    invalid("density has " + std::to_string(fig.density.size()) +
            " values, expected nx*ny = " + std::to_string(fig.nx) + "*" + std::to_string(fig.ny) +
            " = " + std::to_string(expected));
  }
  for (size_t i = 0; i < fig.density.size(); ++i) {
    if (!std::isfinite(fig.density[i])) {
      invalid("density[" + std::to_string(i) + "] (i=" + std::to_string(i % fig.nx) +
              ", j=" + std::to_string(i / fig.nx) + ") is " + num(fig.density[i]) +
              ", expected a finite value");
    }
  }
  if (fig.data.size() % 2 != 0) {
    invalid("data has " + std::to_string(fig.data.size()) +
            " values, expected an even count (x, y pairs)");
  }
  if (fig.samples.size() % 2 != 0) {
    invalid("samples has " + std::to_string(fig.samples.size()) +
            " values, expected an even count (x, y pairs)");
  }
}

// Geometry of the figure in pixels; every length scales with the image size.
struct Layout {
  double s = 1;  // scale relative to the 800 x 700 reference
  PixelRect plot;
  PixelRect bar;
  double tick_font = 14, title_font = 17, tick_len = 5;
};

Layout make_layout(const DensityFigure& fig) {
  Layout l;
  l.s = std::min(fig.width_px / 800.0, fig.height_px / 700.0);
  const double s = l.s;
  l.tick_font = 14 * s;
  l.title_font = 17 * s;
  l.tick_len = std::max(2.0, 5 * s);
  const int top = static_cast<int>(std::lround(62 * s));
  const int bottom = fig.height_px - static_cast<int>(std::lround(52 * s));
  const int bar_x1 = fig.width_px - static_cast<int>(std::lround(58 * s));
  const int bar_x0 = bar_x1 - std::max(6, static_cast<int>(std::lround(26 * s)));
  l.bar = {bar_x0, top, bar_x1, bottom};
  l.plot = {static_cast<int>(std::lround(68 * s)), top,
            bar_x0 - static_cast<int>(std::lround(36 * s)), bottom};
  return l;
}

#if CUEBM_HAVE_CAIRO  // the drawing code

// Tick positions: multiples of a 1-2-2.5-5 step giving about `target` ticks in [lo, hi].
struct Ticks {
  std::vector<double> values;
  int decimals = 0;
};

Ticks nice_ticks(double lo, double hi, int target) {
  const double raw = (hi - lo) / target;
  const double mag = std::pow(10.0, std::floor(std::log10(raw)));
  double step = 10 * mag;
  for (double m : {1.0, 2.0, 2.5, 5.0}) {
    if (m * mag >= raw * (1 - 1e-9)) {
      step = m * mag;
      break;
    }
  }
  Ticks t;
  // Enough decimals to show the step exactly (2.5 -> 1, 0.25 -> 2, 0.001 -> 3).
  while (t.decimals < 12) {
    const double scaled = step * std::pow(10.0, t.decimals);
    if (std::fabs(scaled - std::round(scaled)) < 1e-6 * scaled) break;
    ++t.decimals;
  }
  const double first = std::ceil(lo / step - 1e-9), last = std::floor(hi / step + 1e-9);
  for (double k = first; k <= last; k += 1) t.values.push_back(k == 0 ? 0.0 : k * step);
  return t;
}

std::string tick_label(double v, int decimals) {
  char buf[64];
  std::snprintf(buf, sizeof(buf), "%.*f", decimals, std::fabs(v));
  const bool zero = std::strspn(buf, "0.") == std::strlen(buf);
  return (v < 0 && !zero ? kMinus : "") + std::string(buf);
}

struct SurfaceDeleter {
  void operator()(cairo_surface_t* s) const { cairo_surface_destroy(s); }
};
struct ContextDeleter {
  void operator()(cairo_t* c) const { cairo_destroy(c); }
};

// Draws text with its anchor at (x, y): ax = 0 / 0.5 / 1 for left / centre / right, and the
// height of the digits centred on y (vcentre) or their top at y (!vcentre).
void draw_text(cairo_t* cr, const std::string& text, double x, double y, double ax, bool vcentre) {
  cairo_text_extents_t ext;
  cairo_text_extents(cr, text.c_str(), &ext);
  cairo_text_extents_t digit;
  cairo_text_extents(cr, "0", &digit);
  const double top_to_base = -digit.y_bearing;  // digit height above the baseline
  const double base = vcentre ? y + top_to_base / 2 : y + top_to_base;
  cairo_move_to(cr, x - ax * ext.x_advance, base);
  cairo_show_text(cr, text.c_str());
}

void fill_contours(cairo_surface_t* surface, const DensityFigure& fig, const PixelRect& r) {
  std::array<uint32_t, kLevels> colours{};
  for (int k = 0; k < kLevels; ++k) {
    const Rgb c = band_colour(k);
    const auto byte = [](double v) {
      return static_cast<uint32_t>(std::lround(std::clamp(v, 0.0, 1.0) * 255));
    };
    colours[static_cast<size_t>(k)] = 0xff000000u | byte(c.r) << 16 | byte(c.g) << 8 | byte(c.b);
  }
  cairo_surface_flush(surface);
  unsigned char* pixels = cairo_image_surface_get_data(surface);
  const int stride = cairo_image_surface_get_stride(surface);
  const double w = r.x1 - r.x0, h = r.y1 - r.y0;
  for (int v = r.y0; v < r.y1; ++v) {
    // Grid coordinate of the pixel centre: row 0 of the image is ymax.
    const double gy = std::clamp((1.0 - (v + 0.5 - r.y0) / h) * (fig.ny - 1), 0.0,
                                 static_cast<double>(fig.ny - 1));
    const int j = std::min(static_cast<int>(gy), fig.ny - 2);
    const double ty = gy - j;
    const float* row0 = fig.density.data() + static_cast<size_t>(j) * fig.nx;
    const float* row1 = row0 + fig.nx;
    auto* out = reinterpret_cast<uint32_t*>(pixels + static_cast<size_t>(v) * stride);
    for (int u = r.x0; u < r.x1; ++u) {
      const double gx =
          std::clamp((u + 0.5 - r.x0) / w * (fig.nx - 1), 0.0, static_cast<double>(fig.nx - 1));
      const int i = std::min(static_cast<int>(gx), fig.nx - 2);
      const double tx = gx - i;
      const double bottom = row0[i] + tx * (row0[i + 1] - row0[i]);
      const double top = row1[i] + tx * (row1[i + 1] - row1[i]);
      out[u] = colours[static_cast<size_t>(band_of(bottom + ty * (top - bottom)))];
    }
  }
  cairo_surface_mark_dirty(surface);
}

// Calls f(px, py) for every finite point inside the plotted box.
template <class F>
void for_each_point(const DensityFigure& fig, const std::vector<float>& pts, const PixelRect& r,
                    F&& f) {
  for (size_t k = 0; k + 1 < pts.size(); k += 2) {
    const double x = pts[k], y = pts[k + 1];
    if (!std::isfinite(x) || !std::isfinite(y)) continue;
    if (x < fig.xmin || x > fig.xmax || y < fig.ymin || y > fig.ymax) continue;
    f(r.x0 + (x - fig.xmin) / (fig.xmax - fig.xmin) * (r.x1 - r.x0),
      r.y0 + (fig.ymax - y) / (fig.ymax - fig.ymin) * (r.y1 - r.y0));
  }
}

void draw_points(cairo_t* cr, const DensityFigure& fig, const Layout& l) {
  const PixelRect& r = l.plot;
  const double radius = std::max(1.5, 2.6 * l.s);
  cairo_save(cr);
  cairo_rectangle(cr, r.x0, r.y0, r.x1 - r.x0, r.y1 - r.y0);
  cairo_clip(cr);
  cairo_set_line_width(cr, std::max(0.5, 0.7 * l.s));
  for_each_point(fig, fig.data, r, [&](double px, double py) {
    cairo_new_sub_path(cr);
    cairo_arc(cr, px, py, radius, 0, 2 * kPi);
    cairo_set_source_rgb(cr, 1, 1, 1);
    cairo_fill_preserve(cr);
    cairo_set_source_rgb(cr, 0.15, 0.15, 0.15);
    cairo_stroke(cr);
  });
  cairo_set_source_rgb(cr, 1, 0, 0);
  for_each_point(fig, fig.samples, r, [&](double px, double py) {
    cairo_new_sub_path(cr);
    cairo_arc(cr, px, py, radius, 0, 2 * kPi);
    cairo_fill(cr);
  });
  cairo_restore(cr);
}

void draw_axes(cairo_t* cr, const DensityFigure& fig, const Layout& l) {
  const PixelRect& r = l.plot;
  const double lw = std::max(1.0, std::round(1.0 * l.s));
  cairo_set_source_rgb(cr, 0, 0, 0);
  cairo_set_line_width(cr, lw);
  cairo_rectangle(cr, r.x0 - lw / 2, r.y0 - lw / 2, r.x1 - r.x0 + lw, r.y1 - r.y0 + lw);
  cairo_stroke(cr);
  cairo_set_font_size(cr, l.tick_font);
  const double label_gap = 4 * l.s;

  const Ticks xt = nice_ticks(fig.xmin, fig.xmax, 6);
  for (double v : xt.values) {
    const double px =
        std::round(r.x0 + (v - fig.xmin) / (fig.xmax - fig.xmin) * (r.x1 - r.x0)) + 0.5;
    cairo_move_to(cr, px, r.y1 + lw);
    cairo_line_to(cr, px, r.y1 + lw + l.tick_len);
    cairo_stroke(cr);
    draw_text(cr, tick_label(v, xt.decimals), px, r.y1 + lw + l.tick_len + label_gap, 0.5, false);
  }
  const Ticks yt = nice_ticks(fig.ymin, fig.ymax, 6);
  for (double v : yt.values) {
    const double py =
        std::round(r.y0 + (fig.ymax - v) / (fig.ymax - fig.ymin) * (r.y1 - r.y0)) + 0.5;
    cairo_move_to(cr, r.x0 - lw, py);
    cairo_line_to(cr, r.x0 - lw - l.tick_len, py);
    cairo_stroke(cr);
    draw_text(cr, tick_label(v, yt.decimals), r.x0 - lw - l.tick_len - label_gap, py, 1.0, true);
  }
}

void draw_colour_bar(cairo_t* cr, const Layout& l) {
  const PixelRect& b = l.bar;
  const double h = b.y1 - b.y0;
  // Each band is filled from its top down to the bottom of the bar, highest band first, so that
  // antialiased band edges blend two neighbouring colours instead of showing the background.
  for (int k = kLevels - 1; k >= 0; --k) {
    const Rgb c = band_colour(k);
    const double y_hi = b.y1 - h * (k + 1) / kLevels;
    cairo_set_source_rgb(cr, c.r, c.g, c.b);
    cairo_rectangle(cr, b.x0, y_hi, b.x1 - b.x0, b.y1 - y_hi);
    cairo_fill(cr);
  }
  const double lw = std::max(1.0, std::round(1.0 * l.s));
  cairo_set_source_rgb(cr, 0, 0, 0);
  cairo_set_line_width(cr, lw);
  cairo_rectangle(cr, b.x0 - lw / 2, b.y0 - lw / 2, b.x1 - b.x0 + lw, h + lw);
  cairo_stroke(cr);
  cairo_set_font_size(cr, l.tick_font);
  for (int t = 0; t <= 5; ++t) {
    const double py = std::round(b.y1 - h * t / 5.0) + 0.5;
    cairo_move_to(cr, b.x1 + lw, py);
    cairo_line_to(cr, b.x1 + lw + l.tick_len, py);
    cairo_stroke(cr);
    char label[8];
    std::snprintf(label, sizeof(label), "%.1f", t / 5.0);
    draw_text(cr, label, b.x1 + lw + l.tick_len + 4 * l.s, py, 0.0, true);
  }
}

void draw_legend(cairo_t* cr, const DensityFigure& fig, const Layout& l) {
  struct Entry {
    const std::string* label;
    bool red;
  };
  std::vector<Entry> entries;
  if (!fig.data_label.empty()) entries.push_back({&fig.data_label, false});
  if (!fig.samples_label.empty()) entries.push_back({&fig.samples_label, true});
  if (entries.empty()) return;

  const double s = l.s;
  cairo_set_font_size(cr, l.tick_font);
  double text_w = 0;
  for (const Entry& e : entries) {
    cairo_text_extents_t ext;
    cairo_text_extents(cr, e.label->c_str(), &ext);
    text_w = std::max(text_w, ext.x_advance);
  }
  const double pad = 7 * s, marker_w = 20 * s, gap = 8 * s, row_h = 20 * s;
  const double box_w = pad + marker_w + gap + text_w + pad;
  const double box_h = pad + row_h * static_cast<double>(entries.size()) + pad - 4 * s;
  const double margin = 7 * s;
  const PixelRect& r = l.plot;

  // Like matplotlib's loc="best": the first corner (upper right, upper left, lower left, lower
  // right) whose box covers the fewest points.
  const std::array<std::array<double, 2>, 4> corners = {{
      {r.x1 - margin - box_w, r.y0 + margin},
      {r.x0 + margin, r.y0 + margin},
      {r.x0 + margin, r.y1 - margin - box_h},
      {r.x1 - margin - box_w, r.y1 - margin - box_h},
  }};
  double bx = corners[0][0], by = corners[0][1];
  size_t best = SIZE_MAX;
  for (const auto& c : corners) {
    size_t covered = 0;
    const auto count = [&](double px, double py) {
      if (px >= c[0] && px <= c[0] + box_w && py >= c[1] && py <= c[1] + box_h) ++covered;
    };
    for_each_point(fig, fig.data, r, count);
    for_each_point(fig, fig.samples, r, count);
    if (covered < best) {
      best = covered;
      bx = c[0];
      by = c[1];
    }
  }

  // Rounded white box with a light grey edge, as matplotlib draws it.
  const double rad = 3 * s;
  cairo_new_sub_path(cr);
  cairo_arc(cr, bx + box_w - rad, by + rad, rad, -kPi / 2, 0);
  cairo_arc(cr, bx + box_w - rad, by + box_h - rad, rad, 0, kPi / 2);
  cairo_arc(cr, bx + rad, by + box_h - rad, rad, kPi / 2, kPi);
  cairo_arc(cr, bx + rad, by + rad, rad, kPi, 1.5 * kPi);
  cairo_close_path(cr);
  cairo_set_source_rgba(cr, 1, 1, 1, 0.8);
  cairo_fill_preserve(cr);
  cairo_set_source_rgb(cr, 0.8, 0.8, 0.8);
  cairo_set_line_width(cr, std::max(1.0, s));
  cairo_stroke(cr);

  const double radius = std::max(2.0, 4 * s);
  for (size_t k = 0; k < entries.size(); ++k) {
    const double cy = by + pad + row_h * (static_cast<double>(k) + 0.5) - 2 * s;
    const double cx = bx + pad + marker_w / 2;
    cairo_new_sub_path(cr);
    cairo_arc(cr, cx, cy, radius, 0, 2 * kPi);
    if (entries[k].red) {
      cairo_set_source_rgb(cr, 1, 0, 0);
      cairo_fill(cr);
    } else {
      cairo_set_source_rgb(cr, 1, 1, 1);
      cairo_fill_preserve(cr);
      cairo_set_source_rgb(cr, 0.15, 0.15, 0.15);
      cairo_set_line_width(cr, std::max(0.5, 0.8 * s));
      cairo_stroke(cr);
    }
    cairo_set_source_rgb(cr, 0, 0, 0);
    draw_text(cr, *entries[k].label, bx + pad + marker_w + gap, cy, 0.0, true);
  }
}

struct PngSink {
  FILE* file = nullptr;
  int err = 0;
};

cairo_status_t write_chunk(void* closure, const unsigned char* data, unsigned int length) {
  auto* sink = static_cast<PngSink*>(closure);
  if (std::fwrite(data, 1, length, sink->file) != length) {
    sink->err = errno != 0 ? errno : EIO;
    return CAIRO_STATUS_WRITE_ERROR;
  }
  return CAIRO_STATUS_SUCCESS;
}

[[noreturn]] void io_fail(const std::string& path, const std::string& what) {
  throw IoError("write_density_png: '" + path + "': " + what);
}

void write_png_atomic(cairo_surface_t* surface, const std::string& path) {
  const std::string tmp = path + ".tmp-" + std::to_string(static_cast<long long>(::getpid()));
  PngSink sink;
  sink.file = std::fopen(tmp.c_str(), "wb");
  if (sink.file == nullptr) {
    const int err = errno;
    io_fail(path, "cannot create temporary file '" + tmp + "': " + std::strerror(err));
  }
  const cairo_status_t status = cairo_surface_write_to_png_stream(surface, write_chunk, &sink);
  std::string reason;
  if (status != CAIRO_STATUS_SUCCESS) {
    reason = sink.err != 0 ? std::strerror(sink.err) : cairo_status_to_string(status);
  }
  if (reason.empty() && std::fflush(sink.file) != 0) reason = std::strerror(errno);
  if (std::fclose(sink.file) != 0 && reason.empty()) reason = std::strerror(errno);
  if (!reason.empty()) {
    std::remove(tmp.c_str());
    io_fail(path, "writing temporary file '" + tmp + "' failed: " + reason);
  }
  if (std::rename(tmp.c_str(), path.c_str()) != 0) {
    const int err = errno;
    std::remove(tmp.c_str());
    io_fail(path, "cannot rename temporary file '" + tmp + "' to it: " + std::strerror(err));
  }
}

#endif  // CUEBM_HAVE_CAIRO

}  // namespace

PixelRect density_plot_area(const DensityFigure& fig) {
  check_canvas(fig);
  return make_layout(fig).plot;
}

void write_density_png(const DensityFigure& fig, const std::string& path) {
  if (path.empty()) invalid("path is empty");
  check_figure(fig);
#if !CUEBM_HAVE_CAIRO
  throw InvalidArgument(
      "write_density_png: built without cairo (configure cuEBM with cairo, e.g. "
      "Debian's libcairo2-dev, to draw figures); '" +
      path + "' not written");
#else
  const Layout l = make_layout(fig);

  std::unique_ptr<cairo_surface_t, SurfaceDeleter> surface(
      cairo_image_surface_create(CAIRO_FORMAT_ARGB32, fig.width_px, fig.height_px));
  if (cairo_surface_status(surface.get()) != CAIRO_STATUS_SUCCESS) {
    io_fail(path, "cannot create a " + std::to_string(fig.width_px) + "x" +
                      std::to_string(fig.height_px) +
                      " image: " + cairo_status_to_string(cairo_surface_status(surface.get())));
  }
  std::unique_ptr<cairo_t, ContextDeleter> context(cairo_create(surface.get()));
  cairo_t* cr = context.get();
  cairo_set_source_rgb(cr, 1, 1, 1);
  cairo_paint(cr);
  cairo_select_font_face(cr, kFont, CAIRO_FONT_SLANT_NORMAL, CAIRO_FONT_WEIGHT_NORMAL);

  fill_contours(surface.get(), fig, l.plot);
  draw_points(cr, fig, l);
  draw_axes(cr, fig, l);
  draw_colour_bar(cr, l);
  draw_legend(cr, fig, l);
  if (!fig.title.empty()) {
    cairo_set_source_rgb(cr, 0, 0, 0);
    cairo_set_font_size(cr, l.title_font);
    cairo_text_extents_t ext;
    cairo_text_extents(cr, fig.title.c_str(), &ext);
    const double cx = (l.plot.x0 + l.plot.x1) / 2.0;
    cairo_move_to(cr, cx - ext.x_advance / 2, l.plot.y0 - 12 * l.s);
    cairo_show_text(cr, fig.title.c_str());
  }
  if (cairo_status(cr) != CAIRO_STATUS_SUCCESS) {
    io_fail(path, std::string("drawing failed: ") + cairo_status_to_string(cairo_status(cr)));
  }
  cairo_surface_flush(surface.get());
  write_png_atomic(surface.get(), path);
#endif  // CUEBM_HAVE_CAIRO
}

}  // namespace cuebm
