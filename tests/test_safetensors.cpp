// Tests of safetensors files and MLP model files: bitwise round trips, widths inferred from
// shapes, every malformed-file error, no output on failure, and PyTorch interoperability.
#include "cuebm/io/safetensors.hpp"

#include <gtest/gtest.h>
#include <unistd.h>

#include <cmath>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <map>
#include <sstream>
#include <string>
#include <vector>

#include "cuebm/models/mlp.hpp"
#include "cuebm/runtime/error.hpp"

namespace cuebm {
namespace {

namespace fs = std::filesystem;

class SafetensorsTest : public ::testing::Test {
 protected:
  void SetUp() override {
    const auto* info = ::testing::UnitTest::GetInstance()->current_test_info();
    dir_ =
        fs::temp_directory_path() / ("cuebm_st_" + std::to_string(::getpid()) + "_" + info->name());
    fs::remove_all(dir_);
    fs::create_directories(dir_);
  }
  void TearDown() override { fs::remove_all(dir_); }

  std::string path(const std::string& name) const { return (dir_ / name).string(); }

  static std::string slurp(const std::string& p) {
    std::ifstream in(p, std::ios::binary);
    return {std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
  }
  std::string write_raw(const std::string& name, const std::string& bytes) const {
    const std::string p = path(name);
    std::ofstream(p, std::ios::binary) << bytes;
    return p;
  }
  // A file from a header text and data bytes.
  std::string craft(const std::string& name, const std::string& header,
                    const std::string& data) const {
    std::string bytes(8, '\0');
    const uint64_t n = header.size();
    std::memcpy(bytes.data(), &n, 8);
    return write_raw(name, bytes + header + data);
  }

  fs::path dir_;
};

// Expects `fn` to throw E with a message containing every one of `parts`.
template <typename E, typename Fn>
void expect_error(Fn&& fn, const std::vector<std::string>& parts) {
  try {
    fn();
    ADD_FAILURE() << "no exception; expected one mentioning " << parts.front();
  } catch (const E& e) {
    for (const std::string& p : parts)
      EXPECT_NE(std::string(e.what()).find(p), std::string::npos)
          << "message '" << e.what() << "' lacks '" << p << "'";
  }
}

Mlp make_model(Activation act = Activation::kSiLU, std::vector<int> hidden = {8, 6}) {
  MlpSpec spec;
  spec.input_dim = 2;
  spec.hidden = std::move(hidden);
  spec.activation = act;
  return Mlp(spec, 7);
}

std::vector<float> points(int64_t n, int dim) {
  std::vector<float> x(static_cast<std::size_t>(n * dim));
  for (std::size_t i = 0; i < x.size(); ++i)
    x[i] = static_cast<float>(std::sin(0.37 * static_cast<double>(i)) * 2.0);
  return x;
}

TEST_F(SafetensorsTest, ModelRoundTripIsBitwise) {
  const Mlp model = make_model();
  const std::string p = path("m.safetensors");
  save_mlp(p, model);
  const SafetensorsFile f = read_safetensors(p);
  EXPECT_EQ(f.metadata.at("format"), "pt");
  EXPECT_EQ(f.metadata.at("cuebm.widths"), "2,8,6,1");
  EXPECT_EQ(f.metadata.at("cuebm.activation"), "silu");
  ASSERT_EQ(f.tensors.size(), 6u);
  EXPECT_EQ(f.tensors[0].name, "network.0.weight");
  EXPECT_EQ(f.tensors[0].shape, (std::vector<int64_t>{8, 2}));
  EXPECT_EQ(f.tensors[5].name, "network.4.bias");
  // The header is padded to a multiple of 8 bytes, as safetensors writes it.
  const std::string bytes = slurp(p);
  uint64_t hlen = 0;
  std::memcpy(&hlen, bytes.data(), 8);
  EXPECT_EQ(hlen % 8, 0u);

  const Mlp back = load_mlp(p);
  EXPECT_EQ(back.layer_widths(), model.layer_widths());
  EXPECT_EQ(back.spec().activation, Activation::kSiLU);
  ASSERT_EQ(back.num_parameters(), model.num_parameters());
  EXPECT_EQ(std::memcmp(back.parameters().data(), model.parameters().data(),
                        model.num_parameters() * sizeof(float)),
            0);
  const auto x = points(37, 2);
  std::vector<float> e1(37), e2(37);
  model.energy(x.data(), 37, e1.data());
  back.energy(x.data(), 37, e2.data());
  EXPECT_EQ(std::memcmp(e1.data(), e2.data(), e1.size() * sizeof(float)), 0);
  // Writing the loaded model again gives the same bytes.
  save_mlp(path("m2.safetensors"), back);
  EXPECT_EQ(slurp(path("m2.safetensors")), bytes);
}

TEST_F(SafetensorsTest, GenericTensorsRoundTrip) {
  std::vector<NamedTensor> ts = {
      NamedTensor::from_f64("d", {2, 3}, {1, 2, 3, 4, 5, 1e300}),
      NamedTensor::from_f32("scalar", {}, {3.5f}),
      NamedTensor::from_f32("empty", {0, 4}, {}),
      NamedTensor::from_f32("v", {3}, {-0.0f, 1.5f, 7e-39f}),
  };
  write_safetensors(path("g.safetensors"), ts, {{"k", "v"}});
  const SafetensorsFile f = read_safetensors(path("g.safetensors"));
  EXPECT_EQ(f.metadata.at("k"), "v");
  ASSERT_EQ(f.tensors.size(), 4u);
  const NamedTensor* d = f.find("d");
  ASSERT_NE(d, nullptr);
  EXPECT_EQ(d->dtype, TensorDtype::kF64);
  EXPECT_EQ(d->f64, ts[0].f64);
  EXPECT_EQ(f.find("scalar")->f32, std::vector<float>{3.5f});
  EXPECT_TRUE(f.find("scalar")->shape.empty());
  EXPECT_EQ(f.find("empty")->shape, (std::vector<int64_t>{0, 4}));
  EXPECT_EQ(std::memcmp(f.find("v")->f32.data(), ts[3].f32.data(), 12), 0);
}

TEST_F(SafetensorsTest, WidthsInferredWithoutMetadataActivationFromFlag) {
  const Mlp model = make_model(Activation::kTanh, {5, 4, 3});
  write_safetensors(path("plain.safetensors"), mlp_state_dict(model), {{"format", "pt"}});
  const Mlp back = load_mlp(path("plain.safetensors"), Activation::kTanh);
  EXPECT_EQ(back.layer_widths(), (std::vector<int>{2, 5, 4, 3, 1}));
  EXPECT_EQ(std::memcmp(back.parameters().data(), model.parameters().data(),
                        model.num_parameters() * sizeof(float)),
            0);
  expect_error<InvalidArgument>([&] { load_mlp(path("plain.safetensors")); },
                                {"plain.safetensors", "records no activation", "--activation"});
  // Metadata and an explicit activation that disagree.
  save_mlp(path("meta.safetensors"), model);
  expect_error<InvalidArgument>([&] { load_mlp(path("meta.safetensors"), Activation::kReLU); },
                                {"meta.safetensors", "tanh", "relu"});
  EXPECT_NO_THROW(load_mlp(path("meta.safetensors"), Activation::kTanh));
}

TEST_F(SafetensorsTest, BareSequentialNamesAccepted) {
  const Mlp model = make_model();
  std::vector<NamedTensor> ts = mlp_state_dict(model);
  for (NamedTensor& t : ts) t.name = t.name.substr(8);  // "0.weight", ...
  write_safetensors(path("bare.safetensors"), ts);
  const Mlp back = load_mlp(path("bare.safetensors"), Activation::kSiLU);
  EXPECT_EQ(std::memcmp(back.parameters().data(), model.parameters().data(),
                        model.num_parameters() * sizeof(float)),
            0);
}

TEST_F(SafetensorsTest, F64ParametersRoundedToFloat) {
  const Mlp model = make_model();
  std::vector<NamedTensor> ts;
  for (const NamedTensor& t : mlp_state_dict(model))
    ts.push_back(NamedTensor::from_f64(t.name, t.shape, {t.f32.begin(), t.f32.end()}));
  write_safetensors(path("d.safetensors"), ts, mlp_metadata(model));
  const Mlp back = load_mlp(path("d.safetensors"));
  EXPECT_EQ(std::memcmp(back.parameters().data(), model.parameters().data(),
                        model.num_parameters() * sizeof(float)),
            0);
}

TEST_F(SafetensorsTest, TruncatedFiles) {
  save_mlp(path("m.safetensors"), make_model());
  const std::string bytes = slurp(path("m.safetensors"));
  write_raw("short.safetensors", bytes.substr(0, 5));
  expect_error<IoError>([&] { read_safetensors(path("short.safetensors")); },
                        {"short.safetensors", "truncated"});
  write_raw("cut.safetensors", bytes.substr(0, bytes.size() - 10));
  expect_error<IoError>([&] { load_mlp(path("cut.safetensors")); },
                        {"cut.safetensors", "network.4.bias", "out of range"});
  write_raw("cuthdr.safetensors", bytes.substr(0, 40));
  expect_error<IoError>([&] { read_safetensors(path("cuthdr.safetensors")); },
                        {"cuthdr.safetensors", "header length"});
  write_raw("empty.safetensors", "");
  expect_error<IoError>([&] { read_safetensors(path("empty.safetensors")); },
                        {"empty.safetensors", "truncated"});
  expect_error<IoError>([&] { read_safetensors(path("absent.safetensors")); },
                        {"absent.safetensors", "cannot open"});
}

TEST_F(SafetensorsTest, HeaderLengthLargerThanFile) {
  save_mlp(path("m.safetensors"), make_model());
  std::string bytes = slurp(path("m.safetensors"));
  const uint64_t lie = bytes.size() + 100;
  std::memcpy(bytes.data(), &lie, 8);
  write_raw("lie.safetensors", bytes);
  expect_error<IoError>([&] { read_safetensors(path("lie.safetensors")); },
                        {"lie.safetensors", "header length", "larger than"});
  const uint64_t huge = uint64_t{1} << 60;
  std::memcpy(bytes.data(), &huge, 8);
  write_raw("huge.safetensors", bytes);
  expect_error<IoError>([&] { read_safetensors(path("huge.safetensors")); },
                        {"huge.safetensors", "header length"});
}

TEST_F(SafetensorsTest, MalformedHeaders) {
  const std::string data(16, '\0');
  struct Case {
    std::string header, data;
    std::vector<std::string> parts;
  };
  const std::vector<Case> cases = {
      {"{not json", data, {"not valid JSON"}},
      {"[1, 2]", "", {"not a JSON object"}},
      {R"({"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},)"
       R"("b":{"dtype":"F32","shape":[2],"data_offsets":[4,12]}})",
       std::string(12, '\0'),
       {"'a'", "'b'", "overlap"}},
      {R"({"a":{"dtype":"F32","shape":[4],"data_offsets":[8,24]}})", data, {"'a'", "out of range"}},
      {R"({"a":{"dtype":"F32","shape":[2],"data_offsets":[8,16]}})", data, {"hole", "'a'"}},
      {R"({"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]}})", data, {"trailing bytes"}},
      {R"({"a":{"dtype":"F16","shape":[8],"data_offsets":[0,16]}})",
       data,
       {"'a'", "dtype F16", "F32 and F64"}},
      {R"({"a":{"dtype":"I64","shape":[2],"data_offsets":[0,16]}})", data, {"dtype I64"}},
      {R"({"a":{"dtype":"F32","shape":[3],"data_offsets":[0,16]}})", data, {"'a'", "needs 12"}},
      {R"({"a":{"dtype":"F32","shape":[-4],"data_offsets":[0,16]}})", data, {"not a dimension"}},
      {R"({"a":{"dtype":"F32","shape":[4],"data_offsets":[16,0]}})", data, {"end before"}},
      {R"({"a":{"dtype":"F32","shape":[4]}})", data, {"needs dtype, shape and data_offsets"}},
      {R"({"a":{"dtype":"F32","shape":[4],"data_offsets":[0,16]},)"
       R"("a":{"dtype":"F32","shape":[4],"data_offsets":[0,16]}})",
       data,
       {"'a'", "twice"}},
      {R"({"__metadata__":{"k":3},"a":{"dtype":"F32","shape":[4],"data_offsets":[0,16]}})",
       data,
       {"metadata", "'k'", "not a string"}},
  };
  int i = 0;
  for (const Case& c : cases) {
    const std::string name = "bad" + std::to_string(i++) + ".safetensors";
    SCOPED_TRACE(c.header);
    craft(name, c.header, c.data);
    std::vector<std::string> parts = c.parts;
    parts.push_back(name);
    expect_error<IoError>([&] { read_safetensors(path(name)); }, parts);
  }
}

TEST_F(SafetensorsTest, ModelFileProblemsNameTheTensor) {
  const Mlp model = make_model();
  // Shape mismatch against the metadata's widths.
  std::vector<NamedTensor> ts = mlp_state_dict(model);
  std::map<std::string, std::string> meta = mlp_metadata(model);
  meta["cuebm.widths"] = "2,8,5,1";
  write_safetensors(path("shape.safetensors"), ts, meta);
  expect_error<IoError>([&] { load_mlp(path("shape.safetensors")); },
                        {"shape.safetensors", "network.2.weight", "[6, 8]", "2,8,5,1", "[5, 8]"});
  // Unknown and missing tensors.
  ts = mlp_state_dict(model);
  ts.push_back(NamedTensor::from_f32("network.0.running_mean", {8}, std::vector<float>(8)));
  write_safetensors(path("extra.safetensors"), ts, mlp_metadata(model));
  expect_error<IoError>([&] { load_mlp(path("extra.safetensors")); },
                        {"extra.safetensors", "unexpected tensor 'network.0.running_mean'"});
  ts = mlp_state_dict(model);
  ts.push_back(NamedTensor::from_f32("network.6.weight", {1, 1}, {0.0f}));
  write_safetensors(path("extra2.safetensors"), ts, mlp_metadata(model));
  expect_error<IoError>([&] { load_mlp(path("extra2.safetensors")); },
                        {"extra2.safetensors", "unexpected tensor 'network.6.weight'"});
  ts = mlp_state_dict(model);
  ts.erase(ts.begin() + 3);  // network.2.bias
  write_safetensors(path("missing.safetensors"), ts, mlp_metadata(model));
  expect_error<IoError>([&] { load_mlp(path("missing.safetensors")); },
                        {"missing.safetensors", "missing tensor 'network.2.bias'"});
  // Without metadata, inconsistent shapes.
  ts = mlp_state_dict(model);
  ts[2].shape = {6, 7};
  ts[2].f32.resize(42);
  write_safetensors(path("chain.safetensors"), ts, {});
  expect_error<IoError>([&] { load_mlp(path("chain.safetensors"), Activation::kReLU); },
                        {"chain.safetensors", "network.2.weight", "[6, 7]", "8 outputs"});
  // A gap in the layer indices.
  ts = mlp_state_dict(model);
  ts[2].name = "network.3.weight";
  write_safetensors(path("gap.safetensors"), ts, {});
  expect_error<IoError>([&] { load_mlp(path("gap.safetensors"), Activation::kReLU); },
                        {"gap.safetensors", "missing tensor 'network.2.weight'"});
  // Bad metadata values and non-finite parameters.
  meta = mlp_metadata(model);
  meta["cuebm.activation"] = "swish";
  write_safetensors(path("act.safetensors"), mlp_state_dict(model), meta);
  expect_error<IoError>([&] { load_mlp(path("act.safetensors")); }, {"act.safetensors", "swish"});
  meta = mlp_metadata(model);
  meta["cuebm.widths"] = "2,x,1";
  write_safetensors(path("w.safetensors"), mlp_state_dict(model), meta);
  expect_error<IoError>([&] { load_mlp(path("w.safetensors")); }, {"w.safetensors", "2,x,1"});
  ts = mlp_state_dict(model);
  ts[1].f32[3] = NAN;
  write_safetensors(path("nan.safetensors"), ts, mlp_metadata(model));
  expect_error<IoError>([&] { load_mlp(path("nan.safetensors")); },
                        {"nan.safetensors", "network.0.bias", "non-finite"});
}

TEST_F(SafetensorsTest, NothingWrittenOnFailure) {
  const std::string p = path("out.safetensors");
  expect_error<InvalidArgument>(
      [&] {
        write_safetensors(p, {NamedTensor::from_f32("a", {2, 2}, {1, 2, 3})});
      },
      {"out.safetensors", "'a'", "3 values"});
  EXPECT_FALSE(fs::exists(p));
  expect_error<InvalidArgument>(
      [&] {
        write_safetensors(
            p, {NamedTensor::from_f32("a", {1}, {1}), NamedTensor::from_f32("a", {1}, {2})});
      },
      {"'a'", "twice"});
  EXPECT_FALSE(fs::exists(p));
  const std::string q = path("no/such/dir/m.safetensors");
  expect_error<IoError>([&] { save_mlp(q, make_model()); }, {"m.safetensors"});
  EXPECT_FALSE(fs::exists(q));
  // A failed write leaves an existing file untouched, and no temporary file behind.
  save_mlp(p, make_model());
  const std::string before = slurp(p);
  EXPECT_THROW(write_safetensors(p, {NamedTensor::from_f32("", {1}, {1})}), InvalidArgument);
  EXPECT_EQ(slurp(p), before);
  int files = 0;
  for (const auto& entry : fs::directory_iterator(dir_)) {
    (void)entry;
    ++files;
  }
  EXPECT_EQ(files, 1);
}

// A state_dict written in PyTorch loads in cuEBM with the same energies, and the reverse.
TEST_F(SafetensorsTest, PyTorchInterop) {
  if (std::system("/usr/bin/python3 -c 'import torch' >/dev/null 2>&1") != 0)
    GTEST_SKIP() << "python3 with torch is not available";
  // Cuebm's model for the reverse direction.
  const Mlp ours = make_model(Activation::kGELU, {16, 8});
  save_mlp(path("ours.safetensors"), ours);
  const std::vector<float> x = points(64, 2);
  {
    std::ofstream f(path("points.txt"));
    f.precision(9);
    for (float v : x) f << v << "\n";
  }
  const std::string script = R"PY(
import json, struct, sys
import torch
torch.manual_seed(0)
d = sys.argv[1]
class MLPEnergy(torch.nn.Module):
    def __init__(self, widths, act):
        super().__init__()
        layers = []
        for i in range(len(widths) - 1):
            layers.append(torch.nn.Linear(widths[i], widths[i + 1]))
            if i < len(widths) - 2:
                layers.append(act())
        self.network = torch.nn.Sequential(*layers)
    def forward(self, x):
        return self.network(x).squeeze(-1)
def save(state, path):
    try:
        from safetensors.torch import save_file
        save_file({k: v.contiguous() for k, v in state.items()}, path, metadata={"format": "pt"})
        return
    except ImportError:
        pass
    header, blobs, off = {"__metadata__": {"format": "pt"}}, [], 0
    for k, v in state.items():
        vals = v.detach().contiguous().flatten().tolist()
        b = struct.pack("<%df" % len(vals), *vals)
        header[k] = {"dtype": "F32", "shape": list(v.shape), "data_offsets": [off, off + len(b)]}
        blobs.append(b)
        off += len(b)
    h = json.dumps(header).encode()
    h += b" " * ((8 - len(h) % 8) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(h)) + h + b"".join(blobs))
def load(path):
    data = open(path, "rb").read()
    n = struct.unpack("<Q", data[:8])[0]
    header = json.loads(data[8:8 + n])
    meta = header.pop("__metadata__", {})
    out = {}
    for k, e in header.items():
        assert e["dtype"] == "F32"
        b, en = e["data_offsets"]
        cnt = (en - b) // 4
        vals = struct.unpack("<%df" % cnt, data[8 + n + b:8 + n + en])
        out[k] = torch.tensor(vals, dtype=torch.float32).reshape(e["shape"])
    return out, meta
pts = [float(l) for l in open(d + "/points.txt")]
x = torch.tensor(pts, dtype=torch.float32).reshape(-1, 2)
theirs = MLPEnergy([2, 32, 16, 1], torch.nn.SiLU)
save(theirs.state_dict(), d + "/theirs.safetensors")
with torch.no_grad():
    e = theirs(x)
open(d + "/theirs_energy.txt", "w").write("\n".join("%.9e" % v for v in e.tolist()))
state, meta = load(d + "/ours.safetensors")
widths = [int(w) for w in meta["cuebm.widths"].split(",")]
assert meta["cuebm.activation"] == "gelu"
ours = MLPEnergy(widths, torch.nn.GELU)
ours.load_state_dict(state, strict=True)
with torch.no_grad():
    e = ours(x)
open(d + "/ours_energy.txt", "w").write("\n".join("%.9e" % v for v in e.tolist()))
)PY";
  { std::ofstream(path("interop.py")) << script; }
  const std::string cmd = "/usr/bin/python3 " + path("interop.py") + " " + dir_.string();
  ASSERT_EQ(std::system(cmd.c_str()), 0) << cmd;
  const auto read_values = [&](const std::string& name) {
    std::ifstream f(path(name));
    std::vector<double> v;
    double d = 0;
    while (f >> d) v.push_back(d);
    return v;
  };
  // PyTorch -> cuEBM: no cuebm metadata, widths from the shapes, activation given.
  const Mlp theirs = load_mlp(path("theirs.safetensors"), Activation::kSiLU);
  EXPECT_EQ(theirs.layer_widths(), (std::vector<int>{2, 32, 16, 1}));
  const std::vector<double> torch_e = read_values("theirs_energy.txt");
  ASSERT_EQ(torch_e.size(), 64u);
  std::vector<float> e(64);
  theirs.energy(x.data(), 64, e.data());
  for (int i = 0; i < 64; ++i) EXPECT_NEAR(e[i], torch_e[i], 1e-5) << "point " << i;
  // cuEBM -> PyTorch (load_state_dict strict).
  const std::vector<double> torch_ours = read_values("ours_energy.txt");
  ASSERT_EQ(torch_ours.size(), 64u);
  ours.energy(x.data(), 64, e.data());
  for (int i = 0; i < 64; ++i) EXPECT_NEAR(e[i], torch_ours[i], 1e-5) << "point " << i;
}

}  // namespace
}  // namespace cuebm
