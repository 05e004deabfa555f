// tg::Tensor: a dense, row-major array of float or double whose operations are recorded on the same
// tape as tg::Var, so a program that mixes tensor operations and scalar code differentiates with
// one backward sweep.
//
// Two kinds of tensors share this handle:
//  - owned tensors (made by the factories: zeros, randn, from_values, clone, ...) keep their data on
//    the heap, shared by every handle and view of them (reference counted). A parameter is an owned
//    tensor with requires_grad(): its gradient accumulates over sweeps until zero_grad().
//  - recorded tensors (results of operations) live in the active tape's arena until Tape::reset();
//    a handle used after that throws tg::TapeError, and one must not outlive its Tape. clone() makes
//    an owned copy to keep.
// Views (reshape, rows) share data, and gradient, with the tensor they come from.
#pragma once

#include <autodiff/tape.hpp>
#include <autodiff/var.hpp>

#include <array>
#include <cstdint>
#include <initializer_list>
#include <memory>
#include <span>
#include <string>
#include <string_view>
#include <type_traits>
#include <vector>

#include <fmt/format.h>

namespace tg {

/// Element types of a Tensor.
enum class Dtype : std::uint8_t { f32, f64 };

std::string_view dtype_name(Dtype d) noexcept;
constexpr std::size_t dtype_size(Dtype d) noexcept { return d == Dtype::f32 ? 4 : 8; }
template <class T>
constexpr Dtype dtype_of() noexcept {
  static_assert(std::is_same_v<T, float> || std::is_same_v<T, double>,
                "tensor elements are float or double");
  return std::is_same_v<T, float> ? Dtype::f32 : Dtype::f64;
}

/// The extents of a tensor, rank 0 (a scalar) to kMaxRank.
class Shape {
 public:
  static constexpr std::size_t kMaxRank = 8;

  Shape() noexcept = default;
  Shape(std::initializer_list<std::int64_t> dims);
  explicit Shape(std::span<const std::int64_t> dims);

  std::size_t rank() const noexcept { return rank_; }
  std::int64_t operator[](std::size_t i) const noexcept { return dims_[i]; }
  std::span<const std::int64_t> dims() const noexcept { return {dims_.data(), rank_}; }
  std::int64_t numel() const noexcept {
    std::int64_t n = 1;
    for (std::size_t i = 0; i < rank_; ++i) n *= dims_[i];
    return n;
  }
  /// Extent of axis `axis`, negative counting from the end; throws tg::ShapeError when out of range.
  std::int64_t size(int axis) const;
  /// Normalises a possibly negative axis; throws tg::ShapeError naming `op` when out of range.
  std::size_t axis(int axis, std::string_view op) const;
  std::string str() const;  ///< "[2, 3]"

  friend bool operator==(const Shape& a, const Shape& b) noexcept;

 private:
  std::array<std::int64_t, kMaxRank> dims_{};
  std::size_t rank_ = 0;
};

/// NumPy's broadcasting rule; throws tg::ShapeError naming `op` and both shapes.
Shape broadcast_shapes(const Shape& a, const Shape& b, std::string_view op);

/// Axes of a reduction; negative axes count from the end.
struct Axes {
  Axes(std::initializer_list<int> list);
  explicit Axes(std::span<const int> list);
  std::array<int, Shape::kMaxRank> axes{};
  std::size_t count = 0;
};

namespace detail {
/// Heap data of owned tensors, shared by their handles and views.
struct Storage {
  Storage(std::size_t numel, Dtype dtype);  // zero-filled
  ~Storage();
  Storage(const Storage&) = delete;
  Storage& operator=(const Storage&) = delete;

  void* data;
  std::size_t numel;
  Dtype dtype;
  bool requires_grad = false;
  std::shared_ptr<Storage> grad;  ///< made, zeroed, on the first sweep that reaches it
};

/// Gradient buffer of a recorded tensor, in the arena, valid for one sweep (`sweep`).
struct GradSlot {
  void* data = nullptr;
  std::size_t numel = 0;
  std::uint64_t sweep = 0;
};

/// Where a tensor's gradient goes in the sweep `tape` runs (see Tensor::grad_target): the owned
/// tensor's accumulated gradient, or the recorded tensor's slot, made and zeroed on first use
/// (not zeroed, and *overwrite set, when `overwrite` is given and the view covers the slot).
/// nullptr if the tensor carries no gradient, or when !create and the sweep has not reached it.
void* grad_pointer(const std::shared_ptr<Storage>& storage, GradSlot* slot, std::int64_t offset,
                   std::int64_t numel, Dtype dtype, Tape& tape, bool create, bool* overwrite);

/// An operand as a backward closure keeps it: its values and the way to its gradient, in 56 bytes
/// where the Tensor handle takes 144 (copied into every closure, that handle was most of an
/// operation's fixed cost). Holds an owned tensor's storage alive, as the handle would.
struct Operand {
  std::shared_ptr<Storage> storage;  // owned tensors
  void* data = nullptr;
  GradSlot* slot = nullptr;  // recorded tensors that carry a gradient
  std::int64_t offset = 0;   // element offset of the view
  std::int64_t numel = 0;
  Dtype dtype{};

  template <class T> const T* values() const noexcept { return static_cast<const T*>(data); }
  /// As Tensor::grad_target.
  template <class T> T* grad_target(Tape& tape) const {
    return static_cast<T*>(grad_pointer(storage, slot, offset, numel, dtype, tape, true, nullptr));
  }
  template <class T> T* grad_target(Tape& tape, bool& overwrite) const;
};
}  // namespace detail

class Tensor {
 public:
  /// An empty handle (no data); most operations reject it.
  Tensor() noexcept = default;

  // ---- Factories (owned tensors) ---------------------------------------------------------------
  static Tensor zeros(const Shape& shape, Dtype dtype = Dtype::f32);
  static Tensor ones(const Shape& shape, Dtype dtype = Dtype::f32);
  static Tensor full(const Shape& shape, double value, Dtype dtype = Dtype::f32);
  /// Values in row-major order; throws tg::ShapeError unless values.size() == shape.numel().
  static Tensor from_values(std::span<const double> values, const Shape& shape,
                            Dtype dtype = Dtype::f32);
  static Tensor from_values(std::initializer_list<double> values, const Shape& shape,
                            Dtype dtype = Dtype::f32);
  static Tensor from_values(std::span<const float> values, const Shape& shape);
  /// 0, 1, ..., n-1 (a 1-D tensor).
  static Tensor arange(std::int64_t n, Dtype dtype = Dtype::f32);
  /// Normal(mean, stddev) from a seeded generator: the same seed gives the same values everywhere.
  static Tensor randn(const Shape& shape, std::uint64_t seed, Dtype dtype = Dtype::f32,
                      double mean = 0.0, double stddev = 1.0);
  /// Uniform on [lo, hi) from a seeded generator.
  static Tensor rand(const Shape& shape, std::uint64_t seed, Dtype dtype = Dtype::f32,
                     double lo = 0.0, double hi = 1.0);

  // ---- What it is ----------------------------------------------------------------------------
  bool defined() const noexcept { return data_ != nullptr || shape_.numel() == 0; }
  const Shape& shape() const noexcept { return shape_; }
  std::size_t rank() const noexcept { return shape_.rank(); }
  std::int64_t size(int axis) const { return shape_.size(axis); }
  std::int64_t numel() const noexcept { return shape_.numel(); }
  Dtype dtype() const noexcept { return dtype_; }
  /// Owned (heap, reference counted) rather than recorded in a tape's arena.
  bool is_owned() const noexcept { return storage_ != nullptr; }
  /// Whether gradients flow into this tensor (a parameter, or a result that depends on one).
  bool has_grad() const noexcept;

  /// Element pointer; throws tg::ValueError for the wrong T, tg::TapeError when stale.
  template <class T> T* data();
  template <class T> const T* data() const;
  /// The only element of a one-element tensor, as a double.
  double item() const;
  /// Element at a flat row-major index, as a double (bounds-checked).
  double at(std::int64_t flat) const;
  /// All elements as doubles, row-major.
  std::vector<double> to_vector() const;

  // ---- Gradients -------------------------------------------------------------------------------
  /// Makes an owned tensor a parameter: gradients accumulate into it over backward sweeps.
  Tensor& requires_grad(bool on = true);
  /// For a parameter: its accumulated gradient (an owned tensor sharing the gradient buffer; zeros
  /// before any sweep). For a recorded tensor: its gradient from the latest sweep (zeros if the
  /// sweep did not reach it).
  Tensor grad() const;
  /// Sets a parameter's accumulated gradient to zero.
  void zero_grad();
  /// Reverse sweep from this one-element tensor (seed 1).
  void backward() const;

  // ---- Views and copies -------------------------------------------------------------------------
  /// Same data, new shape; throws tg::ShapeError if the counts differ.
  Tensor reshape(const Shape& shape) const;
  /// The same with the extents listed, one of which may be -1 (inferred): t.reshape({-1, 4}).
  Tensor reshape(std::span<const std::int64_t> dims) const;
  Tensor reshape(std::initializer_list<std::int64_t> dims) const;
  /// Rows [begin, end) along axis 0 (a batch), sharing data and gradient.
  Tensor rows(std::int64_t begin, std::int64_t end) const;
  /// An owned copy of the data with no gradient history (survives Tape::reset()).
  Tensor clone() const;
  /// The same data, cut off from gradients (no copy).
  Tensor detach() const;
  /// A copy converted to `dtype`, recorded (gradients flow back, converted).
  Tensor to(Dtype dtype) const;

  // ---- In place (owned tensors; not recorded: for optimizers and initialisers) -----------------
  Tensor& fill_(double value);
  /// Copies src's values (same shape; converting the element type).
  Tensor& copy_(const Tensor& src);

  // ---- For operations (see tensor_ops.hpp) -------------------------------------------------------
  /// Throws tg::TapeError if this is a recorded tensor from another recording than `tape`'s.
  void check_live(const Tape& tape, std::string_view op) const;
  Tape* tape() const noexcept { return tape_; }
  std::uint32_t epoch() const noexcept { return epoch_; }
  template <class T> T* data_unchecked() const noexcept { return static_cast<T*>(data_); }
  /// A new recorded tensor in `tape`'s arena, uninitialised, with a gradient slot if `with_grad`.
  static Tensor recorded(Tape& tape, const Shape& shape, Dtype dtype, bool with_grad);
  /// Where to add this tensor's gradient during the current sweep (zeroed on first use), or
  /// nullptr if it carries none.
  template <class T> T* grad_target(Tape& tape) const;
  /// The same for a caller that writes every element of this tensor's gradient in one pass: when
  /// this is the sweep's first contribution to a buffer the tensor covers entirely, the buffer is
  /// handed out without zeroing and `overwrite` is set, and the caller assigns (=) where it would
  /// add. Saves a pass over memory on every recorded result's gradient.
  template <class T> T* grad_target(Tape& tape, bool& overwrite) const;
  /// This tensor's gradient in the current sweep, or nullptr if the sweep has not reached it.
  template <class T> const T* grad_source(const Tape& tape) const;
  /// A recorded tensor's gradient slot (nullptr for owned tensors and those without gradient):
  /// a backward closure keeps this, not a copy of the handle, for the result it recorded.
  detail::GradSlot* grad_slot() const noexcept { return slot_; }
  /// What a backward closure keeps of an operand (detail::Operand).
  detail::Operand operand() const { return {storage_, data_, slot_, offset_, numel(), dtype_}; }

 private:
  Tensor(void* data, detail::GradSlot* slot, Tape* tape, std::uint32_t epoch, const Shape& shape,
         Dtype dtype) noexcept
      : data_(data), slot_(slot), tape_(tape), epoch_(epoch), shape_(shape), dtype_(dtype) {}
  void* grad_pointer(Tape& tape, bool create, bool* overwrite = nullptr) const;

  std::shared_ptr<detail::Storage> storage_;  // owned tensors
  void* data_ = nullptr;                      // first element of this view
  detail::GradSlot* slot_ = nullptr;          // recorded tensors that carry a gradient
  std::int64_t offset_ = 0;                   // element offset of this view in storage/slot
  Tape* tape_ = nullptr;                      // recorded tensors: their tape and recording
  std::uint32_t epoch_ = 0;
  Shape shape_;
  Dtype dtype_ = Dtype::f32;
};

// A recorded tensor whose gradient buffer already belongs to this sweep is answered inline (every
// backward closure asks for its output's gradient); the rest goes through grad_pointer.
template <class T>
T* Tensor::grad_target(Tape& tape) const {
  if (slot_ != nullptr && slot_->sweep == tape.sweep_id()) return static_cast<T*>(slot_->data) + offset_;
  return static_cast<T*>(grad_pointer(tape, true));
}
template <class T>
T* Tensor::grad_target(Tape& tape, bool& overwrite) const {
  if (slot_ != nullptr && slot_->sweep == tape.sweep_id()) {
    overwrite = false;
    return static_cast<T*>(slot_->data) + offset_;
  }
  return static_cast<T*>(grad_pointer(tape, true, &overwrite));
}
template <class T>
T* detail::Operand::grad_target(Tape& tape, bool& overwrite) const {
  // Inline for recorded tensors: the buffer already in this sweep, or taken for overwriting (the
  // first contribution of nearly every operation's backward); zeroing and owned tensors out of line.
  if (slot != nullptr) {
    if (slot->sweep == tape.sweep_id()) {
      overwrite = false;
      return static_cast<T*>(slot->data) + offset;
    }
    if (offset == 0 && static_cast<std::size_t>(numel) == slot->numel) {
      if (slot->data == nullptr) slot->data = tape.arena().allocate(slot->numel * sizeof(T), 64);
      slot->sweep = tape.sweep_id();
      overwrite = true;
      return static_cast<T*>(slot->data);
    }
  }
  return static_cast<T*>(grad_pointer(storage, slot, offset, numel, dtype, tape, true, &overwrite));
}
template <class T>
const T* Tensor::grad_source(const Tape& tape) const {
  if (slot_ != nullptr) {
    return slot_->sweep == tape.sweep_id() ? static_cast<const T*>(slot_->data) + offset_ : nullptr;
  }
  return static_cast<const T*>(grad_pointer(const_cast<Tape&>(tape), false));
}

/// A one-element tensor as a Var on the active tape: gradients reaching the Var flow into the
/// tensor. A tensor without gradient gives a constant.
Var to_var(const Tensor& t);
/// Vars as a tensor of `shape` (f64 unless `dtype` says otherwise): gradients flow back to the Vars.
Tensor from_vars(std::span<const Var> vars, const Shape& shape, Dtype dtype = Dtype::f64);

}  // namespace tg

/// Prints `tensor([[1, 2], [3, 4]], shape=[2, 2], dtype=f32)`, eliding the middle of long axes.
template <>
struct fmt::formatter<tg::Tensor> {
  constexpr auto parse(fmt::format_parse_context& ctx) { return ctx.begin(); }
  fmt::format_context::iterator format(const tg::Tensor& t, fmt::format_context& ctx) const;
};
template <>
struct fmt::formatter<tg::Shape> : fmt::formatter<std::string_view> {
  auto format(const tg::Shape& s, fmt::format_context& ctx) const {
    return fmt::formatter<std::string_view>::format(s.str(), ctx);
  }
};
