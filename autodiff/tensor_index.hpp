// Moving elements of tg::Tensor around, recorded on the active tape: transpose and permute,
// concatenation, row selection (shuffled batches), gather of class scores, one-hot labels.
//
// Each result is a new recorded tensor (a copy, not a view); its backward adds the gradient back to
// where each element came from, so an element read twice (index_select with a repeated row)
// receives both contributions. Indices are int64 (std::span<const std::int64_t>, or a braced list).
// A shape that does not fit throws tg::ShapeError naming the operation and the shapes; an index
// out of range throws tg::ShapeError naming the index, its position and the shape.
#pragma once

#include <autodiff/tensor.hpp>

#include <cstdint>
#include <initializer_list>
#include <span>

namespace tg {

// ---- Axes ---------------------------------------------------------------------------------------

/// The transpose of a 2-D tensor: out[j, i] = a[i, j]. (For matmul, pass the transpose flags
/// instead: they cost nothing.) Throws tg::ShapeError for another rank.
Tensor transpose(const Tensor& a);

/// The axes of a reordered: out's axis i is a's axis order[i] (negative axes count from the end),
/// so out[i_0, ..., i_r] = a[j] with j[order[k]] = i_k. permute(a, {1, 0}) is transpose(a).
/// Throws tg::ShapeError unless `order` names every axis of a exactly once.
Tensor permute(const Tensor& a, const Axes& order);

// ---- Joining -------------------------------------------------------------------------------------

/// The parts one after another along `axis` (negative counts from the end). They must have the same
/// rank, element type, and extents on every other axis.
Tensor concat(std::span<const Tensor> parts, int axis = 0);
Tensor concat(std::initializer_list<Tensor> parts, int axis = 0);

// ---- Selecting -----------------------------------------------------------------------------------

/// Rows of a (along axis 0) in the order `indices` gives, repeats allowed: out[r] = a[indices[r]];
/// out has shape [indices.size(), a's other extents...]. A shuffled batch is
/// index_select(data, permutation.subspan(begin, size)).
Tensor index_select(const Tensor& a, std::span<const std::int64_t> indices);
Tensor index_select(const Tensor& a, std::initializer_list<std::int64_t> indices);

/// One element per row along the last axis: for a of shape [..., C] and one index per row,
/// out[i] = a[i, index[i]], of shape [...] (a without its last axis). For class scores [N, C] and
/// labels, the score of each example's class; sum(gather(log_softmax(logits), labels)) is minus the
/// cross-entropy.
Tensor gather(const Tensor& a, std::span<const std::int64_t> index);
Tensor gather(const Tensor& a, std::initializer_list<std::int64_t> index);

/// Labels as one-hot rows: out[i, labels[i]] = 1, every other element 0, shape
/// [labels.size(), classes]. A constant (no gradient), recorded on the active tape like every
/// result; clone() to keep it past Tape::reset(). Throws tg::ValueError for classes < 1 or a label
/// outside [0, classes).
Tensor one_hot(std::span<const std::int64_t> labels, std::int64_t classes, Dtype dtype = Dtype::f32);
Tensor one_hot(std::initializer_list<std::int64_t> labels, std::int64_t classes,
               Dtype dtype = Dtype::f32);

}  // namespace tg
