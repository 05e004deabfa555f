#include <autodiff/tensor_index.hpp>

#include <autodiff/tensor_ops.hpp>

#include <algorithm>
#include <cstring>

#include <fmt/ranges.h>

namespace tg {

namespace {

/// Copies `n` indices into the tape's arena, for a backward closure to read.
const std::int64_t* keep_indices(Tape& tape, std::span<const std::int64_t> indices) {
  auto* kept = tape.arena().allocate_array<std::int64_t>(std::max<std::size_t>(indices.size(), 1));
  std::copy(indices.begin(), indices.end(), kept);
  return kept;
}

/// Throws tg::ShapeError naming `op` unless every index lies in [0, extent).
void check_indices(std::span<const std::int64_t> indices, std::int64_t extent, std::string_view op,
                   std::string_view what, const Shape& shape) {
  for (std::size_t k = 0; k < indices.size(); ++k) {
    if (indices[k] < 0 || indices[k] >= extent) {
      throw ShapeError(fmt::format("{}: index {} at position {} is outside [0, {}), the {} of shape {}",
                                   op, indices[k], k, extent, what, shape.str()));
    }
  }
}

// ---- Permute ----------------------------------------------------------------------------------------

template <class T>
Tensor permute_impl(const Tensor& a, const detail::Broadcast& plan, const Shape& shape, Tape& tape) {
  const bool grad = tape.recording() && a.has_grad();
  Tensor y = Tensor::recorded(tape, shape, dtype_of<T>(), grad);
  const T* x = a.data_unchecked<T>();
  T* out = y.data_unchecked<T>();
  detail::for_each(plan, [&](std::int64_t o, std::int64_t i, std::int64_t) { out[o] = x[i]; });
  if (grad) {
    tape.record_backward([a, y, plan](Tape& t) {
      const T* gy = y.grad_source<T>(t);
      if (gy == nullptr) return;
      T* ga = a.grad_target<T>(t);
      detail::for_each(plan, [&](std::int64_t o, std::int64_t i, std::int64_t) { ga[i] += gy[o]; });
    });
  }
  return y;
}

Tensor permute_checked(const Tensor& a, const Axes& order, std::string_view op) {
  Tape& tape = active_tape();
  const Dtype dtype = detail::check_operands(tape, op, a);
  const Shape& in = a.shape();
  const std::size_t r = in.rank();
  auto bad = [&] {
    return ShapeError(fmt::format("{}: order ({}) is not a permutation of the {} axes of shape {}", op,
                                  fmt::join(std::span<const int>(order.axes.data(), order.count), ", "),
                                  r, in.str()));
  };
  if (order.count != r) throw bad();
  std::array<bool, Shape::kMaxRank> seen{};
  std::array<std::size_t, Shape::kMaxRank> from{};
  for (std::size_t k = 0; k < r; ++k) {
    const int ax = order.axes[k];
    if (ax < -static_cast<int>(r) || ax >= static_cast<int>(r)) throw bad();
    from[k] = in.axis(ax, op);
    if (seen[from[k]]) throw bad();
    seen[from[k]] = true;
  }
  // Row-major strides of a; the result walks its own axes in order, reading a with them permuted.
  std::array<std::int64_t, Shape::kMaxRank> stride{};
  std::int64_t s = 1;
  for (std::size_t d = r; d-- > 0;) {
    stride[d] = s;
    s *= in[d];
  }
  std::array<std::int64_t, Shape::kMaxRank> dims{};
  for (std::size_t k = 0; k < r; ++k) dims[k] = in[from[k]];
  const Shape shape(std::span<const std::int64_t>(dims.data(), r));
  detail::Broadcast plan(shape, shape, Shape{});
  for (std::size_t k = 0; k < r; ++k) plan.sa[k] = stride[from[k]];
  return dtype == Dtype::f32 ? permute_impl<float>(a, plan, shape, tape)
                             : permute_impl<double>(a, plan, shape, tape);
}

// ---- Concat -----------------------------------------------------------------------------------------

template <class T>
Tensor concat_impl(std::span<const Tensor> parts, std::size_t axis, const Shape& shape, Tape& tape) {
  std::int64_t outer = 1;
  std::int64_t inner = 1;
  for (std::size_t d = 0; d < axis; ++d) outer *= shape[d];
  for (std::size_t d = axis + 1; d < shape.rank(); ++d) inner *= shape[d];
  const std::int64_t total = shape[axis];
  bool grad = false;
  for (const Tensor& p : parts) grad = grad || p.has_grad();
  grad = grad && tape.recording();
  Tensor y = Tensor::recorded(tape, shape, dtype_of<T>(), grad);
  T* out = y.data_unchecked<T>();
  std::int64_t offset = 0;  // along axis
  for (const Tensor& p : parts) {
    const std::int64_t n = p.shape()[axis];
    const std::int64_t block = n * inner;
    const T* x = p.data_unchecked<T>();
    for (std::int64_t o = 0; o < outer; ++o) {
      std::copy_n(x + o * block, block, out + (o * total + offset) * inner);
    }
    if (grad && p.has_grad()) {
      // One closure per part: each adds its own columns of the gradient back.
      tape.record_backward([p, y, outer, total, inner, offset, block](Tape& t) {
        const T* gy = y.grad_source<T>(t);
        if (gy == nullptr) return;
        T* ga = p.grad_target<T>(t);
        for (std::int64_t o = 0; o < outer; ++o) {
          const T* g = gy + (o * total + offset) * inner;
          T* dst = ga + o * block;
          for (std::int64_t k = 0; k < block; ++k) dst[k] += g[k];
        }
      });
    }
    offset += n;
  }
  return y;
}

// ---- Selecting --------------------------------------------------------------------------------------

template <class T>
Tensor index_select_impl(const Tensor& a, std::span<const std::int64_t> indices, const Shape& shape,
                         Tape& tape) {
  const bool grad = tape.recording() && a.has_grad();
  Tensor y = Tensor::recorded(tape, shape, dtype_of<T>(), grad);
  const std::int64_t row = a.shape()[0] == 0 ? 0 : a.numel() / a.shape()[0];
  const T* x = a.data_unchecked<T>();
  T* out = y.data_unchecked<T>();
  for (std::size_t r = 0; r < indices.size(); ++r) {
    std::copy_n(x + indices[r] * row, row, out + static_cast<std::int64_t>(r) * row);
  }
  if (grad) {
    tape.record_backward([a, y, row, idx = keep_indices(tape, indices), n = indices.size()](Tape& t) {
      const T* gy = y.grad_source<T>(t);
      if (gy == nullptr) return;
      T* ga = a.grad_target<T>(t);
      for (std::size_t r = 0; r < n; ++r) {
        const T* g = gy + static_cast<std::int64_t>(r) * row;
        T* dst = ga + idx[r] * row;
        for (std::int64_t k = 0; k < row; ++k) dst[k] += g[k];
      }
    });
  }
  return y;
}

template <class T>
Tensor gather_impl(const Tensor& a, std::span<const std::int64_t> index, const Shape& shape, Tape& tape) {
  const bool grad = tape.recording() && a.has_grad();
  Tensor y = Tensor::recorded(tape, shape, dtype_of<T>(), grad);
  const std::int64_t classes = a.shape()[a.rank() - 1];
  const T* x = a.data_unchecked<T>();
  T* out = y.data_unchecked<T>();
  for (std::size_t i = 0; i < index.size(); ++i) {
    out[i] = x[static_cast<std::int64_t>(i) * classes + index[i]];
  }
  if (grad) {
    tape.record_backward([a, y, classes, idx = keep_indices(tape, index), n = index.size()](Tape& t) {
      const T* gy = y.grad_source<T>(t);
      if (gy == nullptr) return;
      T* ga = a.grad_target<T>(t);
      for (std::size_t i = 0; i < n; ++i) ga[static_cast<std::int64_t>(i) * classes + idx[i]] += gy[i];
    });
  }
  return y;
}

}  // namespace

// ---- Front ends -----------------------------------------------------------------------------------

Tensor transpose(const Tensor& a) {
  if (a.defined() && a.rank() != 2) {
    throw ShapeError(fmt::format("transpose: needs a 2-D tensor, got shape {} (use permute for other ranks)",
                                 a.shape().str()));
  }
  return permute_checked(a, {1, 0}, "transpose");
}

Tensor permute(const Tensor& a, const Axes& order) { return permute_checked(a, order, "permute"); }

Tensor concat(std::span<const Tensor> parts, int axis) {
  if (parts.empty()) throw ShapeError("concat: no tensors to join");
  Tape& tape = active_tape();
  const Tensor& first = parts[0];
  Dtype dtype = detail::check_operands(tape, "concat", first);
  for (const Tensor& p : parts.subspan(1)) dtype = detail::check_operands(tape, "concat", first, &p);
  if (first.rank() == 0) {
    throw ShapeError(fmt::format("concat: cannot join scalar tensors (shape {}); reshape them to [1]",
                                 first.shape().str()));
  }
  const std::size_t ax = first.shape().axis(axis, "concat");
  std::array<std::int64_t, Shape::kMaxRank> dims{};
  std::copy(first.shape().dims().begin(), first.shape().dims().end(), dims.begin());
  dims[ax] = 0;
  for (const Tensor& p : parts) {
    bool fits = p.rank() == first.rank();
    for (std::size_t d = 0; fits && d < first.rank(); ++d) fits = d == ax || p.shape()[d] == first.shape()[d];
    if (!fits) {
      throw ShapeError(fmt::format("concat: shapes {} and {} differ outside axis {}", first.shape().str(),
                                   p.shape().str(), ax));
    }
    dims[ax] += p.shape()[ax];
  }
  const Shape shape(std::span<const std::int64_t>(dims.data(), first.rank()));
  return dtype == Dtype::f32 ? concat_impl<float>(parts, ax, shape, tape)
                             : concat_impl<double>(parts, ax, shape, tape);
}

Tensor concat(std::initializer_list<Tensor> parts, int axis) {
  return concat(std::span<const Tensor>(parts.begin(), parts.size()), axis);
}

Tensor index_select(const Tensor& a, std::span<const std::int64_t> indices) {
  Tape& tape = active_tape();
  const Dtype dtype = detail::check_operands(tape, "index_select", a);
  if (a.rank() == 0) throw ShapeError("index_select: a scalar tensor (shape []) has no rows");
  check_indices(indices, a.shape()[0], "index_select", "rows", a.shape());
  std::array<std::int64_t, Shape::kMaxRank> dims{};
  std::copy(a.shape().dims().begin(), a.shape().dims().end(), dims.begin());
  dims[0] = static_cast<std::int64_t>(indices.size());
  const Shape shape(std::span<const std::int64_t>(dims.data(), a.rank()));
  return dtype == Dtype::f32 ? index_select_impl<float>(a, indices, shape, tape)
                             : index_select_impl<double>(a, indices, shape, tape);
}

Tensor index_select(const Tensor& a, std::initializer_list<std::int64_t> indices) {
  return index_select(a, std::span<const std::int64_t>(indices.begin(), indices.size()));
}

Tensor gather(const Tensor& a, std::span<const std::int64_t> index) {
  Tape& tape = active_tape();
  const Dtype dtype = detail::check_operands(tape, "gather", a);
  if (a.rank() == 0) throw ShapeError("gather: a scalar tensor (shape []) has no last axis to gather along");
  const std::int64_t classes = a.shape()[a.rank() - 1];
  std::array<std::int64_t, Shape::kMaxRank> dims{};
  std::copy(a.shape().dims().begin(), a.shape().dims().end() - 1, dims.begin());
  const Shape shape(std::span<const std::int64_t>(dims.data(), a.rank() - 1));
  if (static_cast<std::int64_t>(index.size()) != shape.numel()) {
    throw ShapeError(fmt::format("gather: {} indices for shape {}, which needs one per row of its last "
                                 "axis: {} (shape {})",
                                 index.size(), a.shape().str(), shape.numel(), shape.str()));
  }
  check_indices(index, classes, "gather", "last axis", a.shape());
  return dtype == Dtype::f32 ? gather_impl<float>(a, index, shape, tape)
                             : gather_impl<double>(a, index, shape, tape);
}

Tensor gather(const Tensor& a, std::initializer_list<std::int64_t> index) {
  return gather(a, std::span<const std::int64_t>(index.begin(), index.size()));
}

Tensor one_hot(std::span<const std::int64_t> labels, std::int64_t classes, Dtype dtype) {
  if (classes < 1) throw ValueError(fmt::format("one_hot: needs at least one class, got {}", classes));
  for (std::size_t i = 0; i < labels.size(); ++i) {
    if (labels[i] < 0 || labels[i] >= classes) {
      throw ValueError(fmt::format("one_hot: label {} at position {} is outside [0, {})", labels[i], i,
                                   classes));
    }
  }
  Tape& tape = active_tape();
  const auto n = static_cast<std::int64_t>(labels.size());
  Tensor y = Tensor::recorded(tape, Shape{n, classes}, dtype, false);
  if (dtype == Dtype::f32) {
    float* out = y.data_unchecked<float>();
    std::fill_n(out, n * classes, 0.0f);
    for (std::int64_t i = 0; i < n; ++i) out[i * classes + labels[static_cast<std::size_t>(i)]] = 1.0f;
  } else {
    double* out = y.data_unchecked<double>();
    std::fill_n(out, n * classes, 0.0);
    for (std::int64_t i = 0; i < n; ++i) out[i * classes + labels[static_cast<std::size_t>(i)]] = 1.0;
  }
  return y;
}

Tensor one_hot(std::initializer_list<std::int64_t> labels, std::int64_t classes, Dtype dtype) {
  return one_hot(std::span<const std::int64_t>(labels.begin(), labels.size()), classes, dtype);
}

}  // namespace tg
