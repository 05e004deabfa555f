// Operations on tg::Tensor, recorded on the active tape.
//
// Elementwise primitives are the rules of rules.hpp, applied per element by tg::apply: relu,
// leaky_relu and elu on tensors run the very same value and derivative (and kink value, per-call
// and scoped overrides, kink-hit counts) as on tg::Var. A user rule works on tensors the same way.
// Binary operations broadcast as NumPy does; their backward sums over the broadcast axes.
#pragma once

#include <autodiff/gemm.hpp>
#include <autodiff/simd.hpp>
#include <autodiff/tensor.hpp>
#include <autodiff/tensor_reduce.hpp>

#include <array>
#include <cmath>
#include <cstdint>
#include <new>
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
Dtype check_operands_slow(const Tape& tape, std::string_view op, const Tensor& a, const Tensor* b);
inline Dtype check_operands(const Tape& tape, std::string_view op, const Tensor& a,
                            const Tensor* b = nullptr) {
  // Inline for the common case, operands recorded on this recording in the same dtype (they are
  // then live and defined); anything else, and every error, out of line.
  const auto live = [&tape](const Tensor& t) {
    return t.tape() == &tape && t.epoch() == tape.epoch() && t.data_unchecked<void>() != nullptr;
  };
  if (live(a) && (b == nullptr || (live(*b) && b->dtype() == a.dtype()))) [[likely]] return a.dtype();
  return check_operands_slow(tape, op, a, b);
}
/// A recorded constant of shape [] holding c.
Tensor scalar_tensor(Tape& tape, double c, Dtype dtype);
/// Anomaly mode: throws tg::AnomalyError naming `op` and `phase` when an element of `out` is not
/// finite although every element of the inputs (`in1`, and `in2` unless null) is.
template <class T>
void check_anomaly(const Tape& tape, std::string_view op, std::string_view phase, const T* out,
                   std::int64_t n_out, const T* in1, std::int64_t n1, const T* in2 = nullptr,
                   std::int64_t n2 = 0);

// ---- Elementwise kernels ------------------------------------------------------------------------
// The loops that run a rule over arrays. Each loop is a lambda marked always_inline and handed to
// run_kernel (simd.hpp), which runs it as compiled for the baseline instruction set or, on x86-64
// and for arrays long enough to matter, as compiled again inside a function with the AVX2+FMA or
// AVX-512 target attribute, whichever the CPU has. The rule's formula (rules.hpp, vmath.hpp) is
// inlined into each: one definition, several instruction sets. The wider builds may fuse a multiply and
// an add into one FMA, so float results can differ between CPUs in the last bit.

/// How a backward loop writes a gradient: not at all (the operand takes none), = (the buffer was
/// handed out unzeroed, see Tensor::grad_target(tape, overwrite)) or +=.
enum class Put : std::uint8_t { none, assign, add };
template <Put P, class T>
[[gnu::always_inline]] inline void put(T* g, std::int64_t i, T v) {
  if constexpr (P == Put::assign) g[i] = v;
  else if constexpr (P == Put::add) g[i] += v;
}
inline Put put_mode(const void* g, bool overwrite) {
  return g == nullptr ? Put::none : overwrite ? Put::assign : Put::add;
}

/// What a backward closure keeps of the result y it recorded (a whole, fresh tensor): its values
/// and its gradient slot, 24 bytes where the Tensor handle is 144 (copied twice into the arena and
/// destroyed at reset: most of an operation's fixed cost, measured).
template <class T>
struct Result {
  const T* values;
  const GradSlot* slot;
  std::int64_t numel;
  explicit Result(const Tensor& y)
      : values(y.data_unchecked<T>()), slot(y.grad_slot()), numel(y.numel()) {}
  /// dL/dy in the sweep `t` runs, or nullptr when the sweep has not reached y.
  const T* gradient(const Tape& t) const {
    return slot->sweep == t.sweep_id() ? static_cast<const T*>(slot->data) : nullptr;
  }
};

/// out[i] = value(x[i]); for a kinked rule, also the number of elements exactly at the kink, when
/// `count_kinks` (one pass over x).
template <class T, class R>
std::uint64_t unary_forward(const R& rule, const T* x, T* out, std::int64_t n, bool count_kinks) {
  std::uint64_t hits = 0;
  if constexpr (KinkedRule<R>) {
    if (count_kinks) {
      run_kernel(n, [&]() __attribute__((always_inline)) {
        const R r = rule;
        const T* __restrict xs = x;
        T* __restrict ys = out;
        std::uint64_t h = 0;
        for (std::int64_t i = 0; i < n; ++i) {
          ys[i] = r.value(xs[i]);
          h += r.at_kink(xs[i]) ? 1 : 0;
        }
        hits = h;
      });
      return hits;
    }
  }
  run_kernel(n, [&]() __attribute__((always_inline)) {
    const R r = rule;
    const T* __restrict xs = x;
    T* __restrict ys = out;
    for (std::int64_t i = 0; i < n; ++i) ys[i] = r.value(xs[i]);
  });
  return hits;
}

/// ga[i] (= or +=) gy[i] * derivative(x[i], y[i]).
template <Put P, class T, class R>
void unary_backward(const R& rule, const T* x, const T* y, const T* gy, T* ga, std::int64_t n) {
  run_kernel(n, [&]() __attribute__((always_inline)) {
    const R r = rule;
    const T* __restrict xs = x;
    const T* __restrict ys = y;
    const T* __restrict gs = gy;
    T* __restrict g = ga;
    for (std::int64_t i = 0; i < n; ++i) put<P>(g, i, gs[i] * r.derivative(xs[i], ys[i]));
  });
}

/// Index maps of the binary loops: an operand read elementwise, or one element read for all.
struct EachElement {
  static constexpr bool broadcast = false;
  std::int64_t operator()(std::int64_t i) const { return i; }
};
struct FirstElement {
  static constexpr bool broadcast = true;
  std::int64_t operator()(std::int64_t) const { return 0; }
};

/// The forward of a binary rule: out[i] = value(a[i * sa], b[i * sb]), sa and sb 1 (elementwise)
/// or 0 (that operand is one element, broadcast); plus the kink count, as for unary_forward.
template <class T, class R>
std::uint64_t binary_forward(const R& rule, const T* a, bool a_scalar, const T* b, bool b_scalar,
                             T* out, std::int64_t n, bool count_kinks) {
  std::uint64_t hits = 0;
  // The three layouts as three loops, each with unit strides or a loop-invariant operand.
  auto run = [&](auto ai, auto bi) {
    if constexpr (KinkedRule<R>) {
      if (count_kinks) {
        run_kernel(n, [&]() __attribute__((always_inline)) {
          const R r = rule;
          std::uint64_t h = 0;
          for (std::int64_t i = 0; i < n; ++i) {
            const T u = a[ai(i)];
            const T v = b[bi(i)];
            out[i] = r.value(u, v);
            h += r.at_kink(u, v) ? 1 : 0;
          }
          hits = h;
        });
        return;
      }
    }
    run_kernel(n, [&]() __attribute__((always_inline)) {
      const R r = rule;
      for (std::int64_t i = 0; i < n; ++i) out[i] = r.value(a[ai(i)], b[bi(i)]);
    });
  };
  if (a_scalar) run(FirstElement{}, EachElement{});
  else if (b_scalar) run(EachElement{}, FirstElement{});
  else run(EachElement{}, EachElement{});
  return hits;
}

/// The backward of a binary rule over the same layouts: the elementwise operand(s) get
/// g[i] (= or +=) gy[i] * d; a broadcast operand (one element) gets the sum, accumulated in double.
template <Put PA, Put PB, class T, class R>
void binary_backward(const R& rule, const T* a, bool a_scalar, const T* b, bool b_scalar,
                     const T* y, const T* gy, T* ga, T* gb, std::int64_t n) {
  auto run = [&](auto ai, auto bi) {
    // Elementwise gradients, vectorised: no accumulator carried between iterations.
    constexpr Put pa = decltype(ai)::broadcast ? Put::none : PA;
    constexpr Put pb = decltype(bi)::broadcast ? Put::none : PB;
    if constexpr (pa != Put::none || pb != Put::none) {
      run_kernel(n, [&]() __attribute__((always_inline)) {
        const R r = rule;
        for (std::int64_t i = 0; i < n; ++i) {
          const std::array<T, 2> d = r.derivatives(a[ai(i)], b[bi(i)], y[i]);
          put<pa>(ga, i, gy[i] * d[0]);
          put<pb>(gb, i, gy[i] * d[1]);
        }
      });
    }
    // A broadcast operand's gradient is a sum over all elements (rare: a tensor with a recorded
    // one-element tensor), in a plain loop.
    if constexpr (decltype(ai)::broadcast && PA != Put::none) {
      double sum = 0.0;
      for (std::int64_t i = 0; i < n; ++i) {
        sum += static_cast<double>(gy[i] * rule.derivatives(a[0], b[bi(i)], y[i])[0]);
      }
      ga[0] = PA == Put::assign ? static_cast<T>(sum) : static_cast<T>(ga[0] + static_cast<T>(sum));
    }
    if constexpr (decltype(bi)::broadcast && PB != Put::none) {
      double sum = 0.0;
      for (std::int64_t i = 0; i < n; ++i) {
        sum += static_cast<double>(gy[i] * rule.derivatives(a[ai(i)], b[0], y[i])[1]);
      }
      gb[0] = PB == Put::assign ? static_cast<T>(sum) : static_cast<T>(gb[0] + static_cast<T>(sum));
    }
  };
  if (a_scalar) run(FirstElement{}, EachElement{});
  else if (b_scalar) run(EachElement{}, FirstElement{});
  else run(EachElement{}, EachElement{});
}

/// Which operand of a binary operation is a single row broadcast over the other's rows.
enum class RowOperand : std::uint8_t { none, a, b };

/// Calls f.template operator()<PA, PB>() for the runtime modes.
template <class F>
void with_puts(Put pa, Put pb, F&& f) {
  auto second = [&]<Put PA>() {
    switch (pb) {
      case Put::none: f.template operator()<PA, Put::none>(); break;
      case Put::assign: f.template operator()<PA, Put::assign>(); break;
      case Put::add: f.template operator()<PA, Put::add>(); break;
    }
  };
  switch (pa) {
    case Put::none: second.template operator()<Put::none>(); break;
    case Put::assign: second.template operator()<Put::assign>(); break;
    case Put::add: second.template operator()<Put::add>(); break;
  }
}

template <class T, class R>
Tensor unary(const R& rule, const Tensor& a, Tape& tape) {
  const bool grad = tape.recording() && a.has_grad();
  Tensor y = Tensor::recorded(tape, a.shape(), dtype_of<T>(), grad);
  const T* x = a.data_unchecked<T>();
  T* out = y.data_unchecked<T>();
  const std::int64_t n = a.numel();
  [[maybe_unused]] const std::uint64_t hits = unary_forward(rule, x, out, n, grad);
  if constexpr (KinkedRule<R>) {
    if (tape.tracking_branches()) {
      for (std::int64_t i = 0; i < n; ++i) tape.note_branch(R::kink, rule.side(x[i]));
    }
    if (grad) tape.note_kink(R::kink, hits);
  }
  if (tape.anomaly()) [[unlikely]] check_anomaly(tape, R::name, "forward", out, n, x, n);
  if (grad) {
    tape.record_backward([rule, a = a.operand(), y = Result<T>(y)](Tape& t) {
      const T* gy = y.gradient(t);
      if (gy == nullptr) return;
      bool overwrite = false;
      T* ga = a.grad_target<T>(t, overwrite);
      const T* xa = a.values<T>();
      const T* yv = y.values;
      const std::int64_t count = y.numel;
      if (overwrite) unary_backward<Put::assign>(rule, xa, yv, gy, ga, count);
      else unary_backward<Put::add>(rule, xa, yv, gy, ga, count);
      if (t.anomaly()) [[unlikely]] check_anomaly(t, R::name, "backward", ga, count, gy, count);
    });
  }
  return y;
}

/// A binary rule with a constant operand c: first (c op a) or second (a op c). No tensor is made
/// for c and nothing is broadcast: the common `x * 0.5`, `x + 1` cost one recorded tensor.
template <class T, class R>
Tensor binary_constant(const R& rule, const Tensor& a, double c, bool c_first, Tape& tape) {
  const bool grad = tape.recording() && a.has_grad();
  Tensor y = Tensor::recorded(tape, a.shape(), dtype_of<T>(), grad);
  const T k = static_cast<T>(c);
  const T* x = a.data_unchecked<T>();
  T* out = y.data_unchecked<T>();
  const std::int64_t n = a.numel();
  [[maybe_unused]] const std::uint64_t hits = c_first ? binary_forward(rule, &k, true, x, false, out, n, grad)
                                     : binary_forward(rule, x, false, &k, true, out, n, grad);
  if constexpr (KinkedRule<R>) {
    if (tape.tracking_branches()) {
      for (std::int64_t i = 0; i < n; ++i) {
        tape.note_branch(R::kink, c_first ? rule.side(k, x[i]) : rule.side(x[i], k));
      }
    }
    if (grad) tape.note_kink(R::kink, hits);
  }
  if (tape.anomaly()) [[unlikely]] check_anomaly(tape, R::name, "forward", out, n, x, n, &k, 1);
  if (grad) {
    tape.record_backward([rule, a = a.operand(), y = Result<T>(y), k, c_first](Tape& t) {
      const T* gy = y.gradient(t);
      if (gy == nullptr) return;
      bool overwrite = false;
      T* ga = a.grad_target<T>(t, overwrite);
      const T* xa = a.values<T>();
      const T* yv = y.values;
      const std::int64_t count = y.numel;
      with_puts(put_mode(ga, overwrite), Put::none, [&]<Put P, Put>() {
        T* const none = nullptr;
        if (c_first) binary_backward<Put::none, P>(rule, &k, true, xa, false, yv, gy, none, ga, count);
        else binary_backward<P, Put::none>(rule, xa, false, &k, true, yv, gy, ga, none, count);
      });
      if (t.anomaly()) [[unlikely]] check_anomaly(t, R::name, "backward", ga, count, gy, count);
    });
  }
  return y;
}

template <class T, class R>
Tensor binary(const R& rule, const Tensor& a, const Tensor& b, Tape& tape) {
  const Shape shape =
      a.shape() == b.shape() ? a.shape() : broadcast_shapes(a.shape(), b.shape(), R::name);
  const bool grad = tape.recording() && (a.has_grad() || b.has_grad());
  Tensor y = Tensor::recorded(tape, shape, dtype_of<T>(), grad);
  const T* x1 = a.data_unchecked<T>();
  const T* x2 = b.data_unchecked<T>();
  T* out = y.data_unchecked<T>();
  const std::int64_t n = shape.numel();
  // Layouts with unit strides: both operands have the output's elements in its order (extents of
  // 1 aside), or one of them is a single element. Anything else follows a Broadcast plan.
  const bool a_full = a.numel() == n;
  const bool b_full = b.numel() == n;
  const bool simple = (a_full && b_full) || (a_full && b.numel() == 1) || (b_full && a.numel() == 1);
  const bool a_scalar = !a_full;  // in a simple layout, not full means one element
  const bool b_scalar = !b_full;
  // The row layout: one operand full, the other one row of it (shape [..., 1, w] against the
  // output's [..., w]), as a bias added to a batch. Run row by row with the elementwise loops.
  const std::int64_t width = shape.rank() > 0 ? shape[shape.rank() - 1] : 1;
  const auto is_row = [&](const Shape& s) {
    return n > 0 && width > 1 && s.rank() > 0 && s[s.rank() - 1] == width && s.numel() == width;
  };
  const RowOperand row = simple                     ? RowOperand::none
                         : a_full && is_row(b.shape()) ? RowOperand::b
                         : b_full && is_row(a.shape()) ? RowOperand::a
                                                       : RowOperand::none;
  [[maybe_unused]] std::uint64_t hits = 0;
  const Broadcast* plan = nullptr;
  if (simple) {
    hits = binary_forward(rule, x1, a_scalar, x2, b_scalar, out, n, grad);
  } else if (row != RowOperand::none) {
    for (std::int64_t o = 0; o < n; o += width) {
      const T* r1 = row == RowOperand::a ? x1 : x1 + o;
      const T* r2 = row == RowOperand::b ? x2 : x2 + o;
      hits += binary_forward(rule, r1, false, r2, false, out + o, width, grad);
    }
  } else {
    // The plan lives in the arena with the recording (the backward needs it too).
    plan = ::new (tape.arena().allocate(sizeof(Broadcast), alignof(Broadcast)))
        Broadcast(shape, a.shape(), b.shape());
    for_each(*plan, [&](std::int64_t o, std::int64_t i, std::int64_t j) {
      out[o] = rule.value(x1[i], x2[j]);
      if constexpr (KinkedRule<R>) hits += rule.at_kink(x1[i], x2[j]) ? 1 : 0;
    });
  }
  if constexpr (KinkedRule<R>) {
    if (tape.tracking_branches()) {
      const Broadcast branches(shape, a.shape(), b.shape());
      for_each(branches, [&](std::int64_t, std::int64_t i, std::int64_t j) {
        tape.note_branch(R::kink, rule.side(x1[i], x2[j]));
      });
    }
    if (grad) tape.note_kink(R::kink, hits);
  }
  if (tape.anomaly()) [[unlikely]] {
    check_anomaly(tape, R::name, "forward", out, n, x1, a.numel(), x2, b.numel());
  }
  if (grad) {
    tape.record_backward([rule, a = a.operand(), b = b.operand(), y = Result<T>(y), plan, row,
                          width](Tape& t) {
      const T* gy = y.gradient(t);
      if (gy == nullptr) return;
      const T* xa = a.values<T>();
      const T* xb = b.values<T>();
      const T* yv = y.values;
      const std::int64_t count = y.numel;
      T* ga = nullptr;
      T* gb = nullptr;
      if (row != RowOperand::none) {
        // The full operand's gradient elementwise; the row's, row after row into the same
        // buffer (the order of the generic path's sums): the first row may assign, the rest add.
        // The row's target is taken first: when it is a view into the full operand's gradient
        // (h + h.rows(k, k + 1)), that zeroes the shared buffer and the full operand then adds,
        // rather than being handed the buffer to overwrite after the row's sums went into it.
        const bool a_is_row = row == RowOperand::a;
        bool over_a = false;
        bool over_b = false;
        if (a_is_row) {
          ga = a.grad_target<T>(t, over_a);
          gb = b.grad_target<T>(t, over_b);
        } else {
          gb = b.grad_target<T>(t, over_b);
          ga = a.grad_target<T>(t, over_a);
        }
        for (std::int64_t o = 0; o < count; o += width) {
          const Put pa = put_mode(ga, over_a && (!a_is_row || o == 0));
          const Put pb = put_mode(gb, over_b && (a_is_row || o == 0));
          const std::int64_t oa = a_is_row ? 0 : o;
          const std::int64_t ob = a_is_row ? o : 0;
          with_puts(pa, pb, [&]<Put PA, Put PB>() {
            binary_backward<PA, PB>(rule, xa + oa, false, xb + ob, false, yv + o, gy + o,
                                    ga == nullptr ? nullptr : ga + oa,
                                    gb == nullptr ? nullptr : gb + ob, width);
          });
        }
      } else if (plan == nullptr) {
        // Overwriting needs every element written once: a full operand, not a broadcast one.
        bool over_a = false;
        bool over_b = false;
        const bool a_one = a.numel != count;
        const bool b_one = b.numel != count;
        ga = a_one ? a.grad_target<T>(t) : a.grad_target<T>(t, over_a);
        gb = b_one ? b.grad_target<T>(t) : b.grad_target<T>(t, over_b);
        with_puts(put_mode(ga, over_a), put_mode(gb, over_b), [&]<Put PA, Put PB>() {
          binary_backward<PA, PB>(rule, xa, a_one, xb, b_one, yv, gy, ga, gb, count);
        });
      } else {
        ga = a.grad_target<T>(t);
        gb = b.grad_target<T>(t);
        for_each(*plan, [&](std::int64_t o, std::int64_t i, std::int64_t j) {
          const std::array<T, 2> d = rule.derivatives(xa[i], xb[j], yv[o]);
          if (ga != nullptr) ga[i] += gy[o] * d[0];
          if (gb != nullptr) gb[j] += gy[o] * d[1];
        });
      }
      if (t.anomaly()) [[unlikely]] {
        if (ga != nullptr) check_anomaly(t, R::name, "backward", ga, a.numel, gy, count);
        if (gb != nullptr) check_anomaly(t, R::name, "backward", gb, b.numel, gy, count);
      }
    });
  }
  return y;
}

// The built-in rules' loops are compiled once, in tensor_ops.cpp, not in every translation unit
// that uses a tensor operation: each rule's forward and backward exist for two element types, up to
// three instruction sets and every gradient write mode, which made a test file of tensor arithmetic
// take a minute to compile. A user's own rule is instantiated where it is used, as before.
#define TAPEGRAD_TENSOR_UNARY_RULES(X)                                                         \
  X(Neg) X(Exp) X(Expm1) X(Log) X(Log1p) X(Sqrt) X(PowScalar) X(ScalarPow) X(Sin) X(Cos) X(Tan) \
  X(Tanh) X(Sigmoid) X(Softplus) X(Gelu) X(Relu) X(LeakyRelu) X(Elu) X(Abs) X(Clamp)
#define TAPEGRAD_TENSOR_BINARY_RULES(X) X(Add) X(Sub) X(Mul) X(Div) X(Pow) X(Max) X(Min)
#define TAPEGRAD_TENSOR_EXTERN_UNARY(R)                                       \
  extern template Tensor unary<float, R>(const R&, const Tensor&, Tape&); \
  extern template Tensor unary<double, R>(const R&, const Tensor&, Tape&);
#define TAPEGRAD_TENSOR_EXTERN_BINARY(R)                                                    \
  extern template Tensor binary<float, R>(const R&, const Tensor&, const Tensor&, Tape&);  \
  extern template Tensor binary<double, R>(const R&, const Tensor&, const Tensor&, Tape&); \
  extern template Tensor binary_constant<float, R>(const R&, const Tensor&, double, bool, Tape&); \
  extern template Tensor binary_constant<double, R>(const R&, const Tensor&, double, bool, Tape&);
TAPEGRAD_TENSOR_UNARY_RULES(TAPEGRAD_TENSOR_EXTERN_UNARY)
TAPEGRAD_TENSOR_BINARY_RULES(TAPEGRAD_TENSOR_EXTERN_BINARY)
#undef TAPEGRAD_TENSOR_EXTERN_UNARY
#undef TAPEGRAD_TENSOR_EXTERN_BINARY

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
/// The same with a plain number (converted to the tensor's element type), which broadcasts.
template <BinaryRule R>
Tensor apply(const R& rule, const Tensor& a, double b) {
  Tape& tape = active_tape();
  return detail::check_operands(tape, R::name, a) == Dtype::f32
             ? detail::binary_constant<float>(rule, a, b, false, tape)
             : detail::binary_constant<double>(rule, a, b, false, tape);
}
template <BinaryRule R>
Tensor apply(const R& rule, double a, const Tensor& b) {
  Tape& tape = active_tape();
  return detail::check_operands(tape, R::name, b) == Dtype::f32
             ? detail::binary_constant<float>(rule, b, a, true, tape)
             : detail::binary_constant<double>(rule, b, a, true, tape);
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
