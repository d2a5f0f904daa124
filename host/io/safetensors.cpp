// safetensors reader and writer, and MLP model files; see include/cuebm/io/safetensors.hpp.
#include "cuebm/io/safetensors.hpp"

#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <bit>
#include <cerrno>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <limits>
#include <nlohmann/json.hpp>
#include <set>
#include <sstream>

#include "cuebm/runtime/error.hpp"
#include "host/runtime/names.hpp"

namespace cuebm {
namespace {

static_assert(std::endian::native == std::endian::little,
              "the safetensors code reads and writes host memory as little-endian");

constexpr uint64_t kMaxHeader = 100'000'000;  // the reference implementation's limit

[[noreturn]] void fail(const std::string& path, const std::string& what) {
  throw IoError("safetensors file '" + path + "': " + what);
}

std::string shape_text(const std::vector<int64_t>& shape) {
  std::string s = "[";
  for (std::size_t i = 0; i < shape.size(); ++i) {
    if (i) s += ", ";
    s += std::to_string(shape[i]);
  }
  return s + "]";
}

std::size_t dtype_size(TensorDtype d) { return d == TensorDtype::kF32 ? 4 : 8; }
const char* dtype_name(TensorDtype d) { return d == TensorDtype::kF32 ? "F32" : "F64"; }

// Element count, or -1 on overflow beyond 2^62.
int64_t checked_numel(const std::vector<int64_t>& shape) {
  int64_t n = 1;
  for (int64_t d : shape) {
    if (d < 0) return -1;
    if (d == 0) return 0;
  }
  for (int64_t d : shape) {
    if (n > (int64_t{1} << 62) / d) return -1;
    n *= d;
  }
  return n;
}

std::string read_whole_file(const std::string& path) {
  struct stat st {};
  if (::stat(path.c_str(), &st) != 0)
    fail(path, std::string("cannot open: ") + std::strerror(errno));
  if (!S_ISREG(st.st_mode)) fail(path, "not a regular file");
  std::ifstream in(path, std::ios::binary);
  if (!in) fail(path, std::string("cannot open: ") + std::strerror(errno));
  std::string bytes(static_cast<std::size_t>(st.st_size), '\0');
  in.read(bytes.data(), static_cast<std::streamsize>(bytes.size()));
  if (in.gcount() != static_cast<std::streamsize>(bytes.size())) fail(path, "read failed");
  return bytes;
}

void write_file_atomic(const std::string& path, const std::string& bytes) {
  const std::string tmp = path + ".tmp-" + std::to_string(static_cast<long long>(::getpid()));
  FILE* f = std::fopen(tmp.c_str(), "wb");
  if (f == nullptr)
    throw IoError("safetensors file '" + path + "': cannot create temporary file '" + tmp +
                  "': " + std::strerror(errno));
  int err = 0;
  if (std::fwrite(bytes.data(), 1, bytes.size(), f) != bytes.size()) err = errno ? errno : EIO;
  if (err == 0 && std::fflush(f) != 0) err = errno;
  if (std::fclose(f) != 0 && err == 0) err = errno;
  if (err != 0) {
    std::remove(tmp.c_str());
    throw IoError("safetensors file '" + path + "': writing '" + tmp +
                  "' failed: " + std::strerror(err));
  }
  if (std::rename(tmp.c_str(), path.c_str()) != 0) {
    err = errno;
    std::remove(tmp.c_str());
    throw IoError("safetensors file '" + path + "': cannot rename '" + tmp +
                  "' to it: " + std::strerror(err));
  }
}

bool json_uint(const nlohmann::json& j, uint64_t* v) {
  if (!j.is_number_unsigned()) return false;
  *v = j.get<uint64_t>();
  return true;
}

struct Entry {
  std::string name;
  TensorDtype dtype;
  std::vector<int64_t> shape;
  uint64_t begin, end;
};

}  // namespace

NamedTensor NamedTensor::from_f32(std::string name, std::vector<int64_t> shape,
                                  std::vector<float> values) {
  NamedTensor t;
  t.name = std::move(name);
  t.shape = std::move(shape);
  t.f32 = std::move(values);
  return t;
}

NamedTensor NamedTensor::from_f64(std::string name, std::vector<int64_t> shape,
                                  std::vector<double> values) {
  NamedTensor t;
  t.name = std::move(name);
  t.dtype = TensorDtype::kF64;
  t.shape = std::move(shape);
  t.f64 = std::move(values);
  return t;
}

int64_t NamedTensor::numel() const { return checked_numel(shape); }

const NamedTensor* SafetensorsFile::find(const std::string& name) const {
  for (const NamedTensor& t : tensors)
    if (t.name == name) return &t;
  return nullptr;
}

SafetensorsFile read_safetensors(const std::string& path) {
  const std::string bytes = read_whole_file(path);
  if (bytes.size() < 8)
    fail(path, "truncated: " + std::to_string(bytes.size()) +
                   " bytes, shorter than the 8-byte header length");
  uint64_t header_len = 0;
  std::memcpy(&header_len, bytes.data(), 8);
  if (header_len > kMaxHeader)
    fail(path, "header length " + std::to_string(header_len) + " is larger than the limit of " +
                   std::to_string(kMaxHeader) + " bytes (corrupt or not a safetensors file)");
  if (header_len > bytes.size() - 8)
    fail(path, "header length " + std::to_string(header_len) + " is larger than the " +
                   std::to_string(bytes.size() - 8) +
                   " bytes that follow it (truncated or corrupt file)");
  const std::string_view header(bytes.data() + 8, header_len);
  const std::size_t data_size = bytes.size() - 8 - header_len;
  const char* data = bytes.data() + 8 + header_len;

  std::set<std::string> seen;
  std::string duplicate;
  const nlohmann::json::parser_callback_t on_event =
      [&](int depth, nlohmann::json::parse_event_t event, nlohmann::json& parsed) {
        if (event == nlohmann::json::parse_event_t::key && depth == 1 && parsed.is_string() &&
            !seen.insert(parsed.get<std::string>()).second && duplicate.empty())
          duplicate = parsed.get<std::string>();
        return true;
      };
  const nlohmann::json j = nlohmann::json::parse(header, on_event, false);
  if (j.is_discarded()) fail(path, "the header is not valid JSON");
  if (!j.is_object()) fail(path, "the header is not a JSON object");
  if (!duplicate.empty()) fail(path, "tensor '" + duplicate + "' appears twice in the header");

  SafetensorsFile out;
  std::vector<Entry> entries;
  for (const auto& [name, v] : j.items()) {
    if (name == "__metadata__") {
      if (!v.is_object()) fail(path, "__metadata__ is not an object");
      for (const auto& [key, value] : v.items()) {
        if (!value.is_string()) fail(path, "metadata value of '" + key + "' is not a string");
        out.metadata[key] = value.get<std::string>();
      }
      continue;
    }
    const std::string where = "tensor '" + name + "'";
    if (!v.is_object() || !v.contains("dtype") || !v.contains("shape") ||
        !v.contains("data_offsets"))
      fail(path, where + ": needs dtype, shape and data_offsets");
    if (!v["dtype"].is_string()) fail(path, where + ": dtype is not a string");
    const std::string dtype = v["dtype"].get<std::string>();
    Entry e{name, TensorDtype::kF32, {}, 0, 0};
    if (dtype == "F32") {
      e.dtype = TensorDtype::kF32;
    } else if (dtype == "F64") {
      e.dtype = TensorDtype::kF64;
    } else {
      fail(path, where + " has dtype " + dtype + "; only F32 and F64 are supported");
    }
    if (!v["shape"].is_array()) fail(path, where + ": shape is not a list");
    for (const auto& d : v["shape"]) {
      uint64_t u = 0;
      if (!json_uint(d, &u) || u > (uint64_t{1} << 62))
        fail(path, where + ": shape holds " + d.dump() + ", not a dimension");
      e.shape.push_back(static_cast<int64_t>(u));
    }
    const auto& off = v["data_offsets"];
    if (!off.is_array() || off.size() != 2 || !json_uint(off[0], &e.begin) ||
        !json_uint(off[1], &e.end))
      fail(path, where + ": data_offsets is not a pair of byte offsets");
    if (e.begin > e.end)
      fail(path, where + ": data_offsets [" + std::to_string(e.begin) + ", " +
                     std::to_string(e.end) + "] end before they begin");
    if (e.end > data_size)
      fail(path, where + ": data_offsets [" + std::to_string(e.begin) + ", " +
                     std::to_string(e.end) + "] are out of range: the data holds " +
                     std::to_string(data_size) + " bytes (truncated or corrupt file)");
    const int64_t n = checked_numel(e.shape);
    if (n < 0) fail(path, where + ": shape " + shape_text(e.shape) + " is too large");
    const uint64_t want = static_cast<uint64_t>(n) * dtype_size(e.dtype);
    if (e.end - e.begin != want)
      fail(path, where + ": data_offsets span " + std::to_string(e.end - e.begin) + " bytes but " +
                     dtype + " " + shape_text(e.shape) + " needs " + std::to_string(want));
    entries.push_back(std::move(e));
  }
  std::stable_sort(entries.begin(), entries.end(),
                   [](const Entry& a, const Entry& b) { return a.begin < b.begin; });
  uint64_t expected = 0;
  const Entry* prev = nullptr;
  for (const Entry& e : entries) {
    if (e.begin < expected)
      fail(path, "tensors '" + prev->name + "' and '" + e.name + "' overlap (data_offsets)");
    if (e.begin > expected)
      fail(path, "bytes " + std::to_string(expected) + ".." + std::to_string(e.begin) +
                     " of the data belong to no tensor (a hole before '" + e.name + "')");
    expected = e.end;
    prev = &e;
  }
  if (expected != data_size)
    fail(path,
         std::to_string(data_size - expected) + " trailing bytes after the last tensor's data");

  for (const Entry& e : entries) {
    NamedTensor t;
    t.name = e.name;
    t.dtype = e.dtype;
    t.shape = e.shape;
    const std::size_t n = (e.end - e.begin) / dtype_size(e.dtype);
    if (e.dtype == TensorDtype::kF32) {
      t.f32.resize(n);
      if (n) std::memcpy(t.f32.data(), data + e.begin, n * 4);
    } else {
      t.f64.resize(n);
      if (n) std::memcpy(t.f64.data(), data + e.begin, n * 8);
    }
    out.tensors.push_back(std::move(t));
  }
  return out;
}

void write_safetensors(const std::string& path, const std::vector<NamedTensor>& tensors,
                       const std::map<std::string, std::string>& metadata) {
  nlohmann::ordered_json header = nlohmann::ordered_json::object();
  if (!metadata.empty()) {
    nlohmann::ordered_json meta = nlohmann::ordered_json::object();
    for (const auto& [k, v] : metadata) meta[k] = v;
    header["__metadata__"] = meta;
  }
  std::set<std::string> names;
  uint64_t offset = 0;
  for (const NamedTensor& t : tensors) {
    const std::string where = "write_safetensors: '" + path + "': tensor '" + t.name + "'";
    if (t.name.empty() || t.name == "__metadata__")
      throw InvalidArgument("write_safetensors: '" + path + "': invalid tensor name '" + t.name +
                            "'");
    if (!names.insert(t.name).second) throw InvalidArgument(where + " appears twice");
    const int64_t n = checked_numel(t.shape);
    if (n < 0) throw InvalidArgument(where + ": invalid shape " + shape_text(t.shape));
    const std::size_t have = t.dtype == TensorDtype::kF32 ? t.f32.size() : t.f64.size();
    if (have != static_cast<std::size_t>(n))
      throw InvalidArgument(where + ": " + std::to_string(have) + " values for shape " +
                            shape_text(t.shape));
    const uint64_t nbytes = static_cast<uint64_t>(n) * dtype_size(t.dtype);
    header[t.name] = {{"dtype", dtype_name(t.dtype)},
                      {"shape", t.shape},
                      {"data_offsets", {offset, offset + nbytes}}};
    offset += nbytes;
  }
  std::string text = header.dump();
  text.append((8 - text.size() % 8) % 8, ' ');
  std::string bytes(8, '\0');
  const uint64_t len = text.size();
  std::memcpy(bytes.data(), &len, 8);
  bytes += text;
  bytes.reserve(bytes.size() + offset);
  for (const NamedTensor& t : tensors) {
    if (t.dtype == TensorDtype::kF32)
      bytes.append(reinterpret_cast<const char*>(t.f32.data()), t.f32.size() * 4);
    else
      bytes.append(reinterpret_cast<const char*>(t.f64.data()), t.f64.size() * 8);
  }
  write_file_atomic(path, bytes);
}

// --- MLP model files -------------------------------------------------------------------------

std::vector<NamedTensor> mlp_state_dict(const Mlp& model) {
  std::vector<NamedTensor> out;
  const auto params = model.parameters();
  for (const ParameterInfo& p : model.parameter_info())
    out.push_back(NamedTensor::from_f32(
        p.name, p.shape,
        std::vector<float>(params.begin() + static_cast<std::ptrdiff_t>(p.offset),
                           params.begin() + static_cast<std::ptrdiff_t>(p.offset + p.size))));
  return out;
}

std::map<std::string, std::string> mlp_metadata(const Mlp& model) {
  std::string widths;
  for (int w : model.layer_widths()) {
    if (!widths.empty()) widths += ',';
    widths += std::to_string(w);
  }
  return {{"format", "pt"},
          {"cuebm.widths", widths},
          {"cuebm.activation", activation_name(model.spec().activation)}};
}

void save_mlp(const std::string& path, const Mlp& model) {
  write_safetensors(path, mlp_state_dict(model), mlp_metadata(model));
}

namespace {

// "network.4.weight" -> (4, "weight"); the prefix "network." is optional.
bool parse_param_name(const std::string& name, bool* prefixed, int* index, std::string* kind) {
  std::string rest = name;
  *prefixed = rest.rfind("network.", 0) == 0;
  if (*prefixed) rest = rest.substr(8);
  const auto dot = rest.find('.');
  if (dot == std::string::npos || dot == 0 || dot > 6) return false;
  for (std::size_t i = 0; i < dot; ++i)
    if (rest[i] < '0' || rest[i] > '9') return false;
  *index = std::stoi(rest.substr(0, dot));
  *kind = rest.substr(dot + 1);
  return *kind == "weight" || *kind == "bias";
}

std::vector<int> parse_widths(const std::string& text, const std::string& path) {
  std::vector<int> widths;
  std::stringstream ss(text);
  std::string item;
  while (std::getline(ss, item, ',')) {
    char* end = nullptr;
    const long v = std::strtol(item.c_str(), &end, 10);
    if (item.empty() || *end != '\0' || v < 1 || v > (1 << 24))
      fail(path, "metadata cuebm.widths '" + text + "' is not a list of positive widths");
    widths.push_back(static_cast<int>(v));
  }
  if (widths.size() < 3 || widths.back() != 1)
    fail(path, "metadata cuebm.widths '" + text +
                   "' must list the input, at least one hidden width and the output 1");
  return widths;
}

std::string meta_widths_text(const std::vector<int>& widths) {
  std::string s;
  for (int w : widths) {
    if (!s.empty()) s += ',';
    s += std::to_string(w);
  }
  return s;
}

}  // namespace

Mlp mlp_from_safetensors(const SafetensorsFile& file, const std::string& path,
                         std::optional<Activation> activation) {
  // Which naming the file uses, and the Linear layers it holds.
  bool any_prefixed = false, any_bare = false;
  std::map<int, const NamedTensor*> weights;
  // A checkpoint (checkpoint.hpp) is a model file with the training state besides.
  const bool checkpoint = file.metadata.count("cuebm.checkpoint") > 0;
  const auto is_state = [&](const NamedTensor& t) {
    return checkpoint && t.name.rfind("network.", 0) != 0;
  };
  for (const NamedTensor& t : file.tensors) {
    if (is_state(t)) continue;
    bool prefixed = false;
    int index = 0;
    std::string kind;
    if (!parse_param_name(t.name, &prefixed, &index, &kind))
      fail(path, "unexpected tensor '" + t.name +
                     "': an MLP model file holds only network.<i>.weight and network.<i>.bias");
    (prefixed ? any_prefixed : any_bare) = true;
    if (kind == "weight") weights[index] = &t;
  }
  if (any_prefixed && any_bare)
    fail(path, "mixes tensor names with and without the 'network.' prefix");
  const std::string prefix = any_bare ? "" : "network.";

  std::vector<int> widths;
  const auto meta_widths = file.metadata.find("cuebm.widths");
  if (meta_widths != file.metadata.end()) {
    widths = parse_widths(meta_widths->second, path);
  } else {
    // Infer from the weights: Linear i sits at index 2 i, weight [out, in].
    if (weights.empty()) fail(path, "holds no weights (missing tensor '" + prefix + "0.weight')");
    int expect = 0;
    for (const auto& [index, t] : weights) {
      if (index != expect)
        fail(path, "missing tensor '" + prefix + std::to_string(expect) +
                       ".weight' (Linear layers sit at indices 0, 2, 4, ...)");
      if (t->shape.size() != 2)
        fail(path, "tensor '" + t->name + "' has shape " + shape_text(t->shape) +
                       "; a Linear weight is [out, in]");
      if (widths.empty()) widths.push_back(static_cast<int>(t->shape[1]));
      if (t->shape[1] != widths.back())
        fail(path, "tensor '" + t->name + "' has shape " + shape_text(t->shape) +
                       " but the previous layer has " + std::to_string(widths.back()) + " outputs");
      widths.push_back(static_cast<int>(t->shape[0]));
      expect += 2;
    }
    if (widths.size() < 3 || widths.back() != 1)
      fail(path, "the weights' shapes give widths " + meta_widths_text(widths) +
                     "; an MLP energy needs at least one hidden layer and one output");
  }

  std::optional<Activation> act;
  const auto meta_act = file.metadata.find("cuebm.activation");
  if (meta_act != file.metadata.end()) {
    try {
      act = parse_activation(meta_act->second);
    } catch (const InvalidArgument& e) {
      fail(path, std::string("metadata cuebm.activation: ") + e.what());
    }
    if (activation && *activation != *act)
      throw InvalidArgument("model file '" + path + "' records activation '" +
                            activation_name(*act) + "' but '" + activation_name(*activation) +
                            "' was asked for");
  } else {
    act = activation;
  }
  if (!act)
    throw InvalidArgument("model file '" + path +
                          "' records no activation (metadata cuebm.activation); give one "
                          "(--activation relu|silu|tanh|softplus|leaky_relu|gelu)");

  MlpSpec spec;
  spec.input_dim = widths.front();
  spec.hidden.assign(widths.begin() + 1, widths.end() - 1);
  spec.activation = *act;
  Mlp model(spec, 0);
  std::vector<std::string> expected_names;
  for (const ParameterInfo& p : model.parameter_info()) {
    const std::string name = prefix + p.name.substr(8);  // p.name starts with "network."
    expected_names.push_back(name);
    const NamedTensor* t = file.find(name);
    if (t == nullptr) fail(path, "missing tensor '" + name + "'");
    if (t->shape != p.shape)
      fail(path, "tensor '" + name + "' has shape " + shape_text(t->shape) + " but the widths " +
                     meta_widths_text(widths) + " need " + shape_text(p.shape));
    float* dst = model.parameters().data() + p.offset;
    if (t->dtype == TensorDtype::kF32)
      std::copy(t->f32.begin(), t->f32.end(), dst);
    else
      for (std::size_t i = 0; i < t->f64.size(); ++i) dst[i] = static_cast<float>(t->f64[i]);
    for (std::size_t i = 0; i < p.size; ++i)
      if (!std::isfinite(dst[i]))
        fail(path, "tensor '" + name + "' holds a non-finite value at index " + std::to_string(i));
  }
  for (const NamedTensor& t : file.tensors)
    if (!is_state(t) &&
        std::find(expected_names.begin(), expected_names.end(), t.name) == expected_names.end())
      fail(path,
           "unexpected tensor '" + t.name + "' for an MLP of widths " + meta_widths_text(widths));
  return model;
}

Mlp load_mlp(const std::string& path, std::optional<Activation> activation) {
  return mlp_from_safetensors(read_safetensors(path), path, activation);
}

}  // namespace cuebm
