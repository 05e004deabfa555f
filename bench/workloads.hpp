// The workloads of the scalar benchmark (issue 2), written once as templates over the scalar type,
// so that tapegrad, Sacado and ADOL-C record exactly the same program, and once more by hand as
// an adjoint in plain double (the floor: what a gradient costs with no tape at all).
//
// The templated programs are what a user would naturally write: plain loops over the scalar type,
// an accumulator started at 0.0, named temporaries. A `Tool` supplies the scalar type and relu
// (each library spells relu differently); exp and log are found by argument-dependent lookup.
#pragma once

#include <cmath>
#include <cstddef>
#include <cstdint>
#include <numbers>
#include <span>
#include <string_view>
#include <type_traits>
#include <vector>

namespace tgbench {

/// Deterministic doubles in [lo, hi) (splitmix64), the same on every platform and standard library.
inline std::vector<double> uniform(std::size_t n, double lo, double hi, std::uint64_t seed) {
  std::vector<double> v(n);
  for (double& x : v) {
    seed += 0x9e3779b97f4a7c15ull;
    std::uint64_t z = seed;
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    z ^= z >> 31;
    x = lo + (hi - lo) * static_cast<double>(z >> 11) * 0x1.0p-53;
  }
  return v;
}

/// sum_i x_i^2, n = 10,000.
struct Sumsq {
  static constexpr std::string_view name = "sumsq";
  std::vector<double> point = uniform(10'000, -1.0, 1.0, 1);

  template <class Tool, class T = typename Tool::Scalar>
  T record(std::span<const std::type_identity_t<T>> x) const {
    T s = 0.0;
    for (const T& xi : x) s += xi * xi;
    return s;
  }
  double adjoint(std::span<const double> x, std::span<double> g) const {
    double s = 0.0;
    for (std::size_t i = 0; i < x.size(); ++i) {
      s += x[i] * x[i];
      g[i] = 2.0 * x[i];
    }
    return s;
  }
};

/// log(sum_i exp(x_i)), naive (no max shift), n = 10,000, x in [-1, 1).
struct Logsumexp {
  static constexpr std::string_view name = "logsumexp";
  std::vector<double> point = uniform(10'000, -1.0, 1.0, 2);

  template <class Tool, class T = typename Tool::Scalar>
  T record(std::span<const std::type_identity_t<T>> x) const {
    T s = 0.0;
    for (const T& xi : x) s += exp(xi);
    return log(s);
  }
  double adjoint(std::span<const double> x, std::span<double> g) const {
    double s = 0.0;
    for (std::size_t i = 0; i < x.size(); ++i) {
      g[i] = std::exp(x[i]);
      s += g[i];
    }
    const double inv = 1.0 / s;
    for (double& gi : g) gi *= inv;
    return std::log(s);
  }
};

/// sum_{i < n-1} 100 (x_{i+1} - x_i^2)^2 + (1 - x_i)^2, n = 10,000.
struct Rosenbrock {
  static constexpr std::string_view name = "rosenbrock";
  std::vector<double> point = uniform(10'000, -1.5, 1.5, 3);

  template <class Tool, class T = typename Tool::Scalar>
  T record(std::span<const std::type_identity_t<T>> x) const {
    T f = 0.0;
    for (std::size_t i = 0; i + 1 < x.size(); ++i) {
      T a = x[i + 1] - x[i] * x[i];
      T b = 1.0 - x[i];
      f += 100.0 * a * a + b * b;
    }
    return f;
  }
  double adjoint(std::span<const double> x, std::span<double> g) const {
    double f = 0.0;
    for (double& gi : g) gi = 0.0;
    for (std::size_t i = 0; i + 1 < x.size(); ++i) {
      const double a = x[i + 1] - x[i] * x[i];
      const double b = 1.0 - x[i];
      f += 100.0 * a * a + b * b;
      g[i] += -400.0 * a * x[i] - 2.0 * b;
      g[i + 1] += 200.0 * a;
    }
    return f;
  }
};

/// Inputs mu, sigma; 10,000 fixed data y_i;
/// sum_i -0.5 ((y_i - mu) / sigma)^2 - log(sigma) - 0.5 log(2 pi).
struct NormalLpdf {
  static constexpr std::string_view name = "normal_lpdf";
  static constexpr double half_log_2pi = 0.91893853320467274178;  // 0.5 log(2 pi)
  std::vector<double> point{0.3, 1.7};  // mu, sigma
  std::vector<double> y = uniform(10'000, -3.0, 3.0, 4);

  template <class Tool, class T = typename Tool::Scalar>
  T record(std::span<const std::type_identity_t<T>> p) const {
    const T& mu = p[0];
    const T& sigma = p[1];
    T lp = 0.0;
    for (double yi : y) {
      T z = (yi - mu) / sigma;
      lp += -0.5 * z * z - log(sigma) - half_log_2pi;
    }
    return lp;
  }
  double adjoint(std::span<const double> p, std::span<double> g) const {
    const double mu = p[0];
    const double sigma = p[1];
    const double inv = 1.0 / sigma;
    double sz = 0.0;
    double szz = 0.0;
    for (double yi : y) {
      const double z = (yi - mu) * inv;
      sz += z;
      szz += z * z;
    }
    const double n = static_cast<double>(y.size());
    g[0] = sz * inv;
    g[1] = (szz - n) * inv;
    return -0.5 * szz - n * (std::log(sigma) + half_log_2pi);
  }
};

/// Parameters W1 (64x64, row-major), b1 (64), W2 (64), b2, in that order (4,225); fixed x (64);
/// f = sum_j W2_j relu(sum_k W1_jk x_k + b1_j) + b2.
struct ReluMlp {
  static constexpr std::string_view name = "relu_mlp";
  static constexpr std::size_t width = 64;
  static constexpr std::size_t w1 = 0, b1 = width * width, w2 = b1 + width, b2 = w2 + width;
  std::vector<double> point = uniform(b2 + 1, -0.25, 0.25, 5);
  std::vector<double> x = uniform(width, -1.0, 1.0, 6);

  template <class Tool, class T = typename Tool::Scalar>
  T record(std::span<const std::type_identity_t<T>> p) const {
    T f = p[b2];
    for (std::size_t j = 0; j < width; ++j) {
      T h = p[b1 + j];
      for (std::size_t k = 0; k < width; ++k) h += p[w1 + j * width + k] * x[k];
      f += p[w2 + j] * Tool::relu(h);
    }
    return f;
  }
  double adjoint(std::span<const double> p, std::span<double> g) const {
    double f = p[b2];
    g[b2] = 1.0;
    for (std::size_t j = 0; j < width; ++j) {
      double h = p[b1 + j];
      for (std::size_t k = 0; k < width; ++k) h += p[w1 + j * width + k] * x[k];
      const double r = h > 0.0 ? h : 0.0;
      f += p[w2 + j] * r;
      g[w2 + j] = r;
      const double dh = h > 0.0 ? p[w2 + j] : 0.0;  // relu'(0) = 0
      g[b1 + j] = dh;
      for (std::size_t k = 0; k < width; ++k) g[w1 + j * width + k] = dh * x[k];
    }
    return f;
  }
};

/// The chain: 1,000 operations on one value: 333 rounds of multiply (by a constant), add (a
/// constant), relu, then one more multiply. The value stays near 0.5, so every relu passes it on.
struct Chain {
  static constexpr std::string_view name = "chain";
  static constexpr std::size_t rounds = 333;
  static constexpr std::size_t ops = 3 * rounds + 1;
  static constexpr double scale = 0.999;
  static constexpr double shift = 0.0005;
  std::vector<double> point{0.5};

  template <class Tool, class T = typename Tool::Scalar>
  T record(std::span<const std::type_identity_t<T>> p) const {
    T v = p[0];
    for (std::size_t r = 0; r < rounds; ++r) {
      v = v * scale;
      v = v + shift;
      v = Tool::relu(v);
    }
    return v * scale;
  }
  double adjoint(std::span<const double> p, std::span<double> g) const {
    // Forward, remembering which relus passed; backward, the product of the local derivatives.
    double v = p[0];
    bool passed[rounds];
    for (std::size_t r = 0; r < rounds; ++r) {
      v = v * scale + shift;
      passed[r] = v > 0.0;
      v = passed[r] ? v : 0.0;
    }
    double d = scale;
    for (std::size_t r = rounds; r-- > 0;) d = passed[r] ? d * scale : 0.0;
    g[0] = d;
    return v * scale;
  }
};

// The four workloads of size n again at n = 2,000 (the first 2,000 inputs or data): their tapes
// then fit in a core's L2 cache, so the comparison says more about the cost per primitive and less
// about memory traffic, which a loaded machine inflates.
struct SumsqSmall : Sumsq {
  static constexpr std::string_view name = "sumsq_n2000";
  SumsqSmall() { point.resize(2'000); }
};
struct LogsumexpSmall : Logsumexp {
  static constexpr std::string_view name = "logsumexp_n2000";
  LogsumexpSmall() { point.resize(2'000); }
};
struct RosenbrockSmall : Rosenbrock {
  static constexpr std::string_view name = "rosenbrock_n2000";
  RosenbrockSmall() { point.resize(2'000); }
};
struct NormalLpdfSmall : NormalLpdf {
  static constexpr std::string_view name = "normal_lpdf_n2000";
  NormalLpdfSmall() { y.resize(2'000); }
};

/// Largest |a - b| / (1 + |b|) over two gradients: a benchmark whose gradient is wrong is skipped.
inline double gradient_error(std::span<const double> a, std::span<const double> b) {
  double e = 0.0;
  for (std::size_t i = 0; i < a.size(); ++i) {
    const double d = std::abs(a[i] - b[i]) / (1.0 + std::abs(b[i]));
    e = d > e || std::isnan(d) ? d : e;
  }
  return e;
}
inline constexpr double kGradientTolerance = 1e-9;

}  // namespace tgbench
