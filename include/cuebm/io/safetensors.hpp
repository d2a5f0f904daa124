// safetensors files (https://github.com/huggingface/safetensors), and MLP model files in them
// with PyTorch's parameter names and shapes.
//
// Format: an unsigned little-endian 64-bit header length N, N bytes of UTF-8 JSON, then the
// data. The JSON object maps each tensor name to {"dtype", "shape", "data_offsets": [begin,
// end]} (byte offsets into the data, relative to its start) and may hold "__metadata__", an
// object of string to string.
//
// Reading checks everything before trusting it and throws cuebm::IoError naming the file and
// the problem: a file shorter than 8 bytes, a header length beyond the file (or above 100 MB),
// a header that is not a JSON object, an entry without a valid dtype/shape/data_offsets, a
// byte range that does not match its dtype and shape, ranges outside the data, overlapping,
// leaving holes or followed by trailing bytes (the data must be covered exactly, as the
// reference implementation requires), duplicate names, and non-string metadata.
// Dtypes: F32 and F64 are read; every other dtype (F16, BF16, integers, ...) is an error.
//
// Writing produces what safetensors.torch.save_file produces: the header padded with spaces to
// a multiple of 8 bytes, "__metadata__" first, the tensors' data contiguous in the order given.
// Files are written atomically: to "<path>.tmp-<pid>" in the same folder, then renamed over
// <path>; on failure the temporary file is removed and <path> is left as it was.
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "cuebm/models/activation.hpp"
#include "cuebm/models/mlp.hpp"

namespace cuebm {

enum class TensorDtype { kF32, kF64 };

// One named tensor, C order. Exactly one of f32 / f64 holds the values, as dtype says.
struct NamedTensor {
  std::string name;
  TensorDtype dtype = TensorDtype::kF32;
  std::vector<int64_t> shape;  // empty: a scalar (one value)
  std::vector<float> f32;
  std::vector<double> f64;

  static NamedTensor from_f32(std::string name, std::vector<int64_t> shape,
                              std::vector<float> values);
  static NamedTensor from_f64(std::string name, std::vector<int64_t> shape,
                              std::vector<double> values);
  int64_t numel() const;
};

struct SafetensorsFile {
  std::vector<NamedTensor> tensors;  // in the order of their data in the file
  std::map<std::string, std::string> metadata;

  // nullptr when absent.
  const NamedTensor* find(const std::string& name) const;
};

// Throws IoError as described above.
SafetensorsFile read_safetensors(const std::string& path);
// Throws InvalidArgument for empty or duplicate names, the reserved name "__metadata__", a
// negative dimension or values that do not match the shape; IoError when writing fails.
void write_safetensors(const std::string& path, const std::vector<NamedTensor>& tensors,
                       const std::map<std::string, std::string>& metadata = {});

// --- MLP model files -----------------------------------------------------------------------
//
// A model file holds the state_dict of a PyTorch module with `self.network = nn.Sequential(
// Linear(D, h1), act, ..., Linear(hL, 1))`: "network.0.weight" [h1, D], "network.0.bias" [h1],
// "network.2.weight" [h2, h1], ... (a bare nn.Sequential's names "0.weight", ... are accepted
// too), and the metadata {"format": "pt", "cuebm.widths": "2,64,64,1", "cuebm.activation":
// "relu"}. Without "cuebm.widths" the widths are inferred from the weights' shapes; without
// "cuebm.activation" the activation must be given by the caller. F64 parameters (a module
// saved after .double()) are rounded to float32. A checkpoint (checkpoint.hpp) loads as a model
// file too: with "cuebm.checkpoint" in the metadata, tensors outside "network." are ignored.

// The model's state_dict and metadata as written by save_mlp.
std::vector<NamedTensor> mlp_state_dict(const Mlp& model);
std::map<std::string, std::string> mlp_metadata(const Mlp& model);

// Writes the model atomically.
void save_mlp(const std::string& path, const Mlp& model);

// Reads a model file. `activation` is used when the file records none; when both are present
// and differ, or neither is, it throws InvalidArgument. Every problem with the file (missing,
// unexpected or misshapen tensors, widths in the metadata that disagree with the shapes, ...)
// throws IoError naming the file and the tensor.
Mlp load_mlp(const std::string& path, std::optional<Activation> activation = std::nullopt);
// The same from a file already read; `path` only names the file in messages.
Mlp mlp_from_safetensors(const SafetensorsFile& file, const std::string& path,
                         std::optional<Activation> activation = std::nullopt);

}  // namespace cuebm
