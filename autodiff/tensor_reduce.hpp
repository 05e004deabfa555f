// Reductions of tg::Tensor, recorded on the active tape: sum, mean and max over all elements or over
// chosen axes, and softmax / log_softmax along one axis.
//
// Axes count from the end when negative. Without keepdim the reduced axes disappear from the
// result's shape; with keepdim they stay with extent 1, so the result broadcasts against the input
// (x - max(x, {1}, true)). An empty axis list reduces nothing (NumPy's axis=()): the result is a
// recorded copy. A repeated or out-of-range axis throws tg::ShapeError naming the operation, the
// axes and the shape.
//
// Sums accumulate in double, also for float tensors.
#pragma once

#include <autodiff/tensor.hpp>

namespace tg {

// ---- Sum and mean -----------------------------------------------------------------------------------

/// Sum of all elements, a tensor of shape [] (0 for no elements).
///   d/da_i = 1.
Tensor sum(const Tensor& a);
/// Sum over `axes`.  d/da_i = 1 for the output element that a_i goes into.
Tensor sum(const Tensor& a, const Axes& axes, bool keepdim = false);

/// Mean of all elements, shape []; throws tg::ShapeError for a tensor without elements.
///   d/da_i = 1/n.
Tensor mean(const Tensor& a);
/// Mean over `axes` (n = the number of elements each output averages; throws tg::ShapeError when
/// n = 0).  d/da_i = 1/n.
Tensor mean(const Tensor& a, const Axes& axes, bool keepdim = false);

// ---- Max ----------------------------------------------------------------------------------------------

/// Largest element, shape []; throws tg::ShapeError for a tensor without elements. NaN if any
/// element is NaN.
///
/// d/da_i = 1 where a_i is the only maximum;  0 where a_i < max;  1/k for each of k elements tied
/// at the maximum: the gradient is split evenly among ties (as JAX's max and PyTorch's amax), so
/// the k shares add up to the derivative of max(a, ..., a) = a. This tie rule is fixed: the
/// `at_tie` of Kink::max (per call or tg::SubgradientScope) is the first argument's share of a
/// two-argument max and does not apply to a reduction. Where the maximum is NaN, every element of
/// the slice gets a NaN derivative.
///
/// Kink hits: every output element whose maximum is attained by two or more elements counts one hit
/// under tg::Kink::max, in each backward sweep that passes it. Branches (for tg::gradcheck): each
/// input element notes whether it is below the maximum, tied at it, or the unique maximum, so a
/// finite-difference step that moves the maximum to another element is seen as crossing a kink.
Tensor max(const Tensor& a);
/// Largest element over `axes`, with the tie rule above per output element.
Tensor max(const Tensor& a, const Axes& axes, bool keepdim = false);

// ---- Softmax ------------------------------------------------------------------------------------------

/// softmax along `axis`: y_i = exp(a_i - m) / sum_j exp(a_j - m), m = max_j a_j, so large logits
/// (1000) neither overflow nor give NaN. A slice whose maximum is infinite gives NaN.
///   backward: da_i = y_i (g_i - sum_j g_j y_j).
Tensor softmax(const Tensor& a, int axis = -1);

/// log_softmax along `axis`: y_i = a_i - m - log(sum_j exp(a_j - m)), exact for large logits, and
/// finite where log(softmax) would give log(0) = -inf.
///   backward: da_i = g_i - exp(y_i) sum_j g_j.
Tensor log_softmax(const Tensor& a, int axis = -1);

}  // namespace tg
