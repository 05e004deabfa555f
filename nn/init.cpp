#include <nn/init.hpp>

#include <autodiff/error.hpp>

#include <cmath>
#include <fmt/format.h>

namespace tg::nn {

double relu_gain() noexcept { return std::sqrt(2.0); }
double leaky_relu_gain(double scale) noexcept { return std::sqrt(2.0 / (1.0 + scale * scale)); }
double tanh_gain() noexcept { return 5.0 / 3.0; }

namespace {
struct Fans {
  double in;
  double out;
};

Fans fans(const Tensor& w, std::string_view op) {
  if (w.rank() < 1) throw ShapeError(fmt::format("{}: needs a tensor of rank >= 1, got {}", op, w.shape().str()));
  if (w.rank() == 1) return {static_cast<double>(w.shape()[0]), static_cast<double>(w.shape()[0])};
  const double receptive = static_cast<double>(w.numel() / (w.shape()[0] * w.shape()[1] == 0 ? 1 : w.shape()[0] * w.shape()[1]));
  return {static_cast<double>(w.shape()[1]) * receptive, static_cast<double>(w.shape()[0]) * receptive};
}

void check(double gain, std::string_view op) {
  if (!std::isfinite(gain) || gain < 0) throw ValueError(fmt::format("{}: gain must be finite and >= 0, got {}", op, gain));
}

void normal_(Tensor& w, double stddev, std::uint64_t seed) {
  w.copy_(Tensor::randn(w.shape(), seed, w.dtype(), 0.0, stddev));
}
void uniform_(Tensor& w, double bound, std::uint64_t seed) {
  w.copy_(Tensor::rand(w.shape(), seed, w.dtype(), -bound, bound));
}
}  // namespace

void kaiming_normal_(Tensor& w, double gain, std::uint64_t seed) {
  check(gain, "kaiming_normal_");
  normal_(w, gain / std::sqrt(fans(w, "kaiming_normal_").in), seed);
}
void kaiming_uniform_(Tensor& w, double gain, std::uint64_t seed) {
  check(gain, "kaiming_uniform_");
  uniform_(w, gain * std::sqrt(3.0 / fans(w, "kaiming_uniform_").in), seed);
}
void xavier_normal_(Tensor& w, double gain, std::uint64_t seed) {
  check(gain, "xavier_normal_");
  const Fans f = fans(w, "xavier_normal_");
  normal_(w, gain * std::sqrt(2.0 / (f.in + f.out)), seed);
}
void xavier_uniform_(Tensor& w, double gain, std::uint64_t seed) {
  check(gain, "xavier_uniform_");
  const Fans f = fans(w, "xavier_uniform_");
  uniform_(w, gain * std::sqrt(6.0 / (f.in + f.out)), seed);
}
void zeros_(Tensor& w) { w.fill_(0.0); }
void constant_(Tensor& w, double value) { w.fill_(value); }

void Init::apply(Tensor& w, std::uint64_t seed) const {
  switch (kind) {
    case Kind::kaiming_normal: kaiming_normal_(w, gain, seed); return;
    case Kind::kaiming_uniform: kaiming_uniform_(w, gain, seed); return;
    case Kind::xavier_normal: xavier_normal_(w, gain, seed); return;
    case Kind::xavier_uniform: xavier_uniform_(w, gain, seed); return;
    case Kind::constant: constant_(w, value); return;
  }
}

std::string Init::describe() const {
  switch (kind) {
    case Kind::kaiming_normal: return fmt::format("kaiming_normal(gain={:.4g})", gain);
    case Kind::kaiming_uniform: return fmt::format("kaiming_uniform(gain={:.4g})", gain);
    case Kind::xavier_normal: return fmt::format("xavier_normal(gain={:.4g})", gain);
    case Kind::xavier_uniform: return fmt::format("xavier_uniform(gain={:.4g})", gain);
    case Kind::constant: return fmt::format("constant({})", value);
  }
  return "unknown";
}

}  // namespace tg::nn
