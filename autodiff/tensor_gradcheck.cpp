#include <autodiff/tensor_gradcheck.hpp>

#include <autodiff/tensor_ops.hpp>
#include <autodiff/tensor_reduce.hpp>

#include <algorithm>
#include <cmath>

#include <fmt/format.h>
#include <fmt/ranges.h>

namespace tg {

namespace {

constexpr std::uint64_t kProjectionSeed = 0x7470677261646368;  // "tpgradch"

void check_f64(const Tensor& t, std::string_view what) {
  if (t.dtype() != Dtype::f64) {
    throw ValueError(fmt::format("gradcheck: {} is {} {}; gradcheck works in double (convert with "
                                 ".to(tg::Dtype::f64))",
                                 what, dtype_name(t.dtype()), t.shape().str()));
  }
}

/// The multi-index of flat element `flat` of `shape`.
std::vector<std::int64_t> unravel(const Shape& shape, std::int64_t flat) {
  std::vector<std::int64_t> index(shape.rank());
  for (std::size_t d = shape.rank(); d-- > 0;) {
    index[d] = flat % shape[d];
    flat /= shape[d];
  }
  return index;
}

/// f's result, checked: a defined double tensor.
Tensor result_of(const TensorFunction& f, std::span<const Tensor> inputs) {
  Tensor y = f(inputs);
  if (!y.defined()) throw ValueError("gradcheck: the function returned an empty tensor");
  check_f64(y, "the function's result");
  return y;
}

}  // namespace

bool TensorGradcheckReport::ok() const noexcept {
  return std::all_of(entries.begin(), entries.end(), [](const TensorGradcheckEntry& e) { return e.check.ok; });
}

std::vector<TensorGradcheckEntry> TensorGradcheckReport::failures() const {
  std::vector<TensorGradcheckEntry> out;
  std::copy_if(entries.begin(), entries.end(), std::back_inserter(out),
               [](const TensorGradcheckEntry& e) { return !e.check.ok; });
  return out;
}

std::string TensorGradcheckReport::summary() const {
  std::string s;
  for (const TensorGradcheckEntry& e : entries) {
    const GradcheckEntry& c = e.check;
    if (c.ok) continue;
    s += fmt::format("input {} [{}] of shape {} (x = {}): ", e.tensor, fmt::join(e.index, ", "),
                     shapes[e.tensor].str(), c.x);
    if (c.kink) {
      s += fmt::format("AD {} is outside the one-sided quotients [{}, {}] (a kink lies within the step)\n",
                       c.ad, std::min(c.left, c.right), std::max(c.left, c.right));
    } else {
      s += fmt::format("AD {} vs finite difference {} (difference {})\n", c.ad, c.fd, c.ad - c.fd);
    }
  }
  if (s.empty()) s = fmt::format("all {} elements of {} inputs agree\n", entries.size(), shapes.size());
  return s;
}

namespace detail {

TensorGradcheckReport gradcheck_tensors(const TensorFunction& f, std::span<const Tensor> inputs,
                                        const GradcheckOptions& options) {
  // The inputs' values, flattened in order: the point gradcheck_core perturbs.
  std::vector<double> x;
  std::vector<Shape> shapes;
  for (std::size_t k = 0; k < inputs.size(); ++k) {
    if (!inputs[k].defined()) throw ValueError(fmt::format("gradcheck: input {} is an empty tensor", k));
    check_f64(inputs[k], fmt::format("input {}", k));
    const std::vector<double> v = inputs[k].to_vector();
    for (std::size_t i = 0; i < v.size(); ++i) {
      if (!std::isfinite(v[i])) {
        throw ValueError(fmt::format("gradcheck: element {} of input {} (shape {}) is {}, not a finite number",
                                     i, k, inputs[k].shape().str(), v[i]));
      }
    }
    x.insert(x.end(), v.begin(), v.end());
    shapes.push_back(inputs[k].shape());
  }

  // Tensors of `shapes` holding `point`, as parameters when `parameters`.
  auto make_inputs = [&](std::span<const double> point, bool parameters) {
    std::vector<Tensor> in;
    std::size_t at = 0;
    for (const Shape& s : shapes) {
      const auto n = static_cast<std::size_t>(s.numel());
      in.push_back(Tensor::from_values(point.subspan(at, n), s, Dtype::f64));
      if (parameters) in.back().requires_grad();
      at += n;
    }
    return in;
  };

  Tape tape;
  TapeScope scope(tape);

  // Reverse mode: the gradient of sum(f(x) * P) (of f(x) itself when it has one element).
  std::vector<double> ad(x.size(), 0.0);
  Tensor projection;
  {
    const std::vector<Tensor> params = make_inputs(x, true);
    const Tensor y = result_of(f, params);
    if (y.numel() != 1) projection = Tensor::rand(y.shape(), kProjectionSeed, Dtype::f64, 0.5, 1.5);
    const Tensor loss = y.numel() == 1 ? y : sum(y * projection);
    if (loss.has_grad()) {  // else f does not depend on its inputs: all derivatives are 0
      loss.backward();
      std::size_t at = 0;
      for (const Tensor& p : params) {
        const std::vector<double> g = p.grad().to_vector();
        std::copy(g.begin(), g.end(), ad.begin() + static_cast<std::ptrdiff_t>(at));
        at += g.size();
      }
    }
  }

  // Finite differences: f's projected value and the sides of its kinks, without recording.
  auto eval = [&](std::span<const double> point) {
    tape.reset();
    NoGrad no_grad;
    tape.track_branches(true);
    const std::vector<Tensor> in = make_inputs(point, false);
    const Tensor y = result_of(f, in);
    double value = 0;
    if (y.numel() == 1) {
      value = y.item();
    } else {
      const double* p = projection.data<double>();
      const double* v = y.data<double>();
      for (std::int64_t i = 0; i < y.numel(); ++i) value += v[i] * p[i];
    }
    const detail::Probe probe{value, tape.branch_signature()};
    tape.track_branches(false);
    return probe;
  };
  const GradcheckReport flat = detail::gradcheck_core(x, ad, eval, options);

  TensorGradcheckReport report;
  report.shapes = shapes;
  std::size_t k = 0;
  std::size_t start = 0;
  for (const GradcheckEntry& e : flat.entries) {
    while (e.input >= start + static_cast<std::size_t>(shapes[k].numel())) start += static_cast<std::size_t>(shapes[k++].numel());
    report.entries.push_back({k, unravel(shapes[k], static_cast<std::int64_t>(e.input - start)), e});
  }
  return report;
}

}  // namespace detail

}  // namespace tg
