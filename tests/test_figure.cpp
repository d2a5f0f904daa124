// Tests of the density figure: the PNG is read back with cairo and checked pixel by pixel where
// the layout is known (contour colours, points, legend, colour bar, title), plus the errors.
#include "cuebm/io/figure.hpp"

#include <cairo/cairo.h>
#include <gtest/gtest.h>
#include <unistd.h>

#include <cmath>
#include <cstdint>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <limits>
#include <string>
#include <vector>

#include "cuebm/runtime/error.hpp"

// Fontconfig, which cairo's text API loads, keeps its configuration allocated until exit; tell
// LeakSanitizer (CUEBM_SANITIZE builds) that this is not a leak of ours. Unused otherwise.
extern "C" const char* __lsan_default_suppressions() { return "leak:libfontconfig.so\n"; }

namespace cuebm {
namespace {

namespace fs = std::filesystem;

struct Rgb {
  int r, g, b;
};

std::ostream& operator<<(std::ostream& os, const Rgb& c) {
  return os << "rgb(" << c.r << ", " << c.g << ", " << c.b << ")";
}

// viridis(0) and viridis(1), the colours of the lowest and highest bands.
constexpr Rgb kViridisLow = {68, 1, 84};
constexpr Rgb kViridisHigh = {253, 231, 37};

bool near(const Rgb& a, const Rgb& b, int tol) {
  return std::abs(a.r - b.r) <= tol && std::abs(a.g - b.g) <= tol && std::abs(a.b - b.b) <= tol;
}

bool is_red(const Rgb& c) { return c.r > 200 && c.g < 70 && c.b < 70; }

// A PNG read back through cairo.
class Image {
 public:
  explicit Image(const std::string& path)
      : surface_(cairo_image_surface_create_from_png(path.c_str())) {}
  ~Image() { cairo_surface_destroy(surface_); }
  Image(const Image&) = delete;
  Image& operator=(const Image&) = delete;

  bool ok() const { return cairo_surface_status(surface_) == CAIRO_STATUS_SUCCESS; }
  int width() const { return cairo_image_surface_get_width(surface_); }
  int height() const { return cairo_image_surface_get_height(surface_); }

  Rgb at(int x, int y) const {
    const unsigned char* row = cairo_image_surface_get_data(surface_) +
                               static_cast<size_t>(y) * cairo_image_surface_get_stride(surface_);
    const uint32_t p = reinterpret_cast<const uint32_t*>(row)[x];
    return {static_cast<int>(p >> 16 & 0xff), static_cast<int>(p >> 8 & 0xff),
            static_cast<int>(p & 0xff)};
  }

  // Pixels in [x0, x1) x [y0, y1) for which pred holds.
  template <class Pred>
  int count(int x0, int y0, int x1, int y1, Pred pred) const {
    int n = 0;
    for (int y = y0; y < y1; ++y) {
      for (int x = x0; x < x1; ++x) n += pred(at(x, y)) ? 1 : 0;
    }
    return n;
  }

 private:
  cairo_surface_t* surface_;
};

// Two bumps: peak 1 at (-1, -1) and 0.6 at (1, 0.8), normalised to a maximum of 1.
DensityFigure two_bumps() {
  DensityFigure fig;
  fig.title = "Epoch 20";
  fig.nx = 101;
  fig.ny = 81;
  fig.density.resize(static_cast<size_t>(fig.nx) * fig.ny);
  float peak = 0;
  for (int j = 0; j < fig.ny; ++j) {
    for (int i = 0; i < fig.nx; ++i) {
      const double x = fig.xmin + (fig.xmax - fig.xmin) * i / (fig.nx - 1);
      const double y = fig.ymin + (fig.ymax - fig.ymin) * j / (fig.ny - 1);
      const double d = std::exp(-((x + 1) * (x + 1) + (y + 1) * (y + 1)) / 0.2) +
                       0.6 * std::exp(-((x - 1) * (x - 1) + (y - 0.8) * (y - 0.8)) / 0.3);
      fig.density[static_cast<size_t>(j) * fig.nx + i] = static_cast<float>(d);
      peak = std::max(peak, static_cast<float>(d));
    }
  }
  for (float& v : fig.density) v /= peak;
  return fig;
}

// Pixel position of data point (x, y), as documented for density_plot_area.
void to_pixel(const DensityFigure& fig, double x, double y, int* px, int* py) {
  const PixelRect r = density_plot_area(fig);
  *px = static_cast<int>(r.x0 + (x - fig.xmin) / (fig.xmax - fig.xmin) * (r.x1 - r.x0));
  *py = static_cast<int>(r.y0 + (fig.ymax - y) / (fig.ymax - fig.ymin) * (r.y1 - r.y0));
}

class FigureTest : public ::testing::Test {
 protected:
  void SetUp() override {
    const auto* info = ::testing::UnitTest::GetInstance()->current_test_info();
    dir_ = fs::temp_directory_path() /
           ("cuebm_figure_" + std::to_string(::getpid()) + "_" + info->name());
    fs::remove_all(dir_);
    fs::create_directories(dir_);
  }
  void TearDown() override { fs::remove_all(dir_); }

  std::string path(const std::string& name) const { return (dir_ / name).string(); }

  std::vector<std::string> listing() const {
    std::vector<std::string> names;
    for (const auto& e : fs::directory_iterator(dir_))
      names.push_back(e.path().filename().string());
    return names;
  }

  fs::path dir_;
};

TEST_F(FigureTest, DrawsContoursPointsLegendColourBarAndTitle) {
  DensityFigure fig = two_bumps();
  fig.samples = {0.0f, -2.0f, 10.0f, 10.0f, std::numeric_limits<float>::quiet_NaN(), 0.0f};
  fig.data = {-0.85f, -1.0f, -3.0f, 0.0f};
  const std::string p = path("fig.png");
  write_density_png(fig, p);
  EXPECT_EQ(listing(), std::vector<std::string>{"fig.png"});

  const Image img(p);
  ASSERT_TRUE(img.ok());
  EXPECT_EQ(img.width(), 800);
  EXPECT_EQ(img.height(), 700);
  const PixelRect r = density_plot_area(fig);
  ASSERT_LT(r.x0, r.x1);
  ASSERT_LT(r.y0, r.y1);
  ASSERT_LE(r.x1, img.width());
  ASSERT_LE(r.y1, img.height());

  int px = 0, py = 0;
  // The top of the highest bump has the top viridis colour; the second bump (0.6) is green-ish.
  to_pixel(fig, -1.0, -1.0, &px, &py);
  EXPECT_TRUE(near(img.at(px, py), kViridisHigh, 3)) << img.at(px, py);
  to_pixel(fig, 1.0, 0.8, &px, &py);
  const Rgb mid = img.at(px, py);
  EXPECT_TRUE(mid.g > 150 && mid.r < 150 && mid.b < 150) << mid;
  // Far corners are the lowest band.
  for (const auto& [x, y] : {std::pair{-2.4, 2.4}, std::pair{2.4, -2.4}, std::pair{-2.4, -2.4}}) {
    to_pixel(fig, x, y, &px, &py);
    EXPECT_TRUE(near(img.at(px, py), kViridisLow, 2)) << x << ", " << y << ": " << img.at(px, py);
  }
  // Band edges: the colours change in steps, so a row through the bump has few distinct colours.
  to_pixel(fig, -2.5, -1.0, &px, &py);
  int changes = 0;
  for (int x = r.x0 + 1; x < r.x1; ++x) {
    const Rgb a = img.at(x - 1, py), b = img.at(x, py);
    changes += (a.r != b.r || a.g != b.g || a.b != b.b) ? 1 : 0;
  }
  EXPECT_GE(changes, 19 * 2 - 4);
  EXPECT_LE(changes, 20 * 4);

  // The red sample at (0, -2) and the white data point at (-0.85, -1) on the light bump.
  to_pixel(fig, 0.0, -2.0, &px, &py);
  EXPECT_TRUE(is_red(img.at(px, py))) << img.at(px, py);
  EXPECT_GE(img.count(px - 2, py - 2, px + 3, py + 3, is_red), 9);
  to_pixel(fig, -0.85, -1.0, &px, &py);
  EXPECT_TRUE(near(img.at(px, py), {255, 255, 255}, 10)) << img.at(px, py);
  // A dark edge around the white dot: pixels near it much darker than the yellow-green band.
  EXPECT_GE(
      img.count(px - 4, py - 4, px + 5, py + 5, [](const Rgb& c) { return c.r + c.g + c.b < 330; }),
      4);

  // The legend box (light, upper right as no point is there) holds a red marker and dark text.
  const int lx0 = r.x1 - 200, ly0 = r.y0, lx1 = r.x1, ly1 = r.y0 + 80;
  EXPECT_GT(img.count(lx0, ly0, lx1, ly1,
                      [](const Rgb& c) { return c.r > 180 && c.g > 180 && c.b > 180; }),
            3000);
  EXPECT_GT(img.count(lx0, ly0, lx1, ly1, is_red), 10);
  EXPECT_GT(img.count(lx0, ly0, lx1, ly1, [](const Rgb& c) { return c.r + c.g + c.b < 150; }), 50);

  // The colour bar right of the axes: yellow at the top, dark purple at the bottom.
  const auto right_of_axes = [&](int y, const Rgb& colour) {
    return img.count(r.x1 + 5, y, img.width(), y + 1,
                     [&](const Rgb& c) { return near(c, colour, 3); });
  };
  EXPECT_GT(right_of_axes(r.y0 + 4, kViridisHigh), 10);
  EXPECT_GT(right_of_axes(r.y1 - 4, kViridisLow), 10);

  // Text: the title above the axes, tick labels below and left of them.
  const auto dark = [](const Rgb& c) { return c.r + c.g + c.b < 300; };
  EXPECT_GT(img.count(r.x0, 0, r.x1, r.y0 - 2, dark), 40);
  EXPECT_GT(img.count(r.x0, r.y1 + 8, r.x1, img.height(), dark), 40);
  EXPECT_GT(img.count(0, r.y0, r.x0 - 8, r.y1, dark), 40);

  // Without a title the region above the axes is blank.
  fig.title.clear();
  write_density_png(fig, p);
  const Image untitled(p);
  ASSERT_TRUE(untitled.ok());
  EXPECT_EQ(untitled.count(r.x0, 0, r.x1, r.y0 - 2, dark), 0);
}

TEST_F(FigureTest, HonoursImageSize) {
  DensityFigure fig = two_bumps();
  fig.width_px = 400;
  fig.height_px = 300;
  const std::string p = path("small.png");
  write_density_png(fig, p);
  const Image img(p);
  ASSERT_TRUE(img.ok());
  EXPECT_EQ(img.width(), 400);
  EXPECT_EQ(img.height(), 300);
  int px = 0, py = 0;
  to_pixel(fig, -1.0, -1.0, &px, &py);
  EXPECT_TRUE(near(img.at(px, py), kViridisHigh, 3)) << img.at(px, py);
}

TEST_F(FigureTest, MissingFolderThrowsAndLeavesNoFile) {
  const std::string p = path("no_such_dir/fig.png");
  try {
    write_density_png(two_bumps(), p);
    FAIL() << "no exception";
  } catch (const IoError& e) {
    const std::string msg = e.what();
    EXPECT_NE(msg.find(p), std::string::npos) << msg;
    EXPECT_NE(msg.find("No such file or directory"), std::string::npos) << msg;
  }
  EXPECT_FALSE(fs::exists(p));
  EXPECT_TRUE(listing().empty());

  // A directory where the file should go: the rename fails and the temporary file is removed.
  fs::create_directories(path("taken/child"));
  EXPECT_THROW(write_density_png(two_bumps(), path("taken")), IoError);
  EXPECT_EQ(listing(), std::vector<std::string>{"taken"});
}

TEST_F(FigureTest, RejectsBadArgumentsWithMessages) {
  const std::string p = path("bad.png");
  const auto expect_invalid = [&](const DensityFigure& fig, const std::string& needle) {
    try {
      write_density_png(fig, p);
      ADD_FAILURE() << "no exception for " << needle;
    } catch (const InvalidArgument& e) {
      EXPECT_NE(std::string(e.what()).find(needle), std::string::npos) << e.what();
    }
  };
  DensityFigure fig = two_bumps();
  fig.density.pop_back();
  expect_invalid(fig, "density has 8180 values, expected nx*ny = 101*81 = 8181");
  fig = two_bumps();
  fig.nx = 1;
  fig.density.resize(81);
  expect_invalid(fig, "nx and ny must be >= 2, got nx=1 ny=81");
  fig = two_bumps();
  fig.density[205] = std::numeric_limits<float>::infinity();
  expect_invalid(fig, "density[205] (i=3, j=2) is inf");
  fig = two_bumps();
  fig.density[7] = std::numeric_limits<float>::quiet_NaN();
  expect_invalid(fig, "density[7]");
  fig = two_bumps();
  fig.data = {1, 2, 3};
  expect_invalid(fig, "data has 3 values");
  fig = two_bumps();
  fig.samples = {1};
  expect_invalid(fig, "samples has 1 values");
  fig = two_bumps();
  fig.xmax = fig.xmin;
  expect_invalid(fig, "xmin=-2.5 xmax=-2.5");
  fig = two_bumps();
  fig.ymin = std::numeric_limits<double>::quiet_NaN();
  expect_invalid(fig, "ymin=nan");
  fig = two_bumps();
  fig.width_px = 50;
  expect_invalid(fig, "width_px must be in [200, 8192], got 50");
  fig = two_bumps();
  fig.height_px = 100000;
  expect_invalid(fig, "height_px must be in [150, 8192], got 100000");
  EXPECT_THROW(write_density_png(two_bumps(), ""), InvalidArgument);
  EXPECT_THROW(density_plot_area(fig), InvalidArgument);
  EXPECT_TRUE(listing().empty());
}

}  // namespace
}  // namespace cuebm
