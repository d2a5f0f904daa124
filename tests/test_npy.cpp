// Tests of the .npy reader and writer: round trips, the exact header numpy writes, every error
// the reader reports, and interoperability with numpy when python3 has it.
#include "cuebm/io/npy.hpp"

#include <gtest/gtest.h>
#include <unistd.h>

#include <cmath>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <random>
#include <string>
#include <vector>

#include "cuebm/runtime/error.hpp"

namespace cuebm {
namespace {

namespace fs = std::filesystem;

class NpyTest : public ::testing::Test {
 protected:
  void SetUp() override {
    const auto* info = ::testing::UnitTest::GetInstance()->current_test_info();
    dir_ = fs::temp_directory_path() /
           ("cuebm_npy_" + std::to_string(::getpid()) + "_" + info->name());
    fs::remove_all(dir_);
    fs::create_directories(dir_);
  }
  void TearDown() override { fs::remove_all(dir_); }

  std::string path(const std::string& name) const { return (dir_ / name).string(); }

  std::string write_raw(const std::string& name, const std::string& bytes) const {
    const std::string p = path(name);
    std::ofstream out(p, std::ios::binary);
    out.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
    return p;
  }

  static std::string read_raw(const std::string& p) {
    std::ifstream in(p, std::ios::binary);
    return {std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
  }

  // Names of the files left in the test folder.
  std::vector<std::string> listing() const {
    std::vector<std::string> names;
    for (const auto& e : fs::directory_iterator(dir_))
      names.push_back(e.path().filename().string());
    return names;
  }

  fs::path dir_;
};

// A .npy file with the given version, header text (padded with spaces and '\n' to a multiple of
// 64 bytes unless pad is false) and data bytes.
std::string npy_bytes(int major, const std::string& dict, const std::string& data,
                      bool pad = true) {
  const size_t prefix = major == 1 ? 10 : 12;
  std::string header = dict;
  if (pad) {
    const size_t total = prefix + header.size() + 1;
    header.append((64 - total % 64) % 64, ' ');
    header += '\n';
  }
  std::string out("\x93NUMPY", 6);
  out += static_cast<char>(major);
  out += '\0';
  const size_t n = header.size();
  out += static_cast<char>(n & 0xff);
  out += static_cast<char>((n >> 8) & 0xff);
  if (major != 1) {
    out += static_cast<char>((n >> 16) & 0xff);
    out += static_cast<char>((n >> 24) & 0xff);
  }
  return out + header + data;
}

template <class T>
std::string value_bytes(const std::vector<T>& v) {
  return std::string(reinterpret_cast<const char*>(v.data()), v.size() * sizeof(T));
}

int64_t count_of(const std::vector<int64_t>& shape) {
  int64_t n = 1;
  for (int64_t d : shape) n *= d;
  return n;
}

// Fresh random values each run (the seed is printed when a check fails).
template <class T>
std::vector<T> random_values(size_t n, uint32_t seed) {
  std::mt19937 gen(seed);
  std::uniform_real_distribution<double> u(-1e3, 1e3);
  std::vector<T> v(n);
  for (auto& x : v) x = static_cast<T>(u(gen));
  return v;
}

const std::vector<std::vector<int64_t>> kShapes = {{}, {5}, {3, 4}, {2, 3, 4}, {0}, {2, 0, 3}};

TEST_F(NpyTest, RoundTripFloat32) {
  const uint32_t seed = std::random_device{}();
  SCOPED_TRACE("seed " + std::to_string(seed));
  for (const auto& shape : kShapes) {
    const auto values = random_values<float>(static_cast<size_t>(count_of(shape)), seed);
    const std::string p = path("f4.npy");
    write_npy(p, values.data(), shape);
    const NpyArray a = read_npy(p);
    EXPECT_EQ(a.shape, shape);
    EXPECT_EQ(a.data, values);
    std::vector<int64_t> shape64 = {99};
    const std::vector<double> d = read_npy_f64(p, &shape64);
    EXPECT_EQ(shape64, shape);
    ASSERT_EQ(d.size(), values.size());
    for (size_t i = 0; i < d.size(); ++i) EXPECT_EQ(d[i], static_cast<double>(values[i]));
    EXPECT_EQ(read_npy_f64(p, nullptr).size(), values.size());
  }
  EXPECT_EQ(listing().size(), 1u) << "a temporary file was left behind";
}

TEST_F(NpyTest, RoundTripFloat64) {
  const uint32_t seed = std::random_device{}();
  SCOPED_TRACE("seed " + std::to_string(seed));
  for (const auto& shape : kShapes) {
    auto values = random_values<double>(static_cast<size_t>(count_of(shape)), seed);
    if (!values.empty()) values[0] = 1e300;  // beyond float range
    const std::string p = path("f8.npy");
    write_npy(p, values.data(), shape);
    std::vector<int64_t> got_shape;
    EXPECT_EQ(read_npy_f64(p, &got_shape), values);
    EXPECT_EQ(got_shape, shape);
    const NpyArray a = read_npy(p);
    EXPECT_EQ(a.shape, shape);
    ASSERT_EQ(a.data.size(), values.size());
    for (size_t i = 0; i < values.size(); ++i) {
      EXPECT_EQ(a.data[i], static_cast<float>(values[i]));
    }
    if (!values.empty()) {
      EXPECT_TRUE(std::isinf(a.data[0]));
    }
  }
}

TEST_F(NpyTest, HeaderMatchesNumpyExactly) {
  const std::vector<float> values(12, 1.0f);
  const std::string p = path("h.npy");
  write_npy(p, values.data(), {3, 4});
  const std::string bytes = read_raw(p);
  // What numpy.save writes for np.ones((3, 4), np.float32) (numpy >= 1.24, with the spare
  // growth-axis spaces): 10 prefix bytes + 118 header bytes = 128.
  const std::string expected = std::string("\x93NUMPY\x01\x00\x76\x00", 10) +
                               "{'descr': '<f4', 'fortran_order': False, 'shape': (3, 4), }" +
                               std::string(58, ' ') + "\n";
  ASSERT_EQ(bytes.size(), 128u + 48u);
  EXPECT_EQ(bytes.substr(0, 128), expected);
  EXPECT_EQ(bytes.substr(128, 4), std::string("\x00\x00\x80\x3f", 4));  // 1.0f little-endian

  const double one = 1.0;
  write_npy(p, &one, {});
  const std::string scalar = read_raw(p);
  EXPECT_EQ(scalar.substr(0, 128), std::string("\x93NUMPY\x01\x00\x76\x00", 10) +
                                       "{'descr': '<f8', 'fortran_order': False, 'shape': (), }" +
                                       std::string(62, ' ') + "\n");
  EXPECT_EQ(scalar.size(), 136u);

  // Every shape gives a header ending in '\n' with the data aligned to 64 bytes.
  const std::vector<float> many(1 << 10, 0.0f);
  for (const auto& shape : std::vector<std::vector<int64_t>>{
           {5}, {1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1}, {1024}}) {
    write_npy(p, many.data(), shape);
    const std::string b = read_raw(p);
    const size_t hlen = static_cast<unsigned char>(b[8]) | static_cast<unsigned char>(b[9]) << 8;
    EXPECT_EQ((10 + hlen) % 64, 0u);
    EXPECT_EQ(b[10 + hlen - 1], '\n');
    EXPECT_EQ(b.size(), 10 + hlen + 4 * static_cast<size_t>(count_of(shape)));
  }
}

TEST_F(NpyTest, WriterRejectsBadArguments) {
  const std::vector<float> v(12, 0.0f);
  const std::string p = path("bad.npy");
  auto expect_invalid = [&](const std::vector<int64_t>& shape, const float* data,
                            const std::string& needle) {
    try {
      write_npy(p, data, shape);
      ADD_FAILURE() << "no exception for " << needle;
    } catch (const InvalidArgument& e) {
      EXPECT_NE(std::string(e.what()).find(needle), std::string::npos) << e.what();
    }
  };
  expect_invalid({-3, 4}, v.data(), "negative dimension -3 in shape (-3, 4)");
  expect_invalid({3, 4}, nullptr, "data is null");
  expect_invalid(std::vector<int64_t>(33, 1), v.data(), "33 dimensions");
  expect_invalid({int64_t{1} << 40, int64_t{1} << 40}, v.data(), "too many elements");
  EXPECT_FALSE(fs::exists(p));
  EXPECT_NO_THROW(write_npy(p, static_cast<const float*>(nullptr), {0, 3}));
}

TEST_F(NpyTest, WriterReportsMissingFolderAndLeavesNoFile) {
  const std::string p = path("no_such_dir/out.npy");
  const float x = 1.0f;
  try {
    write_npy(p, &x, {1});
    FAIL() << "no exception";
  } catch (const IoError& e) {
    const std::string msg = e.what();
    EXPECT_NE(msg.find(p), std::string::npos) << msg;
    EXPECT_NE(msg.find("No such file or directory"), std::string::npos) << msg;
  }
  EXPECT_TRUE(listing().empty());

  // A directory in the way: the rename fails and the temporary file is removed.
  fs::create_directory(path("taken"));
  fs::create_directory(path("taken/child"));
  EXPECT_THROW(write_npy(path("taken"), &x, {1}), IoError);
  EXPECT_EQ(listing(), std::vector<std::string>{"taken"});
}

TEST_F(NpyTest, WriterReplacesExistingFile) {
  const std::string p = write_raw("old.npy", "old contents");
  const float x[2] = {1.5f, -2.0f};
  write_npy(p, x, {2});
  EXPECT_EQ(read_npy(p).data, (std::vector<float>{1.5f, -2.0f}));
  EXPECT_EQ(listing(), std::vector<std::string>{"old.npy"});
}

TEST_F(NpyTest, ReaderParsesHeadersRobustly) {
  const std::vector<float> v12 = random_values<float>(12, 7);
  const std::string d12 = value_bytes(v12);
  struct Case {
    int major;
    std::string dict;
    std::vector<int64_t> shape;
  };
  const std::vector<Case> cases = {
      {1, "{'shape': (3, 4), 'fortran_order': False, 'descr': '<f4'}", {3, 4}},
      {1, "{\"descr\":\"<f4\",\"fortran_order\":False,\"shape\":(3,4)}", {3, 4}},
      {1, "  {  'descr' : '<f4' ,\t'fortran_order' : False , 'shape' : ( 3 , 4 , ) , }  ", {3, 4}},
      {1, "{'descr': '<f4', 'fortran_order': False, 'shape': (3L, 4L), }", {3, 4}},
      {1, "{'descr': '<f4', 'fortran_order': False, 'shape': (12,), }", {12}},
      {1, "{'descr': '<f4', 'fortran_order': False, 'shape': (2, 2, 3), }", {2, 2, 3}},
      {2, "{'descr': '<f4', 'fortran_order': False, 'shape': (3, 4), }", {3, 4}},
      {3, "{'descr': '<f4', 'fortran_order': False, 'shape': (3, 4), }", {3, 4}},
  };
  for (const Case& c : cases) {
    SCOPED_TRACE(c.dict);
    const NpyArray a = read_npy(write_raw("r.npy", npy_bytes(c.major, c.dict, d12)));
    EXPECT_EQ(a.shape, c.shape);
    EXPECT_EQ(a.data, v12);
  }
  // No padding at all, and a scalar.
  const NpyArray s = read_npy(
      write_raw("s.npy", npy_bytes(1, "{'descr': '<f4', 'fortran_order': False, 'shape': ()}",
                                   d12.substr(0, 4), false)));
  EXPECT_TRUE(s.shape.empty());
  EXPECT_EQ(s.data, std::vector<float>{v12[0]});
  // '<f8' converted to float32.
  const std::vector<double> v5 = {0.1, -2.5, 3e10, 0, 1};
  const NpyArray f = read_npy(write_raw(
      "f8.npy",
      npy_bytes(1, "{'descr': '<f8', 'fortran_order': False, 'shape': (5,), }", value_bytes(v5))));
  EXPECT_EQ(f.shape, std::vector<int64_t>{5});
  for (size_t i = 0; i < v5.size(); ++i) EXPECT_EQ(f.data[i], static_cast<float>(v5[i]));
}

TEST_F(NpyTest, ReaderReportsEveryProblem) {
  const std::string d48(48, '\0');
  const std::string good = "{'descr': '<f4', 'fortran_order': False, 'shape': (3, 4), }";
  struct Case {
    std::string name;
    std::string bytes;
    std::vector<std::string> needles;
  };
  std::string short_header = npy_bytes(1, good, "");
  short_header.resize(60);
  const std::vector<Case> cases = {
      {"empty", "", {"only 0 bytes"}},
      {"short", std::string("\x93NU", 3), {"only 3 bytes"}},
      {"magic", "PK\x03\x04 not an npy file at all", {"bad magic", "\\x50\\x4b\\x03\\x04"}},
      {"version4", npy_bytes(4, good, d48), {"unsupported .npy format version 4.0"}},
      {"version11",
       [&] {
         std::string b = npy_bytes(1, good, d48);
         b[7] = 1;
         return b;
       }(),
       {"version 1.1"}},
      {"lenfield", std::string("\x93NUMPY\x02\x00\x10", 9), {"truncated header length field"}},
      {"header_trunc", short_header, {"truncated header", "expected 118", "file has 50"}},
      {"list", npy_bytes(1, "[1, 2]", d48), {"not a valid dict", "[1, 2]"}},
      {"unclosed",
       npy_bytes(1, "{'descr': '<f4', 'fortran_order': False, 'shape': (3, 4)", d48),
       {"not a valid dict", "missing '}'"}},
      {"colon", npy_bytes(1, "{'descr' '<f4'}", d48), {"not a valid dict", "expected ':'"}},
      {"garbage", npy_bytes(1, good + " xyz", d48), {"unexpected text after the header dict"}},
      {"bareword", npy_bytes(1, "{'descr': f4}", d48), {"unexpected character 'f'"}},
      {"float",
       npy_bytes(1, "{'descr': '<f4', 'fortran_order': False, 'shape': (3.0, 4)}", d48),
       {"expected an integer"}},
      {"dupkey", npy_bytes(1, "{'descr': '<f4', 'descr': '<f4'}", d48), {"duplicate key 'descr'"}},
      {"nokey",
       npy_bytes(1, "{'descr': '<f4', 'fortran_order': False}", d48),
       {"missing key 'shape'"}},
      {"extrakey",
       npy_bytes(1, "{'descr': '<f4', 'fortran_order': False, 'shape': (3, 4), 'x': 1}", d48),
       {"unexpected key 'x'"}},
      {"int32",
       npy_bytes(1, "{'descr': '<i4', 'fortran_order': False, 'shape': (3, 4), }", d48),
       {"unsupported dtype '<i4'", "expected '<f4' or '<f8'"}},
      {"bigendian",
       npy_bytes(1, "{'descr': '>f4', 'fortran_order': False, 'shape': (3, 4), }", d48),
       {"unsupported dtype '>f4'"}},
      {"structured",
       npy_bytes(1, "{'descr': [('a', '<f4')], 'fortran_order': False, 'shape': (3, 4), }", d48),
       {"unsupported dtype [('a', '<f4')]"}},
      {"fortran",
       npy_bytes(1, "{'descr': '<f4', 'fortran_order': True, 'shape': (3, 4), }", d48),
       {"fortran_order is True"}},
      {"fortran_int",
       npy_bytes(1, "{'descr': '<f4', 'fortran_order': 0, 'shape': (3, 4), }", d48),
       {"fortran_order is 0"}},
      {"negative",
       npy_bytes(1, "{'descr': '<f4', 'fortran_order': False, 'shape': (-3, 4), }", d48),
       {"negative dimension -3 in shape (-3, 4)"}},
      {"overflow",
       npy_bytes(1, "{'descr': '<f4', 'fortran_order': False, 'shape': (4611686018427387904, 4), }",
                 d48),
       {"has too many elements"}},
      {"int64",
       npy_bytes(1, "{'descr': '<f4', 'fortran_order': False, 'shape': (99999999999999999999,)}",
                 d48),
       {"integer overflows int64"}},
      {"list_shape",
       npy_bytes(1, "{'descr': '<f4', 'fortran_order': False, 'shape': [3, 4], }", d48),
       {"shape [3, 4] is not a tuple of ints"}},
      {"paren_shape",
       npy_bytes(1, "{'descr': '<f4', 'fortran_order': False, 'shape': (12)}", d48),
       {"shape 12 is not a tuple of ints"}},
      {"truncated",
       npy_bytes(1, good, d48.substr(0, 40)),
       {"truncated data", "needs 48 bytes", "file has 40"}},
      {"truncated_f8",
       npy_bytes(1, "{'descr': '<f8', 'fortran_order': False, 'shape': (3, 4), }", d48),
       {"truncated data", "needs 96 bytes", "file has 48"}},
      {"trailing", npy_bytes(1, good, d48 + "extra"), {"5 unexpected trailing bytes"}},
  };
  for (const Case& c : cases) {
    SCOPED_TRACE(c.name);
    const std::string p = write_raw(c.name + ".npy", c.bytes);
    for (int f64 = 0; f64 < 2; ++f64) {
      try {
        if (f64 != 0) {
          read_npy_f64(p, nullptr);
        } else {
          read_npy(p);
        }
        ADD_FAILURE() << "no exception";
      } catch (const IoError& e) {
        const std::string msg = e.what();
        EXPECT_NE(msg.find(f64 != 0 ? "read_npy_f64: '" + p + "'" : "read_npy: '" + p + "'"),
                  std::string::npos)
            << msg;
        for (const std::string& needle : c.needles) {
          EXPECT_NE(msg.find(needle), std::string::npos) << "missing '" << needle << "' in " << msg;
        }
      }
    }
  }
}

TEST_F(NpyTest, ReaderReportsMissingFileAndDirectory) {
  const std::string missing = path("missing.npy");
  try {
    read_npy(missing);
    FAIL() << "no exception";
  } catch (const IoError& e) {
    EXPECT_NE(std::string(e.what()).find(missing), std::string::npos) << e.what();
    EXPECT_NE(std::string(e.what()).find("No such file or directory"), std::string::npos)
        << e.what();
  }
  try {
    read_npy(dir_.string());
    FAIL() << "no exception";
  } catch (const IoError& e) {
    EXPECT_NE(std::string(e.what()).find("is a directory"), std::string::npos) << e.what();
  }
}

// python3 (or $CUEBM_PYTHON) with numpy, or an empty string.
std::string python_with_numpy() {
  const char* env = std::getenv("CUEBM_PYTHON");
  // Debian's python3-numpy lives under /usr/bin/python3, which a python3 earlier on PATH
  // (pyenv, a venv) may hide.
  for (const std::string& python :
       {env != nullptr && *env != '\0' ? std::string(env) : std::string("python3"),
        std::string("/usr/bin/python3")}) {
    const std::string cmd = python + " -c 'import numpy' >/dev/null 2>&1";
    if (std::system(cmd.c_str()) == 0) return python;
  }
  return "";
}

TEST_F(NpyTest, InteroperatesWithNumpy) {
  const std::string python = python_with_numpy();
  if (python.empty()) GTEST_SKIP() << "python3 with numpy is not available";

  // numpy writes, we read.
  const std::string a = path("np_a.npy"), b = path("np_b.npy"), c = path("np_c.npy"),
                    f = path("np_f.npy");
  const std::string write_cmd = python +
                                " -c \"import numpy as np; "
                                "np.save('" +
                                a +
                                "', np.arange(24, dtype=np.float32).reshape(2, 3, 4) * 0.5 - 3); "
                                "np.save('" +
                                b +
                                "', np.linspace(-1, 1, 7)); "
                                "np.save('" +
                                c +
                                "', np.float32(2.5)); "
                                "np.save('" +
                                f + "', np.asfortranarray(np.ones((2, 3), np.float32)))\"";
  ASSERT_EQ(std::system(write_cmd.c_str()), 0) << write_cmd;
  const NpyArray ra = read_npy(a);
  EXPECT_EQ(ra.shape, (std::vector<int64_t>{2, 3, 4}));
  for (size_t i = 0; i < ra.data.size(); ++i) EXPECT_EQ(ra.data[i], 0.5f * i - 3.0f);
  std::vector<int64_t> shape_b;
  const std::vector<double> rb = read_npy_f64(b, &shape_b);
  EXPECT_EQ(shape_b, std::vector<int64_t>{7});
  for (size_t i = 0; i < rb.size(); ++i) EXPECT_NEAR(rb[i], -1.0 + i / 3.0, 1e-15);
  const NpyArray rc = read_npy(c);
  EXPECT_TRUE(rc.shape.empty());
  EXPECT_EQ(rc.data, std::vector<float>{2.5f});
  try {
    read_npy(f);
    ADD_FAILURE() << "fortran-order file accepted";
  } catch (const IoError& e) {
    EXPECT_NE(std::string(e.what()).find("fortran_order is True"), std::string::npos);
  }

  // We write, numpy reads and checks (exit status 0 when everything matches).
  std::vector<float> x(12);
  for (size_t i = 0; i < x.size(); ++i) x[i] = 0.25f * i - 1.0f;
  std::vector<double> y = {0.1, 0.2, -1e300, 4.0, 5.5};
  const double z = -7.25;
  const std::string px = path("ours_x.npy"), py = path("ours_y.npy"), pz = path("ours_z.npy");
  write_npy(px, x.data(), {3, 4});
  write_npy(py, y.data(), {5});
  write_npy(pz, &z, {});
  const std::string check_cmd =
      python +
      " -c \"import io, sys, numpy as np; "
      "x = np.load('" +
      px + "'); y = np.load('" + py + "'); z = np.load('" + pz +
      "'); "
      "ok = (x.dtype == np.float32 and x.shape == (3, 4) and "
      "np.array_equal(x, np.arange(12, dtype=np.float32).reshape(3, 4) * 0.25 - 1) and "
      "y.dtype == np.float64 and y.shape == (5,) and "
      "y.tolist() == [0.1, 0.2, -1e300, 4.0, 5.5] and "
      "z.dtype == np.float64 and z.shape == () and float(z) == -7.25); "
      // numpy >= 1.24 (which has GROWTH_AXIS_MAX_DIGITS) saves byte-identical files.
      "same = not hasattr(np.lib.format, 'GROWTH_AXIS_MAX_DIGITS') or all("
      "open(p, 'rb').read() == (lambda b: (np.save(b, a), b.getvalue())[1])(io.BytesIO())"
      " for p, a in [('" +
      px + "', x), ('" + py + "', y), ('" + pz +
      "', z)]); "
      "sys.exit(0 if ok and same else 1 if not ok else 2)\"";
  const int status = std::system(check_cmd.c_str());
  EXPECT_EQ(status, 0) << "exit status " << status << " (256: numpy read other values, 512: "
                       << "numpy.save writes different bytes) from " << check_cmd;
}

}  // namespace
}  // namespace cuebm
