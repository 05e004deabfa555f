// Layers: Linear, Sequential, the activation modules and Dropout.
#pragma once

#include <nn/init.hpp>
#include <nn/module.hpp>

#include <autodiff/rules.hpp>

#include <cstdint>
#include <initializer_list>
#include <memory>
#include <optional>
#include <random>
#include <string>
#include <vector>

namespace tg::nn {

struct LinearOptions {
  bool bias = true;
  /// Default: He (Kaiming) uniform with ReLU's gain sqrt(2), U(-sqrt(6/in), sqrt(6/in)), which keeps
  /// the variance of activations through ReLU layers. For tanh or sigmoid networks use
  /// Init::xavier_uniform(). Biases start at zero.
  Init init = Init::kaiming_uniform();
  /// Seed of the initialisation; by default the next seed of tg::nn::manual_seed's generator.
  std::optional<std::uint64_t> seed{};
  Dtype dtype = Dtype::f32;
};

/// y = x W^T + b, W of shape [out, in] (PyTorch's layout), b of shape [out]; x is [batch, in].
class Linear : public Module {
 public:
  Linear(std::int64_t in, std::int64_t out, const LinearOptions& options = {});
  Tensor forward(const Tensor& x) override;
  std::string describe() const override;

  Tensor& weight() noexcept { return weight_; }
  /// Throws tg::ValueError for a layer made without bias.
  Tensor& bias();
  std::int64_t in_features() const noexcept { return in_; }
  std::int64_t out_features() const noexcept { return out_; }

 private:
  std::int64_t in_;
  std::int64_t out_;
  Tensor weight_;
  Tensor bias_;  // undefined without bias
};

/// Modules applied in order; children are named "0", "1", ...
class Sequential : public Module {
 public:
  Sequential() = default;
  Sequential(std::initializer_list<std::shared_ptr<Module>> modules);
  /// Appends a module and returns *this.
  Sequential& add(std::shared_ptr<Module> m);
  Tensor forward(const Tensor& x) override;
  std::string describe() const override { return "Sequential"; }
  std::size_t size() const noexcept { return children().size(); }
  Module& operator[](std::size_t i) const { return *children().at(i).second; }
};

/// Counts, per unit (last axis), whether its input was ever positive since the last reset: a unit
/// whose input never was is dead for ReLU (its gradient is zero for every sample seen).
struct UnitStats {
  std::vector<std::uint8_t> ever_positive;
  std::int64_t samples = 0;

  std::int64_t units() const noexcept { return static_cast<std::int64_t>(ever_positive.size()); }
  std::int64_t dead() const noexcept;
  double dead_fraction() const noexcept;
};

/// Base of the activation modules: applies one elementwise primitive of the tape, and can track
/// which units are dead (see UnitStats).
class Activation : public Module {
 public:
  Tensor forward(const Tensor& x) final;
  /// Starts or stops recording UnitStats (off by default: it costs a pass over the input).
  void track_units(bool on) noexcept { track_ = on; }
  bool tracking_units() const noexcept { return track_; }
  const UnitStats& unit_stats() const noexcept { return stats_; }
  void reset_unit_stats() noexcept { stats_ = {}; }

 protected:
  virtual Tensor activate(const Tensor& x) const = 0;

 private:
  bool track_ = false;
  UnitStats stats_;
};

/// max(0, x). ReLU({.at_zero = 1}) chooses relu'(0) (default: the scope's, else 0).
class ReLU : public Activation {
 public:
  explicit ReLU(const ReluOptions& o = {}) : options_(o) {}
  std::string describe() const override;

 protected:
  Tensor activate(const Tensor& x) const override { return relu(x, options_); }

 private:
  ReluOptions options_;
};

/// x for x >= 0, scale * x below. LeakyReLU(0.01) or LeakyReLU({.scale = 0.1, .at_zero = 1}).
class LeakyReLU : public Activation {
 public:
  explicit LeakyReLU(double scale = 0.01) : options_{scale, std::nullopt} {}
  explicit LeakyReLU(const LeakyReluOptions& o) : options_(o) {}
  std::string describe() const override;

 protected:
  Tensor activate(const Tensor& x) const override { return leaky_relu(x, options_); }

 private:
  LeakyReluOptions options_;
};

/// x for x > 0, alpha (exp(x) - 1) below. ELU(1.0) or ELU({.alpha = 0.5, .at_zero = 1}).
class ELU : public Activation {
 public:
  explicit ELU(double alpha = 1.0) : options_{alpha, std::nullopt} {}
  explicit ELU(const EluOptions& o) : options_(o) {}
  std::string describe() const override;

 protected:
  Tensor activate(const Tensor& x) const override { return elu(x, options_); }

 private:
  EluOptions options_;
};

class Sigmoid : public Activation {
 public:
  std::string describe() const override { return "Sigmoid"; }

 protected:
  Tensor activate(const Tensor& x) const override { return sigmoid(x); }
};

class Tanh : public Activation {
 public:
  std::string describe() const override { return "Tanh"; }

 protected:
  Tensor activate(const Tensor& x) const override { return tanh(x); }
};

/// The exact (erf) GELU.
class GELU : public Activation {
 public:
  std::string describe() const override { return "GELU"; }

 protected:
  Tensor activate(const Tensor& x) const override { return gelu(x); }
};

class Softplus : public Activation {
 public:
  std::string describe() const override { return "Softplus"; }

 protected:
  Tensor activate(const Tensor& x) const override { return softplus(x); }
};

/// In training mode zeroes each element with probability p and scales the rest by 1 / (1 - p);
/// in evaluation mode the identity. The masks come from one seeded generator that each call draws
/// on, so the masks of successive calls (and of layers with nearby seeds) are independent.
class Dropout : public Module {
 public:
  explicit Dropout(double p = 0.5, std::optional<std::uint64_t> seed = std::nullopt);
  Tensor forward(const Tensor& x) override;
  std::string describe() const override;

 private:
  double p_;
  std::mt19937_64 generator_;
};

/// Units whose input was never positive, per activation module of a model, with dotted names.
/// For ReLU these units are dead (zero gradient for every sample seen); for leaky ReLU and ELU they
/// sit on the negative branch but still pass a (small) gradient; for sigmoid, tanh and the other
/// smooth activations the count only says where the inputs lie.
struct DeadUnits {
  std::string name;
  std::string layer;  ///< describe() of the module
  std::int64_t units = 0;
  std::int64_t dead = 0;
  double fraction = 0;
};
/// Turns unit tracking on or off for every activation module of `model`.
void track_units(Module& model, bool on);
/// Resets every activation module's UnitStats.
void reset_unit_stats(Module& model);
std::vector<DeadUnits> dead_units(Module& model);

/// The 2-norm of each parameter's accumulated gradient (per layer, for vanishing gradients).
struct GradNorm {
  std::string name;
  double norm = 0;
};
std::vector<GradNorm> gradient_norms(const Module& model);

/// A small aligned table of either, for printing.
std::string format_dead_units(const std::vector<DeadUnits>& rows);
std::string format_gradient_norms(const std::vector<GradNorm>& rows);

}  // namespace tg::nn
