// Training checkpoints as safetensors files; see include/cuebm/training/checkpoint.hpp.
#include "cuebm/training/checkpoint.hpp"

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>

#include "cuebm/io/safetensors.hpp"
#include "cuebm/runtime/error.hpp"

namespace cuebm {
namespace {

constexpr const char* kConfigPrefix = "cuebm.config.";

[[noreturn]] void fail(const std::string& path, const std::string& what) {
  throw IoError("checkpoint '" + path + "': " + what);
}

const std::string& meta(const SafetensorsFile& f, const std::string& path, const char* key) {
  const auto it = f.metadata.find(key);
  if (it == f.metadata.end()) fail(path, std::string("metadata '") + key + "' is missing");
  return it->second;
}

int64_t meta_int(const SafetensorsFile& f, const std::string& path, const char* key) {
  const std::string& text = meta(f, path, key);
  char* end = nullptr;
  errno = 0;
  const long long v = std::strtoll(text.c_str(), &end, 10);
  if (text.empty() || *end != '\0' || errno != 0 || v < 0)
    fail(path,
         std::string("metadata '") + key + "' = '" + text + "' is not a non-negative integer");
  return v;
}

std::string hex_double(double v) {
  char buf[64];
  std::snprintf(buf, sizeof buf, "%a", v);
  return buf;
}

}  // namespace

void write_checkpoint(const std::string& path, const Checkpoint& c) {
  Mlp model(c.model, 0);
  if (c.parameters.size() != model.num_parameters() || c.adam_m.size() != c.parameters.size() ||
      c.adam_v.size() != c.parameters.size())
    throw InvalidArgument(
        "write_checkpoint: '" + path + "': " + std::to_string(c.parameters.size()) +
        " parameters, " + std::to_string(c.adam_m.size()) + "/" + std::to_string(c.adam_v.size()) +
        " Adam moments for a model of " + std::to_string(model.num_parameters()) + " parameters");
  const int d = c.model.input_dim;
  if (c.trainer.buffer.size() % static_cast<std::size_t>(d) != 0)
    throw InvalidArgument("write_checkpoint: '" + path + "': replay buffer of " +
                          std::to_string(c.trainer.buffer.size()) +
                          " floats is not a whole number of rows of dimension " +
                          std::to_string(d));
  if (c.epoch_loss.size() != static_cast<std::size_t>(c.epoch))
    throw InvalidArgument("write_checkpoint: '" + path +
                          "': " + std::to_string(c.epoch_loss.size()) + " epoch losses for epoch " +
                          std::to_string(c.epoch));
  if (!c.epoch_acceptance.empty() && c.epoch_acceptance.size() != c.epoch_loss.size())
    throw InvalidArgument("write_checkpoint: '" + path +
                          "': " + std::to_string(c.epoch_acceptance.size()) +
                          " epoch acceptance rates for epoch " + std::to_string(c.epoch));
  std::copy(c.parameters.begin(), c.parameters.end(), model.parameters().begin());
  std::vector<NamedTensor> tensors = mlp_state_dict(model);
  const auto p = static_cast<int64_t>(c.parameters.size());
  tensors.push_back(NamedTensor::from_f32("adam.m", {p}, c.adam_m));
  tensors.push_back(NamedTensor::from_f32("adam.v", {p}, c.adam_v));
  if (!c.trainer.buffer.empty())
    tensors.push_back(NamedTensor::from_f32(
        "buffer", {static_cast<int64_t>(c.trainer.buffer.size()) / d, d}, c.trainer.buffer));
  tensors.push_back(
      NamedTensor::from_f64("epoch_loss", {static_cast<int64_t>(c.epoch)}, c.epoch_loss));
  if (!c.epoch_acceptance.empty())
    tensors.push_back(NamedTensor::from_f64("epoch_acceptance", {static_cast<int64_t>(c.epoch)},
                                            c.epoch_acceptance));
  std::map<std::string, std::string> m = mlp_metadata(model);
  m["cuebm.checkpoint"] = "1";
  m["cuebm.epoch"] = std::to_string(c.epoch);
  m["cuebm.iteration"] = std::to_string(c.trainer.iteration);
  m["cuebm.adam_steps"] = std::to_string(c.adam_steps);
  m["cuebm.consecutive_nonfinite"] = std::to_string(c.trainer.consecutive_nonfinite);
  m["cuebm.buffer_ptr"] = std::to_string(c.trainer.buffer_ptr);
  m["cuebm.buffer_ready"] = c.trainer.buffer_ready ? "1" : "0";
  m["cuebm.iterations"] = std::to_string(c.iterations);
  m["cuebm.skipped"] = std::to_string(c.skipped);
  m["cuebm.train_seconds"] = hex_double(c.train_seconds);
  for (const auto& [k, v] : c.config) m[kConfigPrefix + k] = v;
  write_safetensors(path, tensors, m);
}

Checkpoint read_checkpoint(const std::string& path) {
  SafetensorsFile f;
  try {
    f = read_safetensors(path);
  } catch (const IoError& e) {
    throw IoError(std::string("checkpoint: ") + e.what());
  }
  if (meta(f, path, "cuebm.checkpoint") != "1")
    fail(path, "unsupported checkpoint version '" + meta(f, path, "cuebm.checkpoint") + "'");
  // The model: every tensor that is not part of the training state.
  SafetensorsFile model_part;
  model_part.metadata = f.metadata;
  for (const NamedTensor& t : f.tensors)
    if (t.name.rfind("network.", 0) == 0) model_part.tensors.push_back(t);
  Checkpoint c;
  {
    Mlp model = mlp_from_safetensors(model_part, path);
    c.model = model.spec();
    c.parameters.assign(model.parameters().begin(), model.parameters().end());
  }
  const auto tensor = [&](const char* name, TensorDtype dtype) -> const NamedTensor& {
    const NamedTensor* t = f.find(name);
    if (t == nullptr) fail(path, std::string("tensor '") + name + "' is missing");
    if (t->dtype != dtype)
      fail(path, std::string("tensor '") + name + "' must be " +
                     (dtype == TensorDtype::kF32 ? "F32" : "F64"));
    return *t;
  };
  for (const NamedTensor& t : f.tensors)
    if (t.name.rfind("network.", 0) != 0 && t.name != "adam.m" && t.name != "adam.v" &&
        t.name != "buffer" && t.name != "epoch_loss" && t.name != "epoch_acceptance")
      fail(path, "unexpected tensor '" + t.name + "'");
  const std::vector<int64_t> pshape = {static_cast<int64_t>(c.parameters.size())};
  const NamedTensor& m = tensor("adam.m", TensorDtype::kF32);
  const NamedTensor& v = tensor("adam.v", TensorDtype::kF32);
  if (m.shape != pshape || v.shape != pshape)
    fail(path, "Adam moments do not match the model's " + std::to_string(c.parameters.size()) +
                   " parameters");
  c.adam_m = m.f32;
  c.adam_v = v.f32;
  c.epoch = static_cast<int>(meta_int(f, path, "cuebm.epoch"));
  const NamedTensor& loss = tensor("epoch_loss", TensorDtype::kF64);
  if (loss.shape != std::vector<int64_t>{c.epoch})
    fail(path, "tensor 'epoch_loss' does not hold one value per finished epoch (" +
                   std::to_string(c.epoch) + ")");
  c.epoch_loss = loss.f64;
  if (f.find("epoch_acceptance") != nullptr) {
    const NamedTensor& acc = tensor("epoch_acceptance", TensorDtype::kF64);
    if (acc.shape != std::vector<int64_t>{c.epoch})
      fail(path, "tensor 'epoch_acceptance' does not hold one value per finished epoch (" +
                     std::to_string(c.epoch) + ")");
    c.epoch_acceptance = acc.f64;
  }
  if (const NamedTensor* b = f.find("buffer")) {
    if (b->dtype != TensorDtype::kF32 || b->shape.size() != 2 || b->shape[1] != c.model.input_dim)
      fail(path, "tensor 'buffer' must be F32 [rows, " + std::to_string(c.model.input_dim) + "]");
    c.trainer.buffer = b->f32;
  }
  c.trainer.iteration = meta_int(f, path, "cuebm.iteration");
  c.trainer.consecutive_nonfinite =
      static_cast<int>(meta_int(f, path, "cuebm.consecutive_nonfinite"));
  c.trainer.buffer_ptr = meta_int(f, path, "cuebm.buffer_ptr");
  c.trainer.buffer_ready = meta_int(f, path, "cuebm.buffer_ready") != 0;
  c.adam_steps = meta_int(f, path, "cuebm.adam_steps");
  c.iterations = meta_int(f, path, "cuebm.iterations");
  c.skipped = meta_int(f, path, "cuebm.skipped");
  const std::string& secs = meta(f, path, "cuebm.train_seconds");
  char* end = nullptr;
  c.train_seconds = std::strtod(secs.c_str(), &end);
  if (secs.empty() || *end != '\0') fail(path, "metadata 'cuebm.train_seconds' is not a number");
  const std::string prefix = kConfigPrefix;
  for (const auto& [k, val] : f.metadata)
    if (k.rfind(prefix, 0) == 0) c.config[k.substr(prefix.size())] = val;
  return c;
}

}  // namespace cuebm
