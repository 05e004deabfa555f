// tg::gradcheck for functions of tensors: the reverse-mode gradient of every element of every input
// against central finite differences, in double, with the same kink awareness as the scalar
// gradcheck (gradcheck.hpp): kinked tensor primitives note per element which side of their kink
// each input is on, and where a finite-difference step changes that, the AD value must lie between
// the one-sided difference quotients instead.
//
//     auto report = tg::gradcheck([](std::span<const tg::Tensor> in) {
//                                   return tg::relu(tg::matmul(in[0], in[1]));
//                                 }, {x, w});
//     REQUIRE(report.ok());  // else report.summary() names input, element, both values
//
// A function with a non-scalar result is checked through a fixed random projection of it,
// sum(f(x) * P) with P uniform in [0.5, 1.5) from a fixed seed: one reverse sweep gives the
// gradient of that scalar, and a wrong derivative of any output element shows up in it.
#pragma once

#include <autodiff/gradcheck.hpp>
#include <autodiff/tensor.hpp>

#include <cstdint>
#include <functional>
#include <initializer_list>
#include <span>
#include <string>
#include <utility>
#include <vector>

namespace tg {

/// A function of tensors, written over tg::Tensor operations.
using TensorFunction = std::function<Tensor(std::span<const Tensor>)>;

/// The comparison for one element of one input tensor.
struct TensorGradcheckEntry {
  std::size_t tensor = 0;            ///< which input
  std::vector<std::int64_t> index;   ///< which element of it (one index per axis)
  GradcheckEntry check;              ///< the comparison; check.input is the flat position over all inputs
};

struct TensorGradcheckReport {
  std::vector<TensorGradcheckEntry> entries;  ///< every element of every input, in order
  std::vector<Shape> shapes;                  ///< the inputs' shapes

  bool ok() const noexcept;
  explicit operator bool() const noexcept { return ok(); }
  /// The entries that disagree.
  std::vector<TensorGradcheckEntry> failures() const;
  /// One line per disagreeing element, "input 1 [2, 0] of shape [3, 4] (x = ...): AD ... vs finite
  /// difference ...", or "all N elements of K inputs agree".
  std::string summary() const;
};

namespace detail {
TensorGradcheckReport gradcheck_tensors(const TensorFunction& f, std::span<const Tensor> inputs,
                                        const GradcheckOptions& options);
}  // namespace detail

/// Checks f's reverse-mode gradient with respect to every element of `inputs` (double tensors, any
/// shape; their values are copied, so the caller's tensors and tape are left alone). f, callable as
/// a TensorFunction, is recorded on a private tape with the inputs as parameters; it must return a
/// double tensor. Throws tg::ValueError for a float input or result, a non-finite input element, or
/// invalid options.
///
/// (Templates on f so that overload resolution decides by the inputs, tensors or doubles, without
/// looking into f: a generic lambda given to the scalar gradcheck is never instantiated with
/// tensors. Give a lambda meant for this one a `std::span<const tg::Tensor>` parameter.)
template <class F>
TensorGradcheckReport gradcheck(F&& f, std::span<const Tensor> inputs, const GradcheckOptions& options = {}) {
  return detail::gradcheck_tensors(TensorFunction(std::forward<F>(f)), inputs, options);
}
template <class F>
TensorGradcheckReport gradcheck(F&& f, std::initializer_list<Tensor> inputs,
                                const GradcheckOptions& options = {}) {
  return detail::gradcheck_tensors(TensorFunction(std::forward<F>(f)),
                                   std::span<const Tensor>(inputs.begin(), inputs.size()), options);
}

}  // namespace tg
