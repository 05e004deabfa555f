// In-memory datasets and a batch loader.
//
//     tg::nn::TensorDataset train(images, labels);                 // x [N, 784], labels
//     tg::nn::DataLoader loader(train, {.batch_size = 64, .shuffle = true, .seed = 1});
//     for (const tg::nn::Batch& b : loader.epoch(e)) { ... b.x, b.labels ... }
//
// A loader owns its batch buffers and refills them for each batch: the batch a range yields is
// valid until the next one, and a steady epoch loop allocates nothing.
#pragma once

#include <autodiff/tensor.hpp>

#include <cstdint>
#include <optional>
#include <span>
#include <vector>

#include <range/v3/view/iota.hpp>
#include <range/v3/view/transform.hpp>

namespace tg::nn {

/// Inputs x ([N, ...]) with either class labels (classification) or targets y ([N, ...],
/// regression). Owned tensors; rows are samples.
class TensorDataset {
 public:
  TensorDataset(Tensor x, std::vector<std::int64_t> labels);
  TensorDataset(Tensor x, Tensor y);

  std::int64_t size() const noexcept { return x_.shape()[0]; }
  const Tensor& x() const noexcept { return x_; }
  /// Regression targets; undefined for a classification set.
  const Tensor& y() const noexcept { return y_; }
  std::span<const std::int64_t> labels() const noexcept { return labels_; }
  bool is_classification() const noexcept { return !y_.defined(); }

  /// Rows [begin, end) as a dataset (views, no copy).
  TensorDataset slice(std::int64_t begin, std::int64_t end) const;
  /// Splits off the last `fraction` of the rows, after a seeded shuffle: {train, validation}.
  std::pair<TensorDataset, TensorDataset> split(double fraction, std::uint64_t seed) const;

 private:
  Tensor x_;
  Tensor y_;
  std::vector<std::int64_t> labels_;
};

struct LoaderOptions {
  std::int64_t batch_size = 64;
  bool shuffle = true;
  std::uint64_t seed = 0;   ///< epoch e shuffles with seed + e: the same seed, the same batches
  bool drop_last = false;   ///< drop a last batch smaller than batch_size
};

/// One batch: x [b, ...] and labels or y; views into the loader's buffers.
struct Batch {
  Tensor x;
  Tensor y;
  std::span<const std::int64_t> labels;
  std::int64_t size() const noexcept { return x.shape()[0]; }
};

class DataLoader {
 public:
  DataLoader(const TensorDataset& data, const LoaderOptions& o = {});

  std::int64_t batches() const noexcept;
  const TensorDataset& dataset() const noexcept { return data_; }
  const LoaderOptions& options() const noexcept { return o_; }

  /// Batch i of the current epoch order (set by epoch()).
  const Batch& batch(std::int64_t i);

  /// The batches of epoch e, in order, as a range (a range-v3 view over batch indices).
  auto epoch(std::int64_t e) {
    order(e);
    return ranges::views::iota(std::int64_t{0}, batches()) |
           ranges::views::transform([this](std::int64_t i) -> const Batch& { return batch(i); });
  }

 private:
  void order(std::int64_t e);

  TensorDataset data_;
  LoaderOptions o_;
  std::vector<std::int64_t> perm_;
  Tensor x_buffer_;
  Tensor y_buffer_;
  std::vector<std::int64_t> label_buffer_;
  Batch current_;
};

}  // namespace tg::nn
