// Losses. Each is one fused primitive of the tape (value and gradient computed together), checked
// against finite differences in tests/nn.
#pragma once

#include <autodiff/tensor.hpp>

#include <cstdint>
#include <span>

namespace tg::nn {

/// How a loss combines per-element (or per-sample) terms.
enum class Reduction { mean, sum };

/// Mean squared error: mean (or sum) of (pred - target)^2; pred and target of the same shape.
/// d/dpred = 2 (pred - target) / n (n = element count for mean, 1 for sum).
Tensor mse_loss(const Tensor& pred, const Tensor& target, Reduction r = Reduction::mean);

/// Cross-entropy from logits [batch, classes] and class indices: for each row
/// logsumexp(logits) - logits[label], computed with the max shift so large logits stay finite;
/// averaged (or summed) over the batch. d/dlogits = softmax(logits) - one_hot(label), over n.
/// Throws tg::ValueError naming the row of a label outside [0, classes).
Tensor cross_entropy(const Tensor& logits, std::span<const std::int64_t> labels,
                     Reduction r = Reduction::mean);

/// Binary cross-entropy with logits x and targets t in [0, 1] (same shape):
/// max(x, 0) - x t + log(1 + exp(-|x|)), stable for large |x|. d/dx = sigmoid(x) - t.
Tensor binary_cross_entropy_with_logits(const Tensor& logits, const Tensor& targets,
                                        Reduction r = Reduction::mean);

}  // namespace tg::nn
