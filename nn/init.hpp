// Initialisers for weights of shape [fan_out, fan_in] (a Linear layer's layout). Each fills an owned
// tensor in place from a seeded generator: the same seed gives the same weights.
#pragma once

#include <autodiff/tensor.hpp>

#include <cstdint>
#include <string>

namespace tg::nn {

/// Gain for ReLU: sqrt(2) (He et al. 2015).
double relu_gain() noexcept;
/// Gain for leaky ReLU with negative slope `scale`: sqrt(2 / (1 + scale^2)).
double leaky_relu_gain(double scale) noexcept;
/// Gain for tanh: 5/3 (PyTorch's calculate_gain).
double tanh_gain() noexcept;

/// He / Kaiming normal: N(0, std^2), std = gain / sqrt(fan_in).
void kaiming_normal_(Tensor& w, double gain, std::uint64_t seed);
/// He / Kaiming uniform: U(-b, b), b = gain * sqrt(3 / fan_in).
void kaiming_uniform_(Tensor& w, double gain, std::uint64_t seed);
/// Xavier / Glorot normal: N(0, std^2), std = gain * sqrt(2 / (fan_in + fan_out)).
void xavier_normal_(Tensor& w, double gain, std::uint64_t seed);
/// Xavier / Glorot uniform: U(-b, b), b = gain * sqrt(6 / (fan_in + fan_out)).
void xavier_uniform_(Tensor& w, double gain, std::uint64_t seed);
void zeros_(Tensor& w);
void constant_(Tensor& w, double value);

/// An initialiser as a value, for layer options.
struct Init {
  enum class Kind { kaiming_normal, kaiming_uniform, xavier_normal, xavier_uniform, constant };
  Kind kind = Kind::kaiming_uniform;
  double gain = 1.4142135623730951;  ///< for kaiming_* and xavier_*
  double value = 0.0;                ///< for constant

  static Init kaiming_normal(double gain = relu_gain()) { return {Kind::kaiming_normal, gain, 0}; }
  static Init kaiming_uniform(double gain = relu_gain()) { return {Kind::kaiming_uniform, gain, 0}; }
  static Init xavier_normal(double gain = 1.0) { return {Kind::xavier_normal, gain, 0}; }
  static Init xavier_uniform(double gain = 1.0) { return {Kind::xavier_uniform, gain, 0}; }
  static Init zeros() { return {Kind::constant, 0, 0}; }
  static Init constant(double v) { return {Kind::constant, 0, v}; }

  void apply(Tensor& w, std::uint64_t seed) const;
  std::string describe() const;
};

}  // namespace tg::nn
