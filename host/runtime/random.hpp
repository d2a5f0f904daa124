// Host-side random streams built on the shared Philox. Every consumer names its stream, so
// no global state exists and results never depend on call order elsewhere.
#pragma once

#include <cstdint>

#include "kernels/runtime/philox.cuh"

namespace cuebm {

// Stream tags: the Langevin noise uses the user's seed as the Philox key (tag 0) so that it
// equals curand_init(seed, chain, 4 * blocks_per_step * step); everything else mixes a tag in.
enum class StreamTag : uint32_t {
  kLangevin = 0,
  kDataset = 1,
  kInitNoise = 2,
  kShuffle = 3,
  kBuffer = 4,
  kParams = 5,
  kMetrics = 6,
};

inline uint64_t stream_key(uint64_t seed, StreamTag tag) {
  if (tag == StreamTag::kLangevin) return seed;
  // splitmix64 finaliser: distinct tags give unrelated keys.
  uint64_t z = seed + 0x9E3779B97F4A7C15ull * (static_cast<uint64_t>(tag) + 1);
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
  return z ^ (z >> 31);
}

// A sequential reader of one Philox subsequence: normals, uniforms and integers in order.
class RandomStream {
 public:
  RandomStream(uint64_t seed, StreamTag tag, uint64_t subsequence = 0)
      : key_(stream_key(seed, tag)), subsequence_(subsequence) {}

  uint32_t next_u32() {
    refill_bits();
    return bits_[bit_pos_++];
  }
  // (0, 1], as curand_uniform.
  float uniform() { return detail::uniform_from_bits(next_u32()); }
  // [0, 1) in double precision from 53 random bits.
  double uniform_double() {
    const uint64_t hi = next_u32() >> 5, lo = next_u32() >> 6;
    return (static_cast<double>(hi) * 67108864.0 + static_cast<double>(lo)) / 9007199254740992.0;
  }
  float normal() {
    if (normal_pos_ == 4) {
      normals_ = detail::normal4_from_block(detail::philox_block(key_, subsequence_, block_++));
      normal_pos_ = 0;
    }
    return normals_.v[normal_pos_++];
  }
  // Uniform integer in [0, n), n >= 1, without modulo bias.
  uint64_t uniform_int(uint64_t n) {
    const uint64_t limit = UINT64_MAX - UINT64_MAX % n;
    uint64_t r;
    do {
      r = (static_cast<uint64_t>(next_u32()) << 32) | next_u32();
    } while (r >= limit);
    return r % n;
  }

 private:
  void refill_bits() {
    if (bit_pos_ < 4) return;
    const detail::U32x4 b = detail::philox_block(key_, subsequence_, block_++);
    bits_[0] = b.x;
    bits_[1] = b.y;
    bits_[2] = b.z;
    bits_[3] = b.w;
    bit_pos_ = 0;
  }

  uint64_t key_;
  uint64_t subsequence_;
  uint64_t block_ = 0;
  uint32_t bits_[4] = {};
  int bit_pos_ = 4;
  detail::Normal4 normals_{};
  int normal_pos_ = 4;
};

}  // namespace cuebm
