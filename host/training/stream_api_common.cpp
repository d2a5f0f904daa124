// Validation and workspace sizes of the stream-ordered API (cuebm/stream_api.hpp): pure host
// arithmetic, identical in the CUDA and CPU-only builds.
#include <cstdint>
#include <string>

#include "cuebm/runtime/error.hpp"
#include "host/training/stream_api_impl.hpp"

namespace cuebm {

std::size_t MlpView::num_parameters() const {
  std::size_t n = 0;
  for (std::size_t l = 0; l + 1 < widths.size(); ++l)
    n += static_cast<std::size_t>(widths[l + 1]) * widths[l] + widths[l + 1];
  return n;
}

namespace detail {
namespace {

std::size_t align_up(std::size_t b) {
  return (b + kWorkspaceAlignment - 1) / kWorkspaceAlignment * kWorkspaceAlignment;
}

// Appends a part of `bytes` bytes; returns its offset (0 for an empty part).
std::size_t take(WsLayout& l, std::size_t bytes) {
  if (bytes == 0) return 0;
  const std::size_t at = l.total;
  l.total = align_up(l.total + bytes);
  return at;
}

int64_t round32(int64_t n) { return (n + 31) / 32 * 32; }

}  // namespace

MlpShape mlp_shape(const MlpView& model, const char* who) {
  const std::string w(who);
  const std::vector<int>& wd = model.widths;
  if (wd.size() < 3)
    throw InvalidArgument(w +
                          ": model.widths must be {D, h1, ..., 1} with at least one hidden "
                          "layer, got " +
                          std::to_string(wd.size()) + " widths");
  if (static_cast<int>(wd.size()) - 1 > kStreamMaxLinear)
    throw InvalidArgument(w + ": model.widths has " + std::to_string(wd.size() - 2) +
                          " hidden layers; at most " + std::to_string(kStreamMaxLinear - 1) +
                          " are supported");
  for (std::size_t i = 0; i < wd.size(); ++i)
    if (wd[i] < 1)
      throw InvalidArgument(w + ": model.widths[" + std::to_string(i) + "] must be >= 1, got " +
                            std::to_string(wd[i]));
  if (wd.back() != 1)
    throw InvalidArgument(w + ": the last width must be 1 (one energy per row), got " +
                          std::to_string(wd.back()));
  MlpShape s;
  s.widths = wd;
  s.n_lin = static_cast<int>(wd.size()) - 1;
  s.dim = wd[0];
  std::vector<int64_t> w_off, b_off;
  int64_t o = 0;
  for (int l = 0; l < s.n_lin; ++l) {
    w_off.push_back(o);
    o += int64_t{wd[l + 1]} * wd[l];
    b_off.push_back(o);
    o += wd[l + 1];
  }
  s.n_params = static_cast<std::size_t>(o);
  for (int v : wd) s.meta.push_back(v);
  s.meta.insert(s.meta.end(), w_off.begin(), w_off.end());
  s.meta.insert(s.meta.end(), b_off.begin(), b_off.end());
  int64_t c = s.dim;
  std::vector<int64_t> dcol, hcol;
  for (int h = 0; h + 1 < s.n_lin; ++h) {
    dcol.push_back(c);
    c += wd[h + 1];
    hcol.push_back(c);
    c += wd[h + 1];
  }
  s.meta.insert(s.meta.end(), dcol.begin(), dcol.end());
  s.meta.insert(s.meta.end(), hcol.begin(), hcol.end());
  s.cols = c;
  return s;
}

WsLayout energy_layout(const MlpShape& s, int64_t n) {
  WsLayout l;
  l.ld = round32(n);
  l.meta = take(l, kStreamMetaCapacity * sizeof(int64_t));
  l.scratch = take(l, static_cast<std::size_t>(l.ld * s.cols) * sizeof(float));
  return l;
}

WsLayout langevin_layout(const MlpShape& s, int64_t n, int n_steps, int64_t ldx) {
  WsLayout l;
  l.ld = round32(n);
  l.meta = take(l, kStreamMetaCapacity * sizeof(int64_t));
  l.eta = take(l, static_cast<std::size_t>(n_steps) * sizeof(float));
  l.coef = take(l, static_cast<std::size_t>(n_steps) * sizeof(float));
  if (ldx != s.dim) l.xpack = take(l, static_cast<std::size_t>(n * s.dim) * sizeof(float));
  l.scratch = take(l, static_cast<std::size_t>(l.ld * s.cols) * sizeof(float));
  return l;
}

WsLayout cd_layout(const MlpShape& s, int64_t batch, int k_steps) {
  WsLayout l;
  l.ld = round32(2 * batch);  // positives then negatives share the per-row storage
  l.meta = take(l, kStreamMetaCapacity * sizeof(int64_t));
  l.eta = take(l, static_cast<std::size_t>(k_steps) * sizeof(float));
  l.coef = take(l, static_cast<std::size_t>(k_steps) * sizeof(float));
  l.neg = take(l, static_cast<std::size_t>(batch * s.dim) * sizeof(float));
  l.energy = take(l, static_cast<std::size_t>(2 * batch) * sizeof(float));
  l.coeff = take(l, static_cast<std::size_t>(2 * batch) * sizeof(float));
  l.grad = take(l, s.n_params * sizeof(float));
  l.scalars = take(l, 16 * sizeof(float));
  l.scratch = take(l, static_cast<std::size_t>(l.ld * s.cols) * sizeof(float));
  return l;
}

void require_ptr(const void* p, const char* name, const char* who) {
  if (!p) throw InvalidArgument(std::string(who) + ": " + name + " is null");
}

void require_ld(int64_t ld, int row_length, const char* name, const char* who) {
  if (ld < row_length)
    throw InvalidArgument(std::string(who) + ": leading dimension " + name + " = " +
                          std::to_string(ld) + " is smaller than the row length " +
                          std::to_string(row_length));
}

void require_rows(int64_t n, const char* name, const char* who) {
  if (n < 1)
    throw InvalidArgument(std::string(who) + ": " + name + " must be >= 1, got " +
                          std::to_string(n));
}

void require_workspace(const void* ws, std::size_t bytes, std::size_t needed, const char* who) {
  const std::string w(who);
  if (!ws)
    throw InvalidArgument(w + ": workspace is null (" + std::to_string(needed) + " bytes needed)");
  if (reinterpret_cast<std::uintptr_t>(ws) % kWorkspaceAlignment != 0)
    throw InvalidArgument(w + ": workspace is not " + std::to_string(kWorkspaceAlignment) +
                          "-byte aligned");
  if (bytes < needed)
    throw InvalidArgument(w + ": workspace_bytes = " + std::to_string(bytes) +
                          " is too small; the call needs " + std::to_string(needed) +
                          " bytes (see the *_workspace_size function)");
}

}  // namespace detail

std::size_t mlp_energy_workspace_size(const MlpView& model, int64_t n) {
  detail::require_rows(n, "n", "mlp_energy_workspace_size");
  return detail::energy_layout(detail::mlp_shape(model, "mlp_energy_workspace_size"), n).total;
}

void mlp_energy(const MlpView& model, const float* x, int64_t ldx, int64_t n, float* e, float* grad,
                int64_t ldg, void* workspace, std::size_t workspace_bytes, cudaStream_t stream) {
  constexpr const char* kWho = "mlp_energy";
  const detail::MlpShape s = detail::mlp_shape(model, kWho);
  detail::require_rows(n, "n", kWho);
  detail::require_ptr(model.params, "model.params", kWho);
  detail::require_ptr(x, "x", kWho);
  if (!e && !grad) throw InvalidArgument(std::string(kWho) + ": e and grad are both null");
  detail::require_ld(ldx, s.dim, "ldx", kWho);
  if (grad) detail::require_ld(ldg, s.dim, "ldg", kWho);
  const detail::WsLayout lay = detail::energy_layout(s, n);
  detail::require_workspace(workspace, workspace_bytes, lay.total, kWho);
  detail::stream_mlp_energy(s, model.activation, model.params, x, ldx, n, e, grad, ldg,
                            static_cast<char*>(workspace), lay, stream);
}

std::size_t langevin_chain_workspace_size(const MlpView& model, int64_t n, int n_steps,
                                          int64_t ldx) {
  constexpr const char* kWho = "langevin_chain_workspace_size";
  detail::require_rows(n, "n", kWho);
  if (n_steps < 0)
    throw InvalidArgument(std::string(kWho) + ": n_steps must be >= 0, got " +
                          std::to_string(n_steps));
  const detail::MlpShape s = detail::mlp_shape(model, kWho);
  return detail::langevin_layout(s, n, n_steps, ldx).total;
}

void langevin_chain(const MlpView& model, float* x, int64_t ldx, int64_t n,
                    const LangevinOptions& options, void* workspace, std::size_t workspace_bytes,
                    cudaStream_t stream) {
  constexpr const char* kWho = "langevin_chain (stream API)";
  const detail::MlpShape s = detail::mlp_shape(model, kWho);
  const detail::CustomChainSteps steps = detail::custom_chain_steps(options, s.dim, n, kWho);
  if (options.noise || options.thin > 0 || options.diagnostics)
    throw InvalidArgument(std::string(kWho) +
                          ": options.noise, thin and diagnostics are not supported");
  detail::require_ptr(model.params, "model.params", kWho);
  detail::require_ptr(x, "x", kWho);
  detail::require_ld(ldx, s.dim, "ldx", kWho);
  const detail::WsLayout lay = detail::langevin_layout(s, n, options.n_steps, ldx);
  detail::require_workspace(workspace, workspace_bytes, lay.total, kWho);
  detail::stream_langevin(s, model.activation, model.params, x, ldx, n, options, steps,
                          static_cast<char*>(workspace), lay, stream);
}

std::size_t cd_iteration_workspace_size(const MlpView& model, int64_t batch, int k_steps) {
  constexpr const char* kWho = "cd_iteration_workspace_size";
  detail::require_rows(batch, "batch", kWho);
  if (k_steps < 0)
    throw InvalidArgument(std::string(kWho) + ": k_steps must be >= 0, got " +
                          std::to_string(k_steps));
  return detail::cd_layout(detail::mlp_shape(model, kWho), batch, k_steps).total;
}

void cd_iteration(const MlpView& model, const float* data, int64_t ldd, int64_t batch,
                  const CdIterationOptions& options, const CdDeviceState& state, float* loss,
                  float* negatives, float* grad_norm, void* workspace, std::size_t workspace_bytes,
                  cudaStream_t stream) {
  constexpr const char* kWho = "cd_iteration";
  const detail::MlpShape s = detail::mlp_shape(model, kWho);
  const detail::CustomChainSteps steps =
      detail::custom_chain_steps(options.sampler, s.dim, batch, kWho);
  const LangevinOptions& so = options.sampler;
  if (so.noise || so.thin > 0 || so.diagnostics)
    throw InvalidArgument(std::string(kWho) +
                          ": sampler.noise, thin and diagnostics are not supported");
  detail::require_ptr(data, "data", kWho);
  detail::require_ptr(state.params, "state.params", kWho);
  detail::require_ptr(state.adam_m, "state.adam_m", kWho);
  detail::require_ptr(state.adam_v, "state.adam_v", kWho);
  detail::require_ptr(state.adam_step, "state.adam_step", kWho);
  detail::require_ld(ldd, s.dim, "ldd", kWho);
  const detail::WsLayout lay = detail::cd_layout(s, batch, so.n_steps);
  detail::require_workspace(workspace, workspace_bytes, lay.total, kWho);
  detail::stream_cd(s, model.activation, data, ldd, batch, options, steps, state, loss, negatives,
                    grad_norm, static_cast<char*>(workspace), lay, stream);
}

}  // namespace cuebm
