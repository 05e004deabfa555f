#include <nn/optim.hpp>

#include <algorithm>
#include <charconv>
#include <cmath>
#include <fmt/format.h>
#include <numbers>

namespace tg::nn {

namespace {
void check_rate(double v, std::string_view what) {
  if (!std::isfinite(v) || v < 0) throw ValueError(fmt::format("{} must be finite and >= 0, got {}", what, v));
}

// Runs f(p, g, buffers...) elementwise as float or double.
template <class F>
void for_elements(Tensor& p, const Tensor& g, F&& f) {
  if (p.dtype() == Dtype::f32) f(p.data<float>(), g.data<float>());
  else f(p.data<double>(), g.data<double>());
}
}  // namespace

// ---- Optimizer -------------------------------------------------------------------------------------

Optimizer::Optimizer(std::vector<NamedTensor> params, double lr) : params_(std::move(params)), lr_(lr) {
  check_rate(lr, "Optimizer: learning rate");
  for (const NamedTensor& p : params_) {
    if (!p.tensor.is_owned() || !p.tensor.has_grad()) {
      throw ValueError(fmt::format("Optimizer: '{}' is not a parameter (an owned tensor that requires grad)", p.name));
    }
  }
  buffers_.resize(params_.size());
}

void Optimizer::set_learning_rate(double lr) {
  check_rate(lr, "set_learning_rate");
  lr_ = lr;
}

Tensor& Optimizer::buffer(std::size_t i, std::size_t b) {
  auto& bufs = buffers_[i];
  if (bufs.size() <= b) bufs.resize(buffer_names().size());
  if (!bufs[b].defined()) bufs[b] = Tensor::zeros(params_[i].tensor.shape(), params_[i].tensor.dtype());
  return bufs[b];
}

bool Optimizer::has_buffer(std::size_t i, std::size_t b) const noexcept {
  return b < buffers_[i].size() && buffers_[i][b].defined();
}

void Optimizer::step() {
  ++steps_;
  for (std::size_t i = 0; i < params_.size(); ++i) {
    Tensor& p = params_[i].tensor;
    update(i, p, p.grad(), steps_);
  }
}

void Optimizer::zero_grad() {
  for (NamedTensor& p : params_) p.tensor.zero_grad();
}

std::vector<NamedTensor> Optimizer::state_tensors() const {
  std::vector<NamedTensor> out;
  const auto names = buffer_names();
  for (std::size_t i = 0; i < params_.size(); ++i) {
    for (std::size_t b = 0; b < names.size(); ++b) {
      if (b < buffers_[i].size() && buffers_[i][b].defined()) {
        out.push_back({params_[i].name + "." + names[b], buffers_[i][b]});
      }
    }
  }
  return out;
}

std::map<std::string, std::string> Optimizer::state_scalars() const {
  return {{"kind", kind()}, {"steps", std::to_string(steps_)}, {"lr", fmt::format("{}", lr_)}};
}

void Optimizer::load_state(const std::vector<NamedTensor>& tensors, const std::map<std::string, std::string>& scalars) {
  const auto get = [&](const std::string& k) -> const std::string& {
    auto it = scalars.find(k);
    if (it == scalars.end()) throw ValueError(fmt::format("Optimizer::load_state: missing '{}'", k));
    return it->second;
  };
  if (get("kind") != kind()) {
    throw ValueError(fmt::format("Optimizer::load_state: state is for '{}', this optimizer is '{}'", get("kind"), kind()));
  }
  std::int64_t steps = 0;
  const std::string& s = get("steps");
  if (std::from_chars(s.data(), s.data() + s.size(), steps).ec != std::errc{} || steps < 0) {
    throw ValueError(fmt::format("Optimizer::load_state: bad step count '{}'", s));
  }
  const double lr = std::strtod(get("lr").c_str(), nullptr);
  check_rate(lr, "Optimizer::load_state: learning rate");
  // Match every tensor to a (parameter, buffer) before changing anything.
  const auto names = buffer_names();
  std::vector<std::vector<Tensor>> fresh(params_.size(), std::vector<Tensor>(names.size()));
  for (const NamedTensor& t : tensors) {
    bool found = false;
    for (std::size_t i = 0; i < params_.size() && !found; ++i) {
      for (std::size_t b = 0; b < names.size() && !found; ++b) {
        if (t.name != params_[i].name + "." + names[b]) continue;
        if (!(t.tensor.shape() == params_[i].tensor.shape())) {
          throw ValueError(fmt::format("Optimizer::load_state: '{}' has shape {}, the parameter {}", t.name,
                                       t.tensor.shape().str(), params_[i].tensor.shape().str()));
        }
        Tensor copy = Tensor::zeros(params_[i].tensor.shape(), params_[i].tensor.dtype());
        copy.copy_(t.tensor);
        fresh[i][b] = copy;
        found = true;
      }
    }
    if (!found) throw ValueError(fmt::format("Optimizer::load_state: '{}' matches no parameter buffer", t.name));
  }
  buffers_ = std::move(fresh);
  steps_ = steps;
  lr_ = lr;
}

// ---- SGD ---------------------------------------------------------------------------------------------

SGD::SGD(std::vector<NamedTensor> params, const SGDOptions& o) : Optimizer(std::move(params), o.lr), o_(o) {
  check_rate(o.momentum, "SGD: momentum");
  check_rate(o.dampening, "SGD: dampening");
  check_rate(o.weight_decay, "SGD: weight_decay");
  if (o.nesterov && (o.momentum <= 0 || o.dampening != 0)) {
    throw ValueError("SGD: Nesterov momentum needs momentum > 0 and dampening 0");
  }
}

std::vector<std::string> SGD::buffer_names() const {
  return o_.momentum > 0 ? std::vector<std::string>{"momentum"} : std::vector<std::string>{};
}

void SGD::update(std::size_t i, Tensor& p, const Tensor& g, std::int64_t) {
  const double lr = learning_rate();
  const double wd = o_.weight_decay;
  if (o_.momentum == 0) {
    for_elements(p, g, [&](auto* w, const auto* dw) {
      using T = std::remove_pointer_t<decltype(w)>;
      const T a = static_cast<T>(lr);
      const T d = static_cast<T>(wd);
      const std::int64_t n = p.numel();
      for (std::int64_t k = 0; k < n; ++k) w[k] -= a * (dw[k] + d * w[k]);  // W* = W - alpha dE/dW
    });
    return;
  }
  const bool first = !has_buffer(i, 0);  // the momentum buffer starts as the first gradient
  Tensor& v = buffer(i, 0);
  for_elements(p, g, [&](auto* w, const auto* dw) {
    using T = std::remove_pointer_t<decltype(w)>;
    T* m = v.data<T>();
    const T a = static_cast<T>(lr);
    const T d = static_cast<T>(wd);
    const T mu = static_cast<T>(o_.momentum);
    const T damp = static_cast<T>(1.0 - o_.dampening);
    const bool nesterov = o_.nesterov;
    const std::int64_t n = p.numel();
    for (std::int64_t k = 0; k < n; ++k) {
      const T gk = dw[k] + d * w[k];
      m[k] = first ? gk : mu * m[k] + damp * gk;
      w[k] -= a * (nesterov ? gk + mu * m[k] : m[k]);
    }
  });
}

// ---- Adam --------------------------------------------------------------------------------------------

Adam::Adam(std::vector<NamedTensor> params, const AdamOptions& o) : Adam(std::move(params), o, false) {}

Adam::Adam(std::vector<NamedTensor> params, const AdamOptions& o, bool decoupled)
    : Optimizer(std::move(params), o.lr), o_(o), decoupled_(decoupled) {
  check_rate(o.weight_decay, "Adam: weight_decay");
  if (!(o.beta1 >= 0 && o.beta1 < 1) || !(o.beta2 >= 0 && o.beta2 < 1)) {
    throw ValueError(fmt::format("Adam: betas must be in [0, 1), got {} and {}", o.beta1, o.beta2));
  }
  if (!(o.eps > 0)) throw ValueError(fmt::format("Adam: eps must be > 0, got {}", o.eps));
}

void Adam::update(std::size_t i, Tensor& p, const Tensor& g, std::int64_t t) {
  Tensor& m1 = buffer(i, 0);
  Tensor& m2 = buffer(i, 1);
  const double lr = learning_rate();
  const double c1 = 1.0 - std::pow(o_.beta1, static_cast<double>(t));
  const double c2 = 1.0 - std::pow(o_.beta2, static_cast<double>(t));
  for_elements(p, g, [&](auto* w, const auto* dw) {
    using T = std::remove_pointer_t<decltype(w)>;
    T* m = m1.data<T>();
    T* v = m2.data<T>();
    const T b1 = static_cast<T>(o_.beta1);
    const T b2 = static_cast<T>(o_.beta2);
    const T step = static_cast<T>(lr / c1);
    const T root_c2 = static_cast<T>(std::sqrt(c2));
    const T eps = static_cast<T>(o_.eps);
    const T wd = static_cast<T>(o_.weight_decay);
    const T decay = static_cast<T>(lr * o_.weight_decay);
    const bool decoupled = decoupled_;
    const std::int64_t n = p.numel();
    for (std::int64_t k = 0; k < n; ++k) {
      T gk = dw[k];
      if (decoupled) w[k] -= decay * w[k];
      else gk += wd * w[k];
      m[k] = b1 * m[k] + (T(1) - b1) * gk;
      v[k] = b2 * v[k] + (T(1) - b2) * gk * gk;
      w[k] -= step * m[k] / (std::sqrt(v[k]) / root_c2 + eps);
    }
  });
}

AdamW::AdamW(std::vector<NamedTensor> params, AdamOptions o) : Adam(std::move(params), o, true) {}

// ---- Schedules ----------------------------------------------------------------------------------------

StepLR::StepLR(Optimizer& opt, int step_size, double gamma)
    : opt_(opt), base_(opt.learning_rate()), step_size_(step_size), gamma_(gamma) {
  if (step_size < 1) throw ValueError(fmt::format("StepLR: step_size must be >= 1, got {}", step_size));
  check_rate(gamma, "StepLR: gamma");
}

void StepLR::step() {
  ++epoch_;
  opt_.set_learning_rate(base_ * std::pow(gamma_, epoch_ / step_size_));
}

CosineLR::CosineLR(Optimizer& opt, int t_max, double eta_min)
    : opt_(opt), base_(opt.learning_rate()), t_max_(t_max), eta_min_(eta_min) {
  if (t_max < 1) throw ValueError(fmt::format("CosineLR: t_max must be >= 1, got {}", t_max));
  check_rate(eta_min, "CosineLR: eta_min");
}

void CosineLR::step() {
  epoch_ = std::min(epoch_ + 1, t_max_);
  const double c = std::cos(std::numbers::pi * epoch_ / t_max_);
  opt_.set_learning_rate(eta_min_ + (base_ - eta_min_) * (1 + c) / 2);
}

double clip_grad_norm(const std::vector<Tensor>& params, double max_norm) {
  check_rate(max_norm, "clip_grad_norm: max_norm");
  double sq = 0;
  for (const Tensor& p : params) {  // no list of the gradients: a training loop calls this every step
    const Tensor g = p.grad();
    for (std::int64_t k = 0; k < g.numel(); ++k) sq += g.at(k) * g.at(k);
  }
  const double norm = std::sqrt(sq);
  if (norm > max_norm && norm > 0) {
    const double s = max_norm / norm;
    for (const Tensor& p : params) {
      Tensor g = p.grad();
      if (g.dtype() == Dtype::f32) {
        float* d = g.data<float>();
        for (std::int64_t k = 0; k < g.numel(); ++k) d[k] = static_cast<float>(d[k] * s);
      } else {
        double* d = g.data<double>();
        for (std::int64_t k = 0; k < g.numel(); ++k) d[k] *= s;
      }
    }
  }
  return norm;
}

}  // namespace tg::nn
