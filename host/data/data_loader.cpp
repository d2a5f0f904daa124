// Shuffling mini-batch loader over a host array.
#include <algorithm>
#include <cmath>
#include <numeric>
#include <sstream>
#include <string>
#include <utility>

#include "cuebm/data/datasets.hpp"
#include "cuebm/runtime/error.hpp"
#include "host/runtime/random.hpp"

namespace cuebm {

DataLoader::DataLoader(const float* data, int64_t n, int dim, int64_t batch_size, bool shuffle,
                       bool drop_last, uint64_t seed)
    : data_(data),
      n_(n),
      dim_(dim),
      batch_size_(batch_size),
      shuffle_(shuffle),
      drop_last_(drop_last),
      seed_(seed) {
  if (data == nullptr) throw InvalidArgument("DataLoader: data pointer is null");
  if (n < 1) throw InvalidArgument("DataLoader: n must be >= 1, got " + std::to_string(n));
  if (dim < 1) throw InvalidArgument("DataLoader: dim must be >= 1, got " + std::to_string(dim));
  if (batch_size < 1) {
    throw InvalidArgument("DataLoader: batch_size must be >= 1, got " + std::to_string(batch_size));
  }
  if (drop_last && batch_size > n) {
    throw InvalidArgument("DataLoader: drop_last with batch_size " + std::to_string(batch_size) +
                          " > n " + std::to_string(n) + " leaves no batches");
  }
  for (int64_t i = 0; i < n * dim; ++i) {
    if (!std::isfinite(data[i])) {
      std::ostringstream message;
      message << "DataLoader: data row " << i / dim << " (column " << i % dim << ") is " << data[i]
              << "; NaN and Inf are not allowed";
      throw InvalidArgument(message.str());
    }
  }
  order_.resize(n);
  buffer_.resize(std::min(batch_size, n) * dim);
  start_epoch(0);
}

void DataLoader::start_epoch(int64_t epoch) {
  if (epoch < 0) {
    throw InvalidArgument("DataLoader::start_epoch: epoch must be >= 0, got " +
                          std::to_string(epoch));
  }
  // Restart from the identity so the order depends on (seed, epoch) only, not on history.
  std::iota(order_.begin(), order_.end(), int64_t{0});
  if (!shuffle_) return;
  RandomStream stream(seed_, StreamTag::kShuffle, static_cast<uint64_t>(epoch));
  for (int64_t i = n_ - 1; i > 0; --i) {
    const auto j = static_cast<int64_t>(stream.uniform_int(static_cast<uint64_t>(i) + 1));
    std::swap(order_[i], order_[j]);
  }
}

int64_t DataLoader::num_batches() const {
  return n_ / batch_size_ + (!drop_last_ && n_ % batch_size_ != 0 ? 1 : 0);
}

void DataLoader::check_batch_index(int64_t b, const char* caller) const {
  if (b < 0 || b >= num_batches()) {
    throw InvalidArgument(std::string("DataLoader::") + caller + ": batch index " +
                          std::to_string(b) + " out of range [0, " + std::to_string(num_batches()) +
                          ")");
  }
}

int64_t DataLoader::batch_rows(int64_t b) const {
  check_batch_index(b, "batch_rows");
  return std::min(batch_size_, n_ - b * batch_size_);
}

const float* DataLoader::batch(int64_t b) {
  check_batch_index(b, "batch");
  const int64_t rows = std::min(batch_size_, n_ - b * batch_size_);
  for (int64_t r = 0; r < rows; ++r) {
    const float* src = data_ + order_[b * batch_size_ + r] * dim_;
    std::copy(src, src + dim_, buffer_.begin() + r * dim_);
  }
  return buffer_.data();
}

}  // namespace cuebm
