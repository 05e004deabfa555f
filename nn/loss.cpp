#include <nn/loss.hpp>

#include <autodiff/tensor_ops.hpp>

#include <algorithm>
#include <cmath>
#include <fmt/format.h>

namespace tg::nn {

namespace {
void check_same(const Tape& tape, std::string_view op, const Tensor& a, const Tensor& b) {
  detail::check_operands(tape, op, a, &b);
  if (!(a.shape() == b.shape())) {
    throw ShapeError(fmt::format("{}: prediction {} and target {} must have the same shape", op,
                                 a.shape().str(), b.shape().str()));
  }
}

double scale_of(Reduction r, std::int64_t n) { return r == Reduction::mean ? 1.0 / static_cast<double>(std::max<std::int64_t>(n, 1)) : 1.0; }

// A fused loss: value = scale * sum_i term(x_i, t_i); d/dx_i = scale * dx(x_i, t_i), d/dt_i =
// scale * dt(x_i, t_i). `Pointwise` gives term, dx and dt.
template <class T, class Pointwise>
Tensor pointwise_loss(std::string_view name, const Tensor& x, const Tensor& t, double scale, Tape& tape) {
  const bool grad = tape.recording() && (x.has_grad() || t.has_grad());
  Tensor y = Tensor::recorded(tape, Shape{}, dtype_of<T>(), grad);
  const T* xv = x.data_unchecked<T>();
  const T* tv = t.data_unchecked<T>();
  double acc = 0;
  for (std::int64_t i = 0; i < x.numel(); ++i) acc += Pointwise::term(static_cast<double>(xv[i]), static_cast<double>(tv[i]));
  *y.data_unchecked<T>() = static_cast<T>(acc * scale);
  if (tape.anomaly() && !std::isfinite(acc)) [[unlikely]] {
    tape.report_anomaly(name, "forward", fmt::format("loss is {}", acc));
  }
  if (grad) {
    tape.record_backward([x, t, y, scale](Tape& tp) {
      const T* gy = y.grad_source<T>(tp);
      if (gy == nullptr) return;
      const double g = static_cast<double>(*gy) * scale;
      const T* xd = x.data_unchecked<T>();
      const T* td = t.data_unchecked<T>();
      if (T* gx = x.grad_target<T>(tp)) {
        for (std::int64_t i = 0; i < x.numel(); ++i) gx[i] += static_cast<T>(g * Pointwise::dx(static_cast<double>(xd[i]), static_cast<double>(td[i])));
      }
      if (T* gt = t.grad_target<T>(tp)) {
        for (std::int64_t i = 0; i < t.numel(); ++i) gt[i] += static_cast<T>(g * Pointwise::dt(static_cast<double>(xd[i]), static_cast<double>(td[i])));
      }
    });
  }
  return y;
}

struct SquaredError {
  static double term(double x, double t) { return (x - t) * (x - t); }
  static double dx(double x, double t) { return 2 * (x - t); }
  static double dt(double x, double t) { return -2 * (x - t); }
};

struct BinaryCrossEntropyWithLogits {
  static double term(double x, double t) { return std::max(x, 0.0) - x * t + std::log1p(std::exp(-std::abs(x))); }
  static double dx(double x, double t) { return 1.0 / (1.0 + std::exp(-x)) - t; }
  static double dt(double x, double) { return -x; }
};

template <class T>
Tensor cross_entropy_impl(const Tensor& logits, std::span<const std::int64_t> labels, double scale, Tape& tape) {
  const std::int64_t n = logits.shape()[0];
  const std::int64_t c = logits.shape()[1];
  const bool grad = tape.recording() && logits.has_grad();
  Tensor y = Tensor::recorded(tape, Shape{}, dtype_of<T>(), grad);
  const T* z = logits.data_unchecked<T>();
  // Per-row log-sum-exp, kept for the backward pass.
  T* lse = tape.arena().allocate_array<T>(static_cast<std::size_t>(std::max<std::int64_t>(n, 1)));
  double total = 0;
  for (std::int64_t i = 0; i < n; ++i) {
    const T* row = z + i * c;
    const T m = *std::max_element(row, row + c);
    double s = 0;
    for (std::int64_t j = 0; j < c; ++j) s += std::exp(static_cast<double>(row[j] - m));
    const double l = static_cast<double>(m) + std::log(s);
    lse[i] = static_cast<T>(l);
    total += l - static_cast<double>(row[labels[static_cast<std::size_t>(i)]]);
  }
  *y.data_unchecked<T>() = static_cast<T>(total * scale);
  if (tape.anomaly() && !std::isfinite(total)) [[unlikely]] {
    tape.report_anomaly("cross_entropy", "forward", fmt::format("loss is {}", total));
  }
  if (grad) {
    const std::int64_t* lab = tape.arena().allocate_array<std::int64_t>(labels.size());
    std::copy(labels.begin(), labels.end(), const_cast<std::int64_t*>(lab));
    tape.record_backward([logits, y, lse, lab, n, c, scale](Tape& tp) {
      const T* gy = y.grad_source<T>(tp);
      if (gy == nullptr) return;
      const T g = static_cast<T>(static_cast<double>(*gy) * scale);
      const T* zz = logits.data_unchecked<T>();
      T* gz = logits.grad_target<T>(tp);
      for (std::int64_t i = 0; i < n; ++i) {
        const T* row = zz + i * c;
        T* grow = gz + i * c;
        for (std::int64_t j = 0; j < c; ++j) grow[j] += g * std::exp(row[j] - lse[i]);
        grow[lab[i]] -= g;
      }
    });
  }
  return y;
}
}  // namespace

Tensor mse_loss(const Tensor& pred, const Tensor& target, Reduction r) {
  Tape& tape = active_tape();
  check_same(tape, "mse_loss", pred, target);
  const double s = scale_of(r, pred.numel());
  return pred.dtype() == Dtype::f32 ? pointwise_loss<float, SquaredError>("mse_loss", pred, target, s, tape)
                                    : pointwise_loss<double, SquaredError>("mse_loss", pred, target, s, tape);
}

Tensor binary_cross_entropy_with_logits(const Tensor& logits, const Tensor& targets, Reduction r) {
  Tape& tape = active_tape();
  check_same(tape, "binary_cross_entropy_with_logits", logits, targets);
  const double s = scale_of(r, logits.numel());
  return logits.dtype() == Dtype::f32
             ? pointwise_loss<float, BinaryCrossEntropyWithLogits>("binary_cross_entropy_with_logits", logits, targets, s, tape)
             : pointwise_loss<double, BinaryCrossEntropyWithLogits>("binary_cross_entropy_with_logits", logits, targets, s, tape);
}

Tensor cross_entropy(const Tensor& logits, std::span<const std::int64_t> labels, Reduction r) {
  Tape& tape = active_tape();
  detail::check_operands(tape, "cross_entropy", logits);
  if (logits.rank() != 2) {
    throw ShapeError(fmt::format("cross_entropy: logits must be [batch, classes], got {}", logits.shape().str()));
  }
  const std::int64_t n = logits.shape()[0];
  const std::int64_t c = logits.shape()[1];
  if (static_cast<std::int64_t>(labels.size()) != n) {
    throw ShapeError(fmt::format("cross_entropy: {} labels for logits {}", labels.size(), logits.shape().str()));
  }
  if (c == 0) throw ShapeError("cross_entropy: logits have no classes");
  for (std::size_t i = 0; i < labels.size(); ++i) {
    if (labels[i] < 0 || labels[i] >= c) {
      throw ValueError(fmt::format("cross_entropy: label {} of row {} is outside [0, {})", labels[i], i, c));
    }
  }
  const double s = scale_of(r, n);
  return logits.dtype() == Dtype::f32 ? cross_entropy_impl<float>(logits, labels, s, tape)
                                      : cross_entropy_impl<double>(logits, labels, s, tape);
}

}  // namespace tg::nn
