#include <autodiff/tensor_ops.hpp>

#include <algorithm>
#include <cmath>
#include <string_view>

namespace tg {
namespace detail {

Broadcast::Broadcast(const Shape& out, const Shape& a, const Shape& b) : rank(out.rank()), numel(out.numel()) {
  auto strides = [&](const Shape& s, std::array<std::int64_t, Shape::kMaxRank>& st) {
    std::int64_t stride = 1;
    const std::size_t shift = rank - s.rank();
    for (std::size_t d = rank; d-- > 0;) {
      if (d < shift) {
        st[d] = 0;
        continue;
      }
      const std::int64_t extent = s[d - shift];
      st[d] = extent == 1 ? 0 : stride;
      stride *= extent;
    }
  };
  for (std::size_t d = 0; d < rank; ++d) dims[d] = out[d];
  strides(a, sa);
  strides(b, sb);
}

Dtype check_operands_slow(const Tape& tape, std::string_view op, const Tensor& a, const Tensor* b) {
  a.check_live(tape, op);
  if (b != nullptr) {
    b->check_live(tape, op);
    if (a.dtype() != b->dtype()) {
      throw ValueError(fmt::format("{}: element types differ ({} {} and {} {}); convert with .to()",
                                   op, dtype_name(a.dtype()), a.shape().str(), dtype_name(b->dtype()),
                                   b->shape().str()));
    }
  }
  return a.dtype();
}

Tensor scalar_tensor(Tape& tape, double c, Dtype dtype) {
  Tensor t = Tensor::recorded(tape, Shape{}, dtype, false);
  if (dtype == Dtype::f32) *t.data_unchecked<float>() = static_cast<float>(c);
  else *t.data_unchecked<double>() = c;
  return t;
}

template <class T>
void check_anomaly(const Tape& tape, std::string_view op, std::string_view phase, const T* out,
                   std::int64_t n_out, const T* in1, std::int64_t n1, const T* in2, std::int64_t n2) {
  const auto finite = [](const T* p, std::int64_t n) {
    return std::all_of(p, p + n, [](T v) { return std::isfinite(v); });
  };
  const T* bad = std::find_if(out, out + n_out, [](T v) { return !std::isfinite(v); });
  if (bad == out + n_out) return;
  if (!finite(in1, n1) || (in2 != nullptr && !finite(in2, n2))) return;  // not the first
  tape.report_anomaly(op, phase, fmt::format("element {} is {} although the inputs are finite",
                                             bad - out, *bad));
}
template void check_anomaly<float>(const Tape&, std::string_view, std::string_view, const float*,
                                   std::int64_t, const float*, std::int64_t, const float*, std::int64_t);
template void check_anomaly<double>(const Tape&, std::string_view, std::string_view, const double*,
                                    std::int64_t, const double*, std::int64_t, const double*, std::int64_t);

// The loops of the built-in rules (see the extern declarations in tensor_ops.hpp), once.
#define TAPEGRAD_TENSOR_DEFINE_UNARY(R)                                \
  template Tensor unary<float, R>(const R&, const Tensor&, Tape&); \
  template Tensor unary<double, R>(const R&, const Tensor&, Tape&);
#define TAPEGRAD_TENSOR_DEFINE_BINARY(R)                                                    \
  template Tensor binary<float, R>(const R&, const Tensor&, const Tensor&, Tape&);         \
  template Tensor binary<double, R>(const R&, const Tensor&, const Tensor&, Tape&);        \
  template Tensor binary_constant<float, R>(const R&, const Tensor&, double, bool, Tape&); \
  template Tensor binary_constant<double, R>(const R&, const Tensor&, double, bool, Tape&);
TAPEGRAD_TENSOR_UNARY_RULES(TAPEGRAD_TENSOR_DEFINE_UNARY)
TAPEGRAD_TENSOR_BINARY_RULES(TAPEGRAD_TENSOR_DEFINE_BINARY)
#undef TAPEGRAD_TENSOR_DEFINE_UNARY
#undef TAPEGRAD_TENSOR_DEFINE_BINARY

}  // namespace detail

// ---- GEMM ---------------------------------------------------------------------------------------------

namespace {
template <class T>
Tensor matmul_impl(const Tensor& a, const Tensor& b, bool ta, bool tb, Tape& tape) {
  const std::int64_t m = ta ? a.shape()[1] : a.shape()[0];
  const std::int64_t k = ta ? a.shape()[0] : a.shape()[1];
  const std::int64_t n = tb ? b.shape()[0] : b.shape()[1];
  const bool grad = tape.recording() && (a.has_grad() || b.has_grad());
  Tensor y = Tensor::recorded(tape, Shape{m, n}, dtype_of<T>(), grad);
  if (k == 0) std::fill_n(y.data_unchecked<T>(), m * n, T(0));
  else detail::gemm(ta, tb, m, n, k, a.data_unchecked<T>(), b.data_unchecked<T>(), T(0), y.data_unchecked<T>());
  if (tape.anomaly()) [[unlikely]] {
    detail::check_anomaly(tape, "matmul", "forward", y.data_unchecked<T>(), m * n, a.data_unchecked<T>(),
                          a.numel(), b.data_unchecked<T>(), b.numel());
  }
  if (grad) {
    tape.record_backward([a, b, y, ta, tb, m, n, k](Tape& t) {
      const T* gy = y.grad_source<T>(t);
      if (gy == nullptr || k == 0) return;
      // y = op(a) op(b).  d op(a) = gy op(b)^T,  d op(b) = op(a)^T gy; a transposed operand's
      // gradient is the transpose of those, which GEMM produces by swapping its operands.
      // A recorded operand's fresh gradient buffer is written with beta = 0 rather than zeroed
      // first and added to (Tensor::grad_target(tape, overwrite)).
      bool overwrite = false;
      if (T* ga = a.grad_target<T>(t, overwrite)) {
        const T beta = overwrite ? T(0) : T(1);
        if (!ta) detail::gemm(false, !tb, m, k, n, gy, b.data_unchecked<T>(), beta, ga);
        else detail::gemm(tb, true, k, m, n, b.data_unchecked<T>(), gy, beta, ga);
      }
      if (T* gb = b.grad_target<T>(t, overwrite)) {
        const T beta = overwrite ? T(0) : T(1);
        if (!tb) detail::gemm(!ta, false, k, n, m, a.data_unchecked<T>(), gy, beta, gb);
        else detail::gemm(true, ta, n, k, m, gy, a.data_unchecked<T>(), beta, gb);
      }
      if (t.anomaly()) [[unlikely]] {
        if (const T* ga = a.grad_source<T>(t)) detail::check_anomaly(t, "matmul", "backward", ga, a.numel(), gy, m * n);
        if (const T* gb = b.grad_source<T>(t)) detail::check_anomaly(t, "matmul", "backward", gb, b.numel(), gy, m * n);
      }
    });
  }
  return y;
}
}  // namespace

Tensor matmul(const Tensor& a, const Tensor& b, bool transpose_a, bool transpose_b) {
  Tape& tape = active_tape();
  const Dtype dtype = detail::check_operands(tape, "matmul", a, &b);
  if (a.rank() != 2 || b.rank() != 2) {
    throw ShapeError(fmt::format("matmul: needs 2-D operands, got {} and {}", a.shape().str(), b.shape().str()));
  }
  const std::int64_t ka = transpose_a ? a.shape()[0] : a.shape()[1];
  const std::int64_t kb = transpose_b ? b.shape()[1] : b.shape()[0];
  if (ka != kb) {
    throw ShapeError(fmt::format("matmul: inner dimensions differ: {}{} times {}{} ({} vs {})", a.shape().str(),
                                 transpose_a ? "^T" : "", b.shape().str(), transpose_b ? "^T" : "", ka, kb));
  }
  constexpr std::int64_t kIntMax = 2147483647;
  for (std::int64_t d : {a.shape()[0], a.shape()[1], b.shape()[0], b.shape()[1]}) {
    if (d > kIntMax) throw ShapeError(fmt::format("matmul: extent {} exceeds BLAS's int range", d));
  }
  return dtype == Dtype::f32 ? matmul_impl<float>(a, b, transpose_a, transpose_b, tape)
                             : matmul_impl<double>(a, b, transpose_a, transpose_b, tape);
}

}  // namespace tg
