#include <nn/data.hpp>

#include <algorithm>
#include <cstring>
#include <fmt/format.h>
#include <numeric>
#include <random>

namespace tg::nn {

namespace {
void check_x(const Tensor& x) {
  if (!x.defined() || x.rank() < 1) throw ShapeError("TensorDataset: inputs need a leading sample axis");
  if (!x.is_owned()) throw ValueError("TensorDataset: inputs must be owned tensors (clone() a recorded one)");
}

// Permutation of 0..n-1 from a seeded Fisher-Yates shuffle (std::shuffle's algorithm is not fixed
// by the standard; this one is, so the same seed gives the same order everywhere).
// Fills `p` in place (no allocation once it has n elements: a loader reshuffles every epoch).
void permutation_into(std::vector<std::int64_t>& p, std::int64_t n, std::uint64_t seed) {
  p.resize(static_cast<std::size_t>(n));
  std::iota(p.begin(), p.end(), 0);
  std::mt19937_64 gen(seed);
  for (std::int64_t i = n - 1; i > 0; --i) {
    const auto j = static_cast<std::int64_t>(gen() % static_cast<std::uint64_t>(i + 1));
    std::swap(p[static_cast<std::size_t>(i)], p[static_cast<std::size_t>(j)]);
  }
}
std::vector<std::int64_t> permutation(std::int64_t n, std::uint64_t seed) {
  std::vector<std::int64_t> p;
  permutation_into(p, n, seed);
  return p;
}

Tensor gather_rows(const Tensor& src, std::span<const std::int64_t> rows, std::vector<std::int64_t> dims) {
  dims[0] = static_cast<std::int64_t>(rows.size());
  Tensor out = Tensor::zeros(Shape(dims), src.dtype());
  const std::size_t row_bytes = static_cast<std::size_t>(src.shape()[0] == 0 ? 0 : src.numel() / src.shape()[0]) * dtype_size(src.dtype());
  const auto* s = src.dtype() == Dtype::f32 ? reinterpret_cast<const std::byte*>(src.data<float>())
                                            : reinterpret_cast<const std::byte*>(src.data<double>());
  auto* d = out.dtype() == Dtype::f32 ? reinterpret_cast<std::byte*>(out.data<float>())
                                      : reinterpret_cast<std::byte*>(out.data<double>());
  for (std::size_t r = 0; r < rows.size(); ++r) {
    std::memcpy(d + r * row_bytes, s + static_cast<std::size_t>(rows[r]) * row_bytes, row_bytes);
  }
  return out;
}
}  // namespace

TensorDataset::TensorDataset(Tensor x, std::vector<std::int64_t> labels) : x_(std::move(x)), labels_(std::move(labels)) {
  check_x(x_);
  if (static_cast<std::int64_t>(labels_.size()) != x_.shape()[0]) {
    throw ShapeError(fmt::format("TensorDataset: {} labels for {} samples", labels_.size(), x_.shape()[0]));
  }
}

TensorDataset::TensorDataset(Tensor x, Tensor y) : x_(std::move(x)), y_(std::move(y)) {
  check_x(x_);
  check_x(y_);
  if (y_.shape()[0] != x_.shape()[0]) {
    throw ShapeError(fmt::format("TensorDataset: targets {} for inputs {}", y_.shape().str(), x_.shape().str()));
  }
}

TensorDataset TensorDataset::slice(std::int64_t begin, std::int64_t end) const {
  if (begin < 0 || end < begin || end > size()) {  // before the labels are copied from [begin, end)
    throw ShapeError(fmt::format("TensorDataset::slice: rows [{}, {}) are out of range for {} samples", begin, end, size()));
  }
  if (is_classification()) {
    return TensorDataset(x_.rows(begin, end), std::vector<std::int64_t>(labels_.begin() + begin, labels_.begin() + end));
  }
  return TensorDataset(x_.rows(begin, end), y_.rows(begin, end));
}

std::pair<TensorDataset, TensorDataset> TensorDataset::split(double fraction, std::uint64_t seed) const {
  if (!(fraction > 0 && fraction < 1)) throw ValueError(fmt::format("split: fraction must be in (0, 1), got {}", fraction));
  const std::vector<std::int64_t> p = permutation(size(), seed);
  const auto n_val = static_cast<std::int64_t>(static_cast<double>(size()) * fraction);
  const std::vector<std::int64_t> dims_x(x_.shape().dims().begin(), x_.shape().dims().end());
  const std::span<const std::int64_t> train_rows(p.data(), static_cast<std::size_t>(size() - n_val));
  const std::span<const std::int64_t> val_rows(p.data() + size() - n_val, static_cast<std::size_t>(n_val));
  auto part = [&](std::span<const std::int64_t> rows) {
    Tensor x = gather_rows(x_, rows, dims_x);
    if (is_classification()) {
      std::vector<std::int64_t> l;
      for (std::int64_t r : rows) l.push_back(labels_[static_cast<std::size_t>(r)]);
      return TensorDataset(x, std::move(l));
    }
    return TensorDataset(x, gather_rows(y_, rows, std::vector<std::int64_t>(y_.shape().dims().begin(), y_.shape().dims().end())));
  };
  return {part(train_rows), part(val_rows)};
}

DataLoader::DataLoader(const TensorDataset& data, const LoaderOptions& o) : data_(data), o_(o) {
  if (o.batch_size < 1) throw ValueError(fmt::format("DataLoader: batch_size must be >= 1, got {}", o.batch_size));
  order(0);
}

std::int64_t DataLoader::batches() const noexcept {
  const std::int64_t n = data_.size();
  return o_.drop_last ? n / o_.batch_size : (n + o_.batch_size - 1) / o_.batch_size;
}

void DataLoader::order(std::int64_t e) {
  if (o_.shuffle) {
    permutation_into(perm_, data_.size(), o_.seed + static_cast<std::uint64_t>(e));
  } else {
    perm_.resize(static_cast<std::size_t>(data_.size()));
    std::iota(perm_.begin(), perm_.end(), 0);
  }
}

const Batch& DataLoader::batch(std::int64_t i) {
  if (i < 0 || i >= batches()) throw ValueError(fmt::format("DataLoader::batch: index {} of {} batches", i, batches()));
  const std::int64_t begin = i * o_.batch_size;
  const std::int64_t end = std::min(begin + o_.batch_size, data_.size());
  const std::span<const std::int64_t> rows(perm_.data() + begin, static_cast<std::size_t>(end - begin));
  if (!o_.shuffle) {  // contiguous rows: views, no copy
    current_.x = data_.x().rows(begin, end);
    if (!data_.is_classification()) current_.y = data_.y().rows(begin, end);
    current_.labels = data_.labels().subspan(static_cast<std::size_t>(begin), static_cast<std::size_t>(end - begin));
    return current_;
  }
  auto fill = [&](const Tensor& src, Tensor& buffer) {
    if (!buffer.defined()) {  // once: later batches reuse it
      std::vector<std::int64_t> dims(src.shape().dims().begin(), src.shape().dims().end());
      dims[0] = o_.batch_size;
      buffer = Tensor::zeros(Shape(dims), src.dtype());
    }
    const std::size_t row_bytes = static_cast<std::size_t>(src.numel() / std::max<std::int64_t>(src.shape()[0], 1)) * dtype_size(src.dtype());
    const auto* s = src.dtype() == Dtype::f32 ? reinterpret_cast<const std::byte*>(src.data<float>()) : reinterpret_cast<const std::byte*>(src.data<double>());
    auto* d = buffer.dtype() == Dtype::f32 ? reinterpret_cast<std::byte*>(buffer.data<float>()) : reinterpret_cast<std::byte*>(buffer.data<double>());
    for (std::size_t r = 0; r < rows.size(); ++r) std::memcpy(d + r * row_bytes, s + static_cast<std::size_t>(rows[r]) * row_bytes, row_bytes);
    return buffer.rows(0, static_cast<std::int64_t>(rows.size()));
  };
  current_.x = fill(data_.x(), x_buffer_);
  if (data_.is_classification()) {
    if (label_buffer_.empty()) label_buffer_.resize(static_cast<std::size_t>(o_.batch_size));
    for (std::size_t r = 0; r < rows.size(); ++r) label_buffer_[r] = data_.labels()[static_cast<std::size_t>(rows[r])];
    current_.labels = std::span<const std::int64_t>(label_buffer_.data(), rows.size());
  } else {
    current_.y = fill(data_.y(), y_buffer_);
  }
  return current_;
}

}  // namespace tg::nn
