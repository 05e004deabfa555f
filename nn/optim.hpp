// Gradient-descent optimizers, learning-rate schedules and gradient clipping. An optimizer updates
// the parameters it was given, in place, from their accumulated gradients.
#pragma once

#include <nn/module.hpp>

#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <vector>

namespace tg::nn {

class Optimizer {
 public:
  /// `params`: usually model.named_parameters(); the names key the optimizer's saved state.
  Optimizer(std::vector<NamedTensor> params, double learning_rate);
  virtual ~Optimizer() = default;
  Optimizer(const Optimizer&) = delete;
  Optimizer& operator=(const Optimizer&) = delete;

  /// One update of every parameter from its gradient.
  void step();
  /// Sets every parameter's gradient to zero.
  void zero_grad();

  double learning_rate() const noexcept { return lr_; }
  /// Throws tg::ValueError unless lr is finite and >= 0.
  void set_learning_rate(double lr);
  /// Updates done so far.
  std::int64_t steps() const noexcept { return steps_; }
  const std::vector<NamedTensor>& params() const noexcept { return params_; }

  /// "sgd", "adam", "adamw".
  virtual std::string kind() const = 0;
  /// The state to checkpoint: per-parameter buffers named "<param>.<buffer>" (e.g.
  /// "0.weight.momentum"), and scalars (steps, learning rate).
  std::vector<NamedTensor> state_tensors() const;
  std::map<std::string, std::string> state_scalars() const;
  /// Restores what state_tensors()/state_scalars() gave. Validates names and shapes first and
  /// throws tg::ValueError without changing anything on a mismatch.
  void load_state(const std::vector<NamedTensor>& tensors, const std::map<std::string, std::string>& scalars);

 protected:
  /// Updates parameter i (its value p, gradient g, state buffers) for step number t (1-based).
  virtual void update(std::size_t i, Tensor& p, const Tensor& g, std::int64_t t) = 0;
  /// Names of the per-parameter state buffers, e.g. {"momentum"}.
  virtual std::vector<std::string> buffer_names() const = 0;
  /// Buffer b of parameter i (created zero-filled, like the parameter, on first use).
  Tensor& buffer(std::size_t i, std::size_t b);
  /// Whether buffer b of parameter i exists yet.
  bool has_buffer(std::size_t i, std::size_t b) const noexcept;

 private:
  std::vector<NamedTensor> params_;
  std::vector<std::vector<Tensor>> buffers_;  // [param][buffer]
  double lr_;
  std::int64_t steps_ = 0;
};

struct SGDOptions {
  double lr = 0.01;
  double momentum = 0.0;
  double dampening = 0.0;
  bool nesterov = false;
  double weight_decay = 0.0;
};

/// Stochastic gradient descent, the update of the lecture notes:
///
///     W* = W - alpha * dE/dW
///
/// with alpha the learning rate. Options (PyTorch's definitions): weight decay adds
/// weight_decay * W to dE/dW first; momentum keeps v = momentum * v + (1 - dampening) * g (v = g on
/// the first step) and steps along v, or along g + momentum * v with Nesterov.
class SGD : public Optimizer {
 public:
  SGD(std::vector<NamedTensor> params, const SGDOptions& o = {});
  std::string kind() const override { return "sgd"; }

 protected:
  void update(std::size_t i, Tensor& p, const Tensor& g, std::int64_t t) override;
  std::vector<std::string> buffer_names() const override;

 private:
  SGDOptions o_;
};

struct AdamOptions {
  double lr = 1e-3;
  double beta1 = 0.9;
  double beta2 = 0.999;
  double eps = 1e-8;
  double weight_decay = 0.0;  ///< Adam: L2 added to the gradient; AdamW: decoupled (default 0.01)
};

/// Adam (Kingma and Ba 2015): m = b1 m + (1 - b1) g, v = b2 v + (1 - b2) g^2,
/// W -= lr * (m / (1 - b1^t)) / (sqrt(v / (1 - b2^t)) + eps).
class Adam : public Optimizer {
 public:
  Adam(std::vector<NamedTensor> params, const AdamOptions& o = {});
  std::string kind() const override { return decoupled_ ? "adamw" : "adam"; }

 protected:
  Adam(std::vector<NamedTensor> params, const AdamOptions& o, bool decoupled);
  void update(std::size_t i, Tensor& p, const Tensor& g, std::int64_t t) override;
  std::vector<std::string> buffer_names() const override { return {"exp_avg", "exp_avg_sq"}; }

 private:
  AdamOptions o_;
  bool decoupled_;
};

/// AdamW (Loshchilov and Hutter 2019): Adam with decoupled weight decay, W -= lr * wd * W before the
/// Adam step. Default weight_decay 0.01.
class AdamW : public Adam {
 public:
  AdamW(std::vector<NamedTensor> params, AdamOptions o = {.weight_decay = 0.01});
};

/// Multiplies the learning rate by gamma every step_size epochs (call step() once per epoch).
class StepLR {
 public:
  StepLR(Optimizer& opt, int step_size, double gamma = 0.1);
  void step();
  double learning_rate() const noexcept { return opt_.learning_rate(); }

 private:
  Optimizer& opt_;
  double base_;
  int step_size_;
  double gamma_;
  int epoch_ = 0;
};

/// Cosine annealing from the initial rate to eta_min over t_max epochs (call step() once per epoch):
/// lr = eta_min + (base - eta_min) (1 + cos(pi epoch / t_max)) / 2.
class CosineLR {
 public:
  CosineLR(Optimizer& opt, int t_max, double eta_min = 0.0);
  void step();
  double learning_rate() const noexcept { return opt_.learning_rate(); }

 private:
  Optimizer& opt_;
  double base_;
  int t_max_;
  double eta_min_;
  int epoch_ = 0;
};

/// Scales all gradients together so that their global 2-norm is at most max_norm; returns the norm
/// before clipping.
double clip_grad_norm(const std::vector<Tensor>& params, double max_norm);

}  // namespace tg::nn
