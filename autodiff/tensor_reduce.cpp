#include <autodiff/tensor_reduce.hpp>

#include <autodiff/tensor_ops.hpp>

#include <algorithm>
#include <cmath>
#include <limits>
#include <type_traits>

#include <fmt/ranges.h>

namespace tg {

namespace {

// ---- Which elements go where ------------------------------------------------------------------------

/// A reduction of `in`: `kept` is in's shape with the reduced axes at extent 1 (same rank, same
/// layout as the result), `out` the result's shape, `count` how many input elements each output
/// element gathers. `all`: there is a single output element, so plain loops serve.
struct Reduction {
  Shape kept;
  Shape out;
  std::int64_t count = 1;
  bool all = false;
};

std::string axes_str(const Axes& axes) {
  return fmt::format("({})", fmt::join(std::span<const int>(axes.axes.data(), axes.count), ", "));
}

Reduction plan_reduction(const Shape& in, const Axes& axes, bool keepdim, std::string_view op) {
  std::array<bool, Shape::kMaxRank> reduced{};
  for (std::size_t k = 0; k < axes.count; ++k) {
    const int a = axes.axes[k];
    if (a < -static_cast<int>(in.rank()) || a >= static_cast<int>(in.rank())) {
      throw ShapeError(fmt::format("{}: axis {} of axes {} is out of range for shape {}", op, a,
                                   axes_str(axes), in.str()));
    }
    const std::size_t d = in.axis(a, op);
    if (reduced[d]) {
      throw ShapeError(fmt::format("{}: axes {} name axis {} twice (shape {})", op, axes_str(axes), d,
                                   in.str()));
    }
    reduced[d] = true;
  }
  std::array<std::int64_t, Shape::kMaxRank> kept{};
  std::array<std::int64_t, Shape::kMaxRank> out{};
  std::size_t out_rank = 0;
  Reduction r;
  for (std::size_t d = 0; d < in.rank(); ++d) {
    kept[d] = reduced[d] ? 1 : in[d];
    if (reduced[d]) r.count *= in[d];
    if (!reduced[d] || keepdim) out[out_rank++] = kept[d];
  }
  r.kept = Shape(std::span<const std::int64_t>(kept.data(), in.rank()));
  r.out = Shape(std::span<const std::int64_t>(out.data(), out_rank));
  r.all = r.kept.numel() == 1;
  return r;
}

Reduction reduce_all(const Shape& in) {
  std::array<std::int64_t, Shape::kMaxRank> ones{};
  ones.fill(1);
  Reduction r;
  r.kept = Shape(std::span<const std::int64_t>(ones.data(), in.rank()));
  r.count = in.numel();
  r.all = true;
  return r;
}

// ---- Sum and mean -------------------------------------------------------------------------------------

template <class T>
Tensor sum_impl(const Tensor& a, const Reduction& r, double scale, std::string_view op, Tape& tape) {
  const bool grad = tape.recording() && a.has_grad();
  Tensor y = Tensor::recorded(tape, r.out, dtype_of<T>(), grad);
  const T* x = a.data_unchecked<T>();
  T* out = y.data_unchecked<T>();
  const std::int64_t n_in = a.numel();
  const std::int64_t n_out = y.numel();
  const detail::Broadcast plan(a.shape(), a.shape(), r.kept);
  if (r.all) {
    double acc = 0;
    for (std::int64_t i = 0; i < n_in; ++i) acc += static_cast<double>(x[i]);
    *out = static_cast<T>(acc * scale);
  } else {
    // Accumulate in double: float sums over long axes would lose digits.
    double* acc = nullptr;
    if constexpr (std::is_same_v<T, double>) acc = out;
    else acc = tape.arena().allocate_array<double>(static_cast<std::size_t>(n_out));
    std::fill_n(acc, n_out, 0.0);
    detail::for_each(plan, [&](std::int64_t o, std::int64_t, std::int64_t ib) { acc[ib] += static_cast<double>(x[o]); });
    for (std::int64_t i = 0; i < n_out; ++i) out[i] = static_cast<T>(acc[i] * scale);
  }
  if (tape.anomaly()) [[unlikely]] detail::check_anomaly(tape, op, "forward", out, n_out, x, n_in);
  if (grad) {
    tape.record_backward([a, y, plan, scale, all = r.all](Tape& t) {
      const T* gy = y.grad_source<T>(t);
      if (gy == nullptr) return;
      T* ga = a.grad_target<T>(t);
      if (all) {
        const T g = static_cast<T>(static_cast<double>(*gy) * scale);
        for (std::int64_t i = 0; i < a.numel(); ++i) ga[i] += g;
      } else {
        const T s = static_cast<T>(scale);
        detail::for_each(plan, [&](std::int64_t o, std::int64_t, std::int64_t ib) { ga[o] += gy[ib] * s; });
      }
    });
  }
  return y;
}

Tensor sum_dispatch(const Tensor& a, const Reduction& r, double scale, std::string_view op, Tape& tape) {
  return a.dtype() == Dtype::f32 ? sum_impl<float>(a, r, scale, op, tape)
                                 : sum_impl<double>(a, r, scale, op, tape);
}

// ---- Max ------------------------------------------------------------------------------------------

template <class T>
Tensor max_impl(const Tensor& a, const Reduction& r, Tape& tape) {
  const bool grad = tape.recording() && a.has_grad();
  const bool branches = tape.tracking_branches();
  Tensor y = Tensor::recorded(tape, r.out, dtype_of<T>(), grad);
  const T* x = a.data_unchecked<T>();
  T* m = y.data_unchecked<T>();
  const std::int64_t n_out = y.numel();
  const detail::Broadcast plan(a.shape(), a.shape(), r.kept);
  std::fill_n(m, n_out, -std::numeric_limits<T>::infinity());
  detail::for_each(plan, [&](std::int64_t o, std::int64_t, std::int64_t ib) {
    if (x[o] > m[ib] || std::isnan(x[o])) m[ib] = x[o];  // a NaN stays
  });
  if (!grad && !branches) return y;

  // How many elements attain each maximum: 1 normally, k for a k-fold tie, 0 when it is NaN.
  auto* ties = tape.arena().allocate_array<std::int64_t>(static_cast<std::size_t>(n_out));
  std::fill_n(ties, n_out, std::int64_t{0});
  detail::for_each(plan, [&](std::int64_t o, std::int64_t, std::int64_t ib) { ties[ib] += x[o] == m[ib] ? 1 : 0; });
  if (branches) {
    detail::for_each(plan, [&](std::int64_t o, std::int64_t, std::int64_t ib) {
      const int side = x[o] < m[ib] ? -1 : x[o] == m[ib] ? (ties[ib] > 1 ? 0 : 1) : 2;  // 2: NaN
      tape.note_branch(Kink::max, side);
    });
  }
  if (!grad) return y;
  tape.note_kink(Kink::max, static_cast<std::uint64_t>(std::count_if(ties, ties + n_out, [](std::int64_t k) { return k > 1; })));
  tape.record_backward([a, y, plan, ties](Tape& t) {
    const T* gy = y.grad_source<T>(t);
    if (gy == nullptr) return;
    T* ga = a.grad_target<T>(t);
    const T* xa = a.data_unchecked<T>();
    const T* my = y.data_unchecked<T>();
    detail::for_each(plan, [&](std::int64_t o, std::int64_t, std::int64_t ib) {
      if (ties[ib] == 0) ga[o] += std::numeric_limits<T>::quiet_NaN();  // the maximum is NaN
      else if (xa[o] == my[ib]) ga[o] += gy[ib] / static_cast<T>(ties[ib]);
    });
  });
  return y;
}

Tensor max_dispatch(const Tensor& a, const Reduction& r, const Axes* axes, Tape& tape) {
  if (r.count == 0) {
    throw ShapeError(axes == nullptr
                         ? fmt::format("max: tensor {} has no elements", a.shape().str())
                         : fmt::format("max: axes {} of shape {} hold no elements to take the maximum of",
                                       axes_str(*axes), a.shape().str()));
  }
  return a.dtype() == Dtype::f32 ? max_impl<float>(a, r, tape) : max_impl<double>(a, r, tape);
}

// ---- Softmax --------------------------------------------------------------------------------------

/// A tensor seen as [outer, n, inner] around axis `axis`: element (o, j, i) is at (o n + j) inner + i.
struct Slices {
  std::int64_t outer = 1;
  std::int64_t n = 1;
  std::int64_t inner = 1;
};

Slices slices_along(const Shape& s, std::size_t axis) {
  Slices sl;
  for (std::size_t d = 0; d < axis; ++d) sl.outer *= s[d];
  sl.n = s[axis];
  for (std::size_t d = axis + 1; d < s.rank(); ++d) sl.inner *= s[d];
  return sl;
}

/// Calls f(base) for the first element of every slice along the axis; the slice's elements are
/// base + j * inner, j < n.
template <class F>
void for_each_slice(const Slices& s, F&& f) {
  for (std::int64_t o = 0; o < s.outer; ++o) {
    for (std::int64_t i = 0; i < s.inner; ++i) f(o * s.n * s.inner + i);
  }
}

template <class T, bool kLog>
Tensor softmax_impl(const Tensor& a, const Slices& s, std::string_view op, Tape& tape) {
  const bool grad = tape.recording() && a.has_grad();
  Tensor y = Tensor::recorded(tape, a.shape(), dtype_of<T>(), grad);
  const T* x = a.data_unchecked<T>();
  T* out = y.data_unchecked<T>();
  for_each_slice(s, [&](std::int64_t base) {
    const std::int64_t step = s.inner;
    const std::int64_t end = base + s.n * step;
    T m = -std::numeric_limits<T>::infinity();
    for (std::int64_t k = base; k < end; k += step) {
      if (x[k] > m || std::isnan(x[k])) m = x[k];
    }
    double total = 0;  // of exp(x - m): between 1 and n, no overflow
    if constexpr (kLog) {
      for (std::int64_t k = base; k < end; k += step) total += static_cast<double>(std::exp(x[k] - m));
      const T log_total = static_cast<T>(std::log(total));
      for (std::int64_t k = base; k < end; k += step) out[k] = (x[k] - m) - log_total;
    } else {
      for (std::int64_t k = base; k < end; k += step) {
        out[k] = std::exp(x[k] - m);
        total += static_cast<double>(out[k]);
      }
      const T inv = static_cast<T>(1.0 / total);
      for (std::int64_t k = base; k < end; k += step) out[k] *= inv;
    }
  });
  if (tape.anomaly()) [[unlikely]] detail::check_anomaly(tape, op, "forward", out, y.numel(), x, a.numel());
  if (grad) {
    tape.record_backward([a, y, s, op](Tape& t) {
      const T* gy = y.grad_source<T>(t);
      if (gy == nullptr) return;
      T* ga = a.grad_target<T>(t);
      const T* yv = y.data_unchecked<T>();
      for_each_slice(s, [&](std::int64_t base) {
        const std::int64_t step = s.inner;
        const std::int64_t end = base + s.n * step;
        double acc = 0;
        if constexpr (kLog) {
          // y = x - logsumexp(x):  da_i = g_i - softmax_i sum_j g_j,  softmax_i = exp(y_i).
          for (std::int64_t k = base; k < end; k += step) acc += static_cast<double>(gy[k]);
          const T sg = static_cast<T>(acc);
          for (std::int64_t k = base; k < end; k += step) ga[k] += gy[k] - std::exp(yv[k]) * sg;
        } else {
          // y = softmax(x):  da_i = y_i (g_i - sum_j g_j y_j).
          for (std::int64_t k = base; k < end; k += step) acc += static_cast<double>(gy[k] * yv[k]);
          const T dot = static_cast<T>(acc);
          for (std::int64_t k = base; k < end; k += step) ga[k] += yv[k] * (gy[k] - dot);
        }
      });
      if (t.anomaly()) [[unlikely]] detail::check_anomaly(t, op, "backward", ga, a.numel(), gy, y.numel());
    });
  }
  return y;
}

template <bool kLog>
Tensor softmax_dispatch(const Tensor& a, int axis, std::string_view op) {
  Tape& tape = active_tape();
  const Dtype dtype = detail::check_operands(tape, op, a);
  const Slices s = slices_along(a.shape(), a.shape().axis(axis, op));
  return dtype == Dtype::f32 ? softmax_impl<float, kLog>(a, s, op, tape)
                             : softmax_impl<double, kLog>(a, s, op, tape);
}

}  // namespace

// ---- Front ends -----------------------------------------------------------------------------------

Tensor sum(const Tensor& a) {
  Tape& tape = active_tape();
  detail::check_operands(tape, "sum", a);
  return sum_dispatch(a, reduce_all(a.shape()), 1.0, "sum", tape);
}

Tensor sum(const Tensor& a, const Axes& axes, bool keepdim) {
  Tape& tape = active_tape();
  detail::check_operands(tape, "sum", a);
  return sum_dispatch(a, plan_reduction(a.shape(), axes, keepdim, "sum"), 1.0, "sum", tape);
}

Tensor mean(const Tensor& a) {
  Tape& tape = active_tape();
  detail::check_operands(tape, "mean", a);
  if (a.numel() == 0) throw ShapeError(fmt::format("mean: tensor {} has no elements", a.shape().str()));
  return sum_dispatch(a, reduce_all(a.shape()), 1.0 / static_cast<double>(a.numel()), "mean", tape);
}

Tensor mean(const Tensor& a, const Axes& axes, bool keepdim) {
  Tape& tape = active_tape();
  detail::check_operands(tape, "mean", a);
  const Reduction r = plan_reduction(a.shape(), axes, keepdim, "mean");
  if (r.count == 0) {
    throw ShapeError(fmt::format("mean: axes {} of shape {} hold no elements to average",
                                 axes_str(axes), a.shape().str()));
  }
  return sum_dispatch(a, r, 1.0 / static_cast<double>(r.count), "mean", tape);
}

Tensor max(const Tensor& a) {
  Tape& tape = active_tape();
  detail::check_operands(tape, "max", a);
  return max_dispatch(a, reduce_all(a.shape()), nullptr, tape);
}

Tensor max(const Tensor& a, const Axes& axes, bool keepdim) {
  Tape& tape = active_tape();
  detail::check_operands(tape, "max", a);
  return max_dispatch(a, plan_reduction(a.shape(), axes, keepdim, "max"), &axes, tape);
}

Tensor softmax(const Tensor& a, int axis) { return softmax_dispatch<false>(a, axis, "softmax"); }

Tensor log_softmax(const Tensor& a, int axis) { return softmax_dispatch<true>(a, axis, "log_softmax"); }

}  // namespace tg
