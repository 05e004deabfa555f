// Operations on tg::Tensor, recorded on the active tape.
//
// Elementwise primitives are the rules of rules.hpp, applied per element by tg::apply: relu,
// leaky_relu and elu on tensors run the very same value and derivative (and kink value, per-call
// and scoped overrides, kink-hit counts) as on tg::Var. A user rule works on tensors the same way.
// Binary operations broadcast as NumPy does; their backward sums over the broadcast axes.
#pragma once

#include <autodiff/gemm.hpp>
#include <autodiff/tensor.hpp>
#include <autodiff/tensor_reduce.hpp>

#include <cmath>
#include <cstdint>
#include <span>

namespace tg {

namespace detail {

/// Index maps of a broadcast: for each element o of `out` (row-major), the flat index into a and
/// into b. Reductions use it with b = the reduced shape (strides 0 along reduced axes).
struct Broadcast {
  Broadcast(const Shape& out, const Shape& a, const Shape& b);
  std::size_t rank = 0;
  std::int64_t numel = 1;
  std::array<std::int64_t, Shape::kMaxRank> dims{};
  std::array<std::int64_t, Shape::kMaxRank> sa{};
  std::array<std::int64_t, Shape::kMaxRank> sb{};
};

/// Calls f(o, ia, ib) for every output element o in row-major order.
template <class F>
void for_each(const Broadcast& p, F&& f) {
  if (p.rank == 0) {
    f(std::int64_t{0}, std::int64_t{0}, std::int64_t{0});
    return;
  }
  const std::size_t last = p.rank - 1;
  const std::int64_t inner = p.dims[last];
  const std::int64_t sa = p.sa[last];
  const std::int64_t sb = p.sb[last];
  std::array<std::int64_t, Shape::kMaxRank> idx{};
  std::int64_t ia = 0;
  std::int64_t ib = 0;
  for (std::int64_t o = 0; o < p.numel; o += inner) {
    for (std::int64_t j = 0; j < inner; ++j) f(o + j, ia + j * sa, ib + j * sb);
    for (std::size_t d = last; d-- > 0;) {
      ++idx[d];
      ia += p.sa[d];
      ib += p.sb[d];
      if (idx[d] < p.dims[d]) break;
      ia -= p.sa[d] * p.dims[d];
      ib -= p.sb[d] * p.dims[d];
      idx[d] = 0;
    }
  }
}

/// Checks operands against the active tape and each other (dtype); returns the common dtype.
Dtype check_operands(const Tape& tape, std::string_view op, const Tensor& a, const Tensor* b = nullptr);
/// A recorded constant of shape [] holding c.
Tensor scalar_tensor(Tape& tape, double c, Dtype dtype);
/// Anomaly mode: throws tg::AnomalyError naming `op` and `phase` when an element of `out` is not
/// finite although every element of the inputs (`in1`, and `in2` unless null) is.
template <class T>
void check_anomaly(const Tape& tape, std::string_view op, std::string_view phase, const T* out,
                   std::int64_t n_out, const T* in1, std::int64_t n1, const T* in2 = nullptr,
                   std::int64_t n2 = 0);

template <class T, class R>
Tensor unary(const R& rule, const Tensor& a, Tape& tape) {
  const bool grad = tape.recording() && a.has_grad();
  Tensor y = Tensor::recorded(tape, a.shape(), dtype_of<T>(), grad);
  const T* x = a.data_unchecked<T>();
  T* out = y.data_unchecked<T>();
  const std::int64_t n = a.numel();
  for (std::int64_t i = 0; i < n; ++i) out[i] = rule.value(x[i]);
  if constexpr (KinkedRule<R>) {
    if (tape.tracking_branches()) {
      for (std::int64_t i = 0; i < n; ++i) tape.note_branch(R::kink, rule.side(x[i]));
    }
    if (grad) {
      std::uint64_t hits = 0;
      for (std::int64_t i = 0; i < n; ++i) hits += rule.at_kink(x[i]) ? 1 : 0;
      tape.note_kink(R::kink, hits);
    }
  }
  if (tape.anomaly()) [[unlikely]] check_anomaly(tape, R::name, "forward", out, n, x, n);
  if (grad) {
    tape.record_backward([rule, a, y](Tape& t) {
      const T* gy = y.grad_source<T>(t);
      if (gy == nullptr) return;
      T* ga = a.grad_target<T>(t);
      const T* xa = a.data_unchecked<T>();
      const T* yv = y.data_unchecked<T>();
      const std::int64_t count = y.numel();
      for (std::int64_t i = 0; i < count; ++i) ga[i] += gy[i] * rule.derivative(xa[i], yv[i]);
      if (t.anomaly()) [[unlikely]] check_anomaly(t, R::name, "backward", ga, count, gy, count);
    });
  }
  return y;
}

template <class T, class R>
Tensor binary(const R& rule, const Tensor& a, const Tensor& b, Tape& tape) {
  const Shape shape = broadcast_shapes(a.shape(), b.shape(), R::name);
  const bool grad = tape.recording() && (a.has_grad() || b.has_grad());
  Tensor y = Tensor::recorded(tape, shape, dtype_of<T>(), grad);
  const T* x1 = a.data_unchecked<T>();
  const T* x2 = b.data_unchecked<T>();
  T* out = y.data_unchecked<T>();
  const bool same = a.shape() == b.shape();
  const Broadcast plan(shape, a.shape(), b.shape());
  if (same) {
    for (std::int64_t i = 0; i < y.numel(); ++i) out[i] = rule.value(x1[i], x2[i]);
  } else {
    for_each(plan, [&](std::int64_t o, std::int64_t i, std::int64_t j) { out[o] = rule.value(x1[i], x2[j]); });
  }
  if constexpr (KinkedRule<R>) {
    std::uint64_t hits = 0;
    for_each(plan, [&](std::int64_t, std::int64_t i, std::int64_t j) {
      tape.note_branch(R::kink, rule.side(x1[i], x2[j]));
      hits += rule.at_kink(x1[i], x2[j]) ? 1 : 0;
    });
    if (grad) tape.note_kink(R::kink, hits);
  }
  if (tape.anomaly()) [[unlikely]] {
    check_anomaly(tape, R::name, "forward", out, y.numel(), x1, a.numel(), x2, b.numel());
  }
  if (grad) {
    tape.record_backward([rule, a, b, y, plan, same](Tape& t) {
      const T* gy = y.grad_source<T>(t);
      if (gy == nullptr) return;
      T* ga = a.grad_target<T>(t);
      T* gb = b.grad_target<T>(t);
      const T* xa = a.data_unchecked<T>();
      const T* xb = b.data_unchecked<T>();
      const T* yv = y.data_unchecked<T>();
      auto step = [&](std::int64_t o, std::int64_t i, std::int64_t j) {
        const std::array<T, 2> d = rule.derivatives(xa[i], xb[j], yv[o]);
        if (ga != nullptr) ga[i] += gy[o] * d[0];
        if (gb != nullptr) gb[j] += gy[o] * d[1];
      };
      if (same) {
        for (std::int64_t o = 0; o < y.numel(); ++o) step(o, o, o);
      } else {
        for_each(plan, step);
      }
      if (t.anomaly()) [[unlikely]] {
        if (ga != nullptr) check_anomaly(t, R::name, "backward", ga, a.numel(), gy, y.numel());
        if (gb != nullptr) check_anomaly(t, R::name, "backward", gb, b.numel(), gy, y.numel());
      }
    });
  }
  return y;
}

}  // namespace detail

/// Records a one-input rule on every element of a.
template <UnaryRule R>
Tensor apply(const R& rule, const Tensor& a) {
  Tape& tape = active_tape();
  return detail::check_operands(tape, R::name, a) == Dtype::f32 ? detail::unary<float>(rule, a, tape)
                                                                 : detail::unary<double>(rule, a, tape);
}

/// Records a two-input rule elementwise, broadcasting a and b.
template <BinaryRule R>
Tensor apply(const R& rule, const Tensor& a, const Tensor& b) {
  Tape& tape = active_tape();
  return detail::check_operands(tape, R::name, a, &b) == Dtype::f32
             ? detail::binary<float>(rule, a, b, tape)
             : detail::binary<double>(rule, a, b, tape);
}
template <BinaryRule R>
Tensor apply(const R& rule, const Tensor& a, double b) {
  Tape& tape = active_tape();
  return apply(rule, a, detail::scalar_tensor(tape, b, detail::check_operands(tape, R::name, a)));
}
template <BinaryRule R>
Tensor apply(const R& rule, double a, const Tensor& b) {
  Tape& tape = active_tape();
  return apply(rule, detail::scalar_tensor(tape, a, detail::check_operands(tape, R::name, b)), b);
}

// ---- Arithmetic (broadcasting) -----------------------------------------------------------------

inline Tensor operator+(const Tensor& a, const Tensor& b) { return apply(Add{}, a, b); }
inline Tensor operator+(const Tensor& a, double b) { return apply(Add{}, a, b); }
inline Tensor operator+(double a, const Tensor& b) { return apply(Add{}, a, b); }
inline Tensor operator-(const Tensor& a, const Tensor& b) { return apply(Sub{}, a, b); }
inline Tensor operator-(const Tensor& a, double b) { return apply(Sub{}, a, b); }
inline Tensor operator-(double a, const Tensor& b) { return apply(Sub{}, a, b); }
inline Tensor operator*(const Tensor& a, const Tensor& b) { return apply(Mul{}, a, b); }
inline Tensor operator*(const Tensor& a, double b) { return apply(Mul{}, a, b); }
inline Tensor operator*(double a, const Tensor& b) { return apply(Mul{}, a, b); }
inline Tensor operator/(const Tensor& a, const Tensor& b) { return apply(Div{}, a, b); }
inline Tensor operator/(const Tensor& a, double b) { return apply(Div{}, a, b); }
inline Tensor operator/(double a, const Tensor& b) { return apply(Div{}, a, b); }
inline Tensor operator-(const Tensor& a) { return apply(Neg{}, a); }

// ---- Elementwise functions ----------------------------------------------------------------------

inline Tensor exp(const Tensor& a) { return apply(Exp{}, a); }
inline Tensor expm1(const Tensor& a) { return apply(Expm1{}, a); }
inline Tensor log(const Tensor& a) { return apply(Log{}, a); }
inline Tensor log1p(const Tensor& a) { return apply(Log1p{}, a); }
inline Tensor sqrt(const Tensor& a) { return apply(Sqrt{}, a); }
inline Tensor pow(const Tensor& a, const Tensor& b) { return apply(Pow{}, a, b); }
inline Tensor pow(const Tensor& a, double p) { return apply(PowScalar{p}, a); }
inline Tensor pow(double c, const Tensor& b) { return apply(ScalarPow{c}, b); }
inline Tensor sin(const Tensor& a) { return apply(Sin{}, a); }
inline Tensor cos(const Tensor& a) { return apply(Cos{}, a); }
inline Tensor tan(const Tensor& a) { return apply(Tan{}, a); }
inline Tensor tanh(const Tensor& a) { return apply(Tanh{}, a); }
inline Tensor sigmoid(const Tensor& a) { return apply(Sigmoid{}, a); }
inline Tensor softplus(const Tensor& a) { return apply(Softplus{}, a); }
inline Tensor gelu(const Tensor& a) { return apply(Gelu{}, a); }

inline Tensor relu(const Tensor& a, const ReluOptions& o = {}) { return apply(Relu::make(o), a); }
inline Tensor leaky_relu(const Tensor& a, const LeakyReluOptions& o = {}) {
  return apply(LeakyRelu::make(o), a);
}
inline Tensor leaky_relu(const Tensor& a, double scale) {
  return leaky_relu(a, LeakyReluOptions{scale, std::nullopt});
}
inline Tensor elu(const Tensor& a, const EluOptions& o = {}) { return apply(Elu::make(o), a); }
inline Tensor elu(const Tensor& a, double alpha) { return elu(a, EluOptions{alpha, std::nullopt}); }
inline Tensor abs(const Tensor& a, const AbsOptions& o = {}) { return apply(Abs::make(o), a); }
inline Tensor maximum(const Tensor& a, const Tensor& b, const TieOptions& o = {}) {
  return apply(Max::make(o), a, b);
}
inline Tensor maximum(const Tensor& a, double b, const TieOptions& o = {}) {
  return apply(Max::make(o), a, b);
}
inline Tensor minimum(const Tensor& a, const Tensor& b, const TieOptions& o = {}) {
  return apply(Min::make(o), a, b);
}
inline Tensor minimum(const Tensor& a, double b, const TieOptions& o = {}) {
  return apply(Min::make(o), a, b);
}
inline Tensor clamp(const Tensor& a, double lo, double hi, const ClampOptions& o = {}) {
  return apply(Clamp::make(lo, hi, o), a);
}

// ---- Reductions: sum, mean, max, softmax (tensor_reduce.hpp) -----------------------------------------

// ---- Linear algebra -----------------------------------------------------------------------------------

/// op(a) * op(b) for 2-D a, b, where op transposes when asked. Transposes are passed to BLAS,
/// never materialised, forward and backward. Throws tg::ShapeError naming both shapes.
Tensor matmul(const Tensor& a, const Tensor& b, bool transpose_a = false, bool transpose_b = false);

}  // namespace tg
