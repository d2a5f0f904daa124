// Stand-ins for the tests of the optional parts a build leaves out (tests/CMakeLists.txt): each
// missing part gets a test that skips with the reason, and the library's behaviour without the
// part is checked where it has one.
#include <gtest/gtest.h>
#include <unistd.h>

#include <cstddef>
#include <filesystem>
#include <string>

#include "cuebm/io/figure.hpp"
#include "cuebm/runtime/error.hpp"

namespace cuebm {
namespace {

#if !CUEBM_TEST_HAVE_CAIRO
// Without cairo, write_density_png checks its arguments as usual, then throws InvalidArgument
// saying so, and writes nothing.
TEST(FigureTest, WithoutCairoWritingThrowsBuiltWithoutCairo) {
  DensityFigure fig;
  fig.density.assign(static_cast<std::size_t>(fig.nx) * static_cast<std::size_t>(fig.ny), 0.5f);
  const std::filesystem::path p = std::filesystem::temp_directory_path() /
                                  ("cuebm_no_cairo_" + std::to_string(::getpid()) + ".png");
  try {
    write_density_png(fig, p.string());
    ADD_FAILURE() << "write_density_png did not throw";
  } catch (const InvalidArgument& e) {
    EXPECT_NE(std::string(e.what()).find("built without cairo"), std::string::npos) << e.what();
  }
  EXPECT_FALSE(std::filesystem::exists(p));
  fig.density.resize(3);
  try {
    write_density_png(fig, p.string());
    ADD_FAILURE() << "write_density_png did not throw";
  } catch (const InvalidArgument& e) {
    EXPECT_NE(std::string(e.what()).find("density has 3 values"), std::string::npos) << e.what();
  }
  EXPECT_GT(density_plot_area(fig).x1, density_plot_area(fig).x0);
}

TEST(FigureTest, PixelTestsNeedCairo) {
  GTEST_SKIP() << "built without cairo: tests/test_figure.cpp (figures read back pixel by pixel) "
                  "is left out";
}
#endif

#if !CUEBM_TEST_HAVE_CLI
TEST(CliTest, NeedsTheCuebmCommand) {
  GTEST_SKIP() << "the cuebm command is not built (CLI11 not found): tests/test_cli.cpp is left "
                  "out";
}
#endif

}  // namespace
}  // namespace cuebm
