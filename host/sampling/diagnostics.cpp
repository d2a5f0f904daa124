// Split rank-normalised R-hat and bulk ESS (include/cuebm/sampling/diagnostics.hpp).
#include "cuebm/sampling/diagnostics.hpp"

#include <algorithm>
#include <cmath>
#include <numeric>
#include <string>

#include "cuebm/runtime/error.hpp"

namespace cuebm {
namespace {

// Chains x n draws, row-major.
struct Draws {
  int64_t chains = 0, n = 0;
  std::vector<double> v;
  double at(int64_t c, int64_t i) const { return v[c * n + i]; }
};

Draws checked(const std::vector<double>& draws, int64_t chains, int64_t n, const char* who) {
  const std::string w(who);
  if (chains < 1) throw InvalidArgument(w + ": chains must be >= 1, got " + std::to_string(chains));
  if (n < 4) throw InvalidArgument(w + ": need >= 4 draws per chain, got " + std::to_string(n));
  if (static_cast<int64_t>(draws.size()) != chains * n)
    throw InvalidArgument(w + ": " + std::to_string(draws.size()) +
                          " draws, expected chains x n = " + std::to_string(chains * n));
  for (std::size_t k = 0; k < draws.size(); ++k)
    if (!std::isfinite(draws[k]))
      throw InvalidArgument(w + ": draw " + std::to_string(k % n) + " of chain " +
                            std::to_string(k / n) + " is not finite");
  return {chains, n, draws};
}

// Each chain's first and last floor(n / 2) draws as two chains.
Draws split(const Draws& d) {
  const int64_t h = d.n / 2;
  Draws s{2 * d.chains, h, std::vector<double>(2 * d.chains * h)};
  for (int64_t c = 0; c < d.chains; ++c)
    for (int64_t i = 0; i < h; ++i) {
      s.v[(2 * c) * h + i] = d.at(c, i);
      s.v[(2 * c + 1) * h + i] = d.at(c, d.n - h + i);
    }
  return s;
}

// Standard normal quantile: Acklam's rational approximation, then one Halley step on erfc
// (about 1e-15 relative).
double normal_quantile(double p) {
  static const double a[] = {-3.969683028665376e+01, 2.209460984245205e+02,  -2.759285104469687e+02,
                             1.383577518672690e+02,  -3.066479806614716e+01, 2.506628277459239e+00};
  static const double b[] = {-5.447609879822406e+01, 1.615858368580409e+02, -1.556989798598866e+02,
                             6.680131188771972e+01, -1.328068155288572e+01};
  static const double c[] = {-7.784894002430293e-03, -3.223964580411365e-01, -2.400758277161838e+00,
                             -2.549732539343734e+00, 4.374664141464968e+00,  2.938163982698783e+00};
  static const double d[] = {7.784695709041462e-03, 3.224671290700398e-01, 2.445134137142996e+00,
                             3.754408661907416e+00};
  const double lo = 0.02425;
  double x;
  if (p < lo) {
    const double q = std::sqrt(-2 * std::log(p));
    x = (((((c[0] * q + c[1]) * q + c[2]) * q + c[3]) * q + c[4]) * q + c[5]) /
        ((((d[0] * q + d[1]) * q + d[2]) * q + d[3]) * q + 1);
  } else if (p <= 1 - lo) {
    const double q = p - 0.5, r = q * q;
    x = (((((a[0] * r + a[1]) * r + a[2]) * r + a[3]) * r + a[4]) * r + a[5]) * q /
        (((((b[0] * r + b[1]) * r + b[2]) * r + b[3]) * r + b[4]) * r + 1);
  } else {
    const double q = std::sqrt(-2 * std::log(1 - p));
    x = -(((((c[0] * q + c[1]) * q + c[2]) * q + c[3]) * q + c[4]) * q + c[5]) /
        ((((d[0] * q + d[1]) * q + d[2]) * q + d[3]) * q + 1);
  }
  const double e = 0.5 * std::erfc(-x / std::sqrt(2.0)) - p;
  const double u = e * std::sqrt(2 * M_PI) * std::exp(x * x / 2);
  return x - u / (1 + x * u / 2);
}

// Ranks over all draws; ties get their average rank.
std::vector<double> average_ranks(const std::vector<double>& v) {
  const std::size_t s = v.size();
  std::vector<std::size_t> idx(s);
  std::iota(idx.begin(), idx.end(), std::size_t{0});
  std::stable_sort(idx.begin(), idx.end(),
                   [&](std::size_t i, std::size_t j) { return v[i] < v[j]; });
  std::vector<double> ranks(s);
  for (std::size_t k = 0; k < s;) {
    std::size_t e = k;
    while (e + 1 < s && v[idx[e + 1]] == v[idx[k]]) ++e;
    const double rank = 0.5 * static_cast<double>(k + e) + 1.0;  // average of k+1 .. e+1
    for (std::size_t t = k; t <= e; ++t) ranks[idx[t]] = rank;
    k = e + 1;
  }
  return ranks;
}

// Ranks r (of d's shape) mapped to normal scores Phi^-1((r - 3/8) / (S + 1/4)).
Draws normal_scores(const Draws& d, const std::vector<double>& ranks) {
  const double s = static_cast<double>(ranks.size());
  Draws z{d.chains, d.n, std::vector<double>(ranks.size())};
  for (std::size_t k = 0; k < ranks.size(); ++k)
    z.v[k] = normal_quantile((ranks[k] - 0.375) / (s + 0.25));
  return z;
}

Draws rank_normalise(const Draws& d) { return normal_scores(d, average_ranks(d.v)); }

struct Variances {
  double within = 0;    // W: mean of the chains' unbiased variances
  double var_plus = 0;  // (n - 1) / n W + B / n
};

Variances variances(const Draws& d) {
  const double n = static_cast<double>(d.n);
  std::vector<double> means(d.chains);
  double w = 0;
  for (int64_t c = 0; c < d.chains; ++c) {
    double m = 0;
    for (int64_t i = 0; i < d.n; ++i) m += d.at(c, i);
    m /= n;
    double s2 = 0;
    for (int64_t i = 0; i < d.n; ++i) s2 += (d.at(c, i) - m) * (d.at(c, i) - m);
    w += s2 / (n - 1);
    means[c] = m;
  }
  w /= static_cast<double>(d.chains);
  double b_over_n = 0;
  if (d.chains > 1) {
    const double mm = std::accumulate(means.begin(), means.end(), 0.0) / d.chains;
    for (double m : means) b_over_n += (m - mm) * (m - mm);
    b_over_n /= static_cast<double>(d.chains - 1);
  }
  return {w, (n - 1) / n * w + b_over_n};
}

double basic_rhat(const Draws& d) {
  const Variances v = variances(d);
  return std::sqrt(v.var_plus / v.within);
}

// The folded ("tail") R-hat of the split draws: |x - median| rank-normalised.
double folded_rhat(const Draws& s) {
  std::vector<double> sorted = s.v;
  std::sort(sorted.begin(), sorted.end());
  const std::size_t m = sorted.size();
  const double median = m % 2 ? sorted[m / 2] : 0.5 * (sorted[m / 2 - 1] + sorted[m / 2]);
  Draws folded = s;
  for (double& x : folded.v) x = std::abs(x - median);
  return basic_rhat(rank_normalise(folded));
}

// Bulk ESS of the rank-normalised split draws z.
double ess_of_scores(const Draws& z) {
  const int64_t len = z.n;
  const Variances v = variances(z);
  // Mean over chains of the biased autocovariance at lag t.
  auto mean_autocov = [&](int64_t t) {
    double sum = 0;
    for (int64_t c = 0; c < z.chains; ++c) {
      double m = 0;
      for (int64_t i = 0; i < len; ++i) m += z.at(c, i);
      m /= static_cast<double>(len);
      double a = 0;
      for (int64_t i = 0; i + t < len; ++i) a += (z.at(c, i) - m) * (z.at(c, i + t) - m);
      sum += a / static_cast<double>(len);
    }
    return sum / static_cast<double>(z.chains);
  };
  auto rho = [&](int64_t t) {
    return t == 0 ? 1.0 : 1.0 - (v.within - mean_autocov(t)) / v.var_plus;
  };
  // Geyer: pair sums rho(2k) + rho(2k + 1) while positive, made non-increasing.
  double tau_sum = 0, previous = INFINITY;
  for (int64_t t = 0; t + 1 < len; t += 2) {
    double pair = rho(t) + rho(t + 1);
    if (pair < 0) break;
    pair = std::min(pair, previous);
    previous = pair;
    tau_sum += pair;
  }
  const double total = static_cast<double>(z.chains * len);
  const double tau = std::max(-1.0 + 2.0 * tau_sum, 1.0 / std::log10(total));
  return total / tau;
}

}  // namespace

double split_rhat(const std::vector<double>& draws, int64_t chains, int64_t n) {
  const Draws s = split(checked(draws, chains, n, "split_rhat"));
  return std::max(basic_rhat(rank_normalise(s)), folded_rhat(s));
}

double ess_bulk(const std::vector<double>& draws, int64_t chains, int64_t n) {
  return ess_of_scores(rank_normalise(split(checked(draws, chains, n, "ess_bulk"))));
}

namespace detail {

RhatEss rhat_ess_from_split_ranks(const std::vector<double>& draws, int64_t chains, int64_t n,
                                  const std::vector<double>& split_ranks) {
  const char* who = "rhat_ess_from_split_ranks";
  const Draws s = split(checked(draws, chains, n, who));
  if (split_ranks.size() != s.v.size())
    throw InvalidArgument(
        std::string(who) + ": " + std::to_string(split_ranks.size()) +
        " ranks, expected 2 x chains x floor(n / 2) = " + std::to_string(s.v.size()));
  const Draws z = normal_scores(s, split_ranks);
  return {std::max(basic_rhat(z), folded_rhat(s)), ess_of_scores(z)};
}

}  // namespace detail
}  // namespace cuebm
