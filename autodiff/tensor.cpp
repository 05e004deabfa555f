#include <autodiff/tensor.hpp>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <numbers>
#include <random>

namespace tg {

std::string_view dtype_name(Dtype d) noexcept { return d == Dtype::f32 ? "f32" : "f64"; }

// ---- Shape ---------------------------------------------------------------------------------------

Shape::Shape(std::initializer_list<std::int64_t> dims) : Shape(std::span<const std::int64_t>(dims.begin(), dims.size())) {}

Shape::Shape(std::span<const std::int64_t> dims) {
  if (dims.size() > kMaxRank) {
    throw ShapeError(fmt::format("Shape: rank {} exceeds the maximum of {}", dims.size(), kMaxRank));
  }
  for (std::size_t i = 0; i < dims.size(); ++i) {
    if (dims[i] < 0) {
      throw ShapeError(fmt::format("Shape: extent {} of axis {} is negative", dims[i], i));
    }
    dims_[i] = dims[i];
  }
  rank_ = dims.size();
}

std::size_t Shape::axis(int a, std::string_view op) const {
  const auto r = static_cast<int>(rank_);
  if (a < -r || a >= r) {
    throw ShapeError(fmt::format("{}: axis {} is out of range for shape {}", op, a, str()));
  }
  return static_cast<std::size_t>(a < 0 ? a + r : a);
}

std::int64_t Shape::size(int a) const { return dims_[axis(a, "size")]; }

std::string Shape::str() const { return fmt::format("[{}]", fmt::join(dims(), ", ")); }

bool operator==(const Shape& a, const Shape& b) noexcept {
  return a.rank_ == b.rank_ && std::equal(a.dims_.begin(), a.dims_.begin() + static_cast<std::ptrdiff_t>(a.rank_), b.dims_.begin());
}

Shape broadcast_shapes(const Shape& a, const Shape& b, std::string_view op) {
  const std::size_t r = std::max(a.rank(), b.rank());
  std::array<std::int64_t, Shape::kMaxRank> out{};
  for (std::size_t i = 0; i < r; ++i) {
    const std::int64_t da = i < r - a.rank() ? 1 : a[i - (r - a.rank())];
    const std::int64_t db = i < r - b.rank() ? 1 : b[i - (r - b.rank())];
    if (da != db && da != 1 && db != 1) {
      throw ShapeError(fmt::format("{}: shapes {} and {} cannot be broadcast together (axis {}: {} vs {})",
                                   op, a.str(), b.str(), i, da, db));
    }
    out[i] = da == 1 ? db : da;
  }
  return Shape(std::span<const std::int64_t>(out.data(), r));
}

Axes::Axes(std::initializer_list<int> list) : Axes(std::span<const int>(list.begin(), list.size())) {}

Axes::Axes(std::span<const int> list) {
  if (list.size() > Shape::kMaxRank) {
    throw ShapeError(fmt::format("Axes: {} axes given, at most {}", list.size(), Shape::kMaxRank));
  }
  std::copy(list.begin(), list.end(), axes.begin());
  count = list.size();
}

// ---- Storage -------------------------------------------------------------------------------------

namespace detail {
Storage::Storage(std::size_t n, Dtype d) : data(nullptr), numel(n), dtype(d) {
  const std::size_t bytes = std::max<std::size_t>(n * dtype_size(d), 1);
  data = ::operator new(bytes, std::align_val_t{64});
  std::memset(data, 0, bytes);
}
Storage::~Storage() { ::operator delete(data, std::align_val_t{64}); }
}  // namespace detail

namespace {
template <class F>
void fill_with(Tensor& t, F&& next) {
  if (t.dtype() == Dtype::f32) {
    float* p = t.data<float>();
    for (std::int64_t i = 0; i < t.numel(); ++i) p[i] = static_cast<float>(next());
  } else {
    double* p = t.data<double>();
    for (std::int64_t i = 0; i < t.numel(); ++i) p[i] = next();
  }
}
}  // namespace

// ---- Factories -------------------------------------------------------------------------------------

Tensor Tensor::zeros(const Shape& shape, Dtype dtype) {
  Tensor t;
  t.storage_ = std::make_shared<detail::Storage>(static_cast<std::size_t>(shape.numel()), dtype);
  t.data_ = t.storage_->data;
  t.shape_ = shape;
  t.dtype_ = dtype;
  return t;
}

Tensor Tensor::ones(const Shape& shape, Dtype dtype) { return full(shape, 1.0, dtype); }

Tensor Tensor::full(const Shape& shape, double value, Dtype dtype) {
  Tensor t = zeros(shape, dtype);
  t.fill_(value);
  return t;
}

Tensor Tensor::from_values(std::span<const double> values, const Shape& shape, Dtype dtype) {
  if (static_cast<std::int64_t>(values.size()) != shape.numel()) {
    throw ShapeError(fmt::format("Tensor::from_values: {} values for shape {} ({} elements)",
                                 values.size(), shape.str(), shape.numel()));
  }
  Tensor t = zeros(shape, dtype);
  std::size_t i = 0;
  fill_with(t, [&] { return values[i++]; });
  return t;
}

Tensor Tensor::from_values(std::initializer_list<double> values, const Shape& shape, Dtype dtype) {
  return from_values(std::span<const double>(values.begin(), values.size()), shape, dtype);
}

Tensor Tensor::from_values(std::span<const float> values, const Shape& shape) {
  if (static_cast<std::int64_t>(values.size()) != shape.numel()) {
    throw ShapeError(fmt::format("Tensor::from_values: {} values for shape {} ({} elements)",
                                 values.size(), shape.str(), shape.numel()));
  }
  Tensor t = zeros(shape, Dtype::f32);
  std::copy(values.begin(), values.end(), t.data<float>());
  return t;
}

Tensor Tensor::arange(std::int64_t n, Dtype dtype) {
  if (n < 0) throw ShapeError(fmt::format("Tensor::arange: negative length {}", n));
  Tensor t = zeros(Shape{n}, dtype);
  double v = 0;
  fill_with(t, [&] { return v++; });
  return t;
}

Tensor Tensor::randn(const Shape& shape, std::uint64_t seed, Dtype dtype, double mean, double stddev) {
  if (!std::isfinite(mean) || !(stddev >= 0) || !std::isfinite(stddev)) {
    throw ValueError(fmt::format("Tensor::randn: needs a finite mean and stddev >= 0, got {} and {}",
                                 mean, stddev));
  }
  // Box-Muller over std::mt19937_64, whose output the standard fixes: same seed, same values.
  std::mt19937_64 gen(seed);
  auto uniform = [&] { return (static_cast<double>(gen() >> 11) + 0.5) * 0x1.0p-53; };  // (0, 1)
  bool have_spare = false;
  double spare = 0;
  Tensor t = zeros(shape, dtype);
  fill_with(t, [&] {
    if (have_spare) {
      have_spare = false;
      return mean + stddev * spare;
    }
    const double r = std::sqrt(-2.0 * std::log(uniform()));
    const double theta = 2.0 * std::numbers::pi * uniform();
    spare = r * std::sin(theta);
    have_spare = true;
    return mean + stddev * r * std::cos(theta);
  });
  return t;
}

Tensor Tensor::rand(const Shape& shape, std::uint64_t seed, Dtype dtype, double lo, double hi) {
  if (!std::isfinite(lo) || !std::isfinite(hi) || !(lo <= hi)) {
    throw ValueError(fmt::format("Tensor::rand: needs finite lo <= hi, got {} and {}", lo, hi));
  }
  std::mt19937_64 gen(seed);
  Tensor t = zeros(shape, dtype);
  fill_with(t, [&] {
    const double u = static_cast<double>(gen() >> 11) * 0x1.0p-53;  // [0, 1)
    const double v = lo + (hi - lo) * u;
    return v < hi ? v : lo;  // rounding must not reach hi
  });
  if (dtype == Dtype::f32) {  // float rounding may land on hi
    for (float& v : std::span<float>(t.data<float>(), static_cast<std::size_t>(t.numel()))) {
      if (v >= static_cast<float>(hi) && lo < hi) v = std::nextafter(static_cast<float>(hi), static_cast<float>(lo));
    }
  }
  return t;
}

// ---- Access ----------------------------------------------------------------------------------------

void Tensor::check_live(const Tape& tape, std::string_view op) const {
  if (!defined()) throw ValueError(fmt::format("{}: the tensor is empty (default-constructed)", op));
  if (tape_ != nullptr && (tape_ != &tape || epoch_ != tape.epoch())) [[unlikely]] {
    throw TapeError(fmt::format(
        "{}: tensor {} belongs to another recording (the tape was reset since it was made, or it "
        "comes from another tape or thread); record it again, or clone() results you keep",
        op, shape_.str()));
  }
}

namespace {
void check_live_own(const Tensor& t, std::string_view op) {
  if (t.tape() != nullptr) t.check_live(*t.tape(), op);
  else if (!t.defined()) throw ValueError(fmt::format("{}: the tensor is empty (default-constructed)", op));
}
}  // namespace

template <class T>
T* Tensor::data() {
  check_live_own(*this, "data");
  if (dtype_ != dtype_of<T>()) {
    throw ValueError(fmt::format("data: tensor holds {} elements, not {}", dtype_name(dtype_),
                                 dtype_name(dtype_of<T>())));
  }
  return static_cast<T*>(data_);
}
template <class T>
const T* Tensor::data() const {
  return const_cast<Tensor*>(this)->data<T>();
}
template float* Tensor::data<float>();
template double* Tensor::data<double>();
template const float* Tensor::data<float>() const;
template const double* Tensor::data<double>() const;

double Tensor::at(std::int64_t flat) const {
  check_live_own(*this, "at");
  if (flat < 0 || flat >= numel()) {
    throw ShapeError(fmt::format("at: index {} is out of range for shape {}", flat, shape_.str()));
  }
  return dtype_ == Dtype::f32 ? static_cast<double>(static_cast<const float*>(data_)[flat])
                              : static_cast<const double*>(data_)[flat];
}

double Tensor::item() const {
  if (numel() != 1) {
    throw ShapeError(fmt::format("item: needs a one-element tensor, got shape {}", shape_.str()));
  }
  return at(0);
}

std::vector<double> Tensor::to_vector() const {
  check_live_own(*this, "to_vector");
  std::vector<double> v(static_cast<std::size_t>(numel()));
  for (std::int64_t i = 0; i < numel(); ++i) v[static_cast<std::size_t>(i)] = at(i);
  return v;
}

// ---- Gradients -------------------------------------------------------------------------------------

bool Tensor::has_grad() const noexcept {
  return storage_ ? storage_->requires_grad : slot_ != nullptr;
}

Tensor& Tensor::requires_grad(bool on) {
  if (!storage_) {
    throw ValueError("requires_grad: only owned tensors (made by a factory or clone()) can be "
                     "parameters; a recorded result already carries gradients when its inputs do");
  }
  storage_->requires_grad = on;
  return *this;
}

void* detail::grad_pointer(const std::shared_ptr<Storage>& storage, GradSlot* slot,
                           std::int64_t offset, std::int64_t numel, Dtype dtype, Tape& tape,
                           bool create, bool* overwrite) {
  if (overwrite != nullptr) *overwrite = false;
  const std::size_t byte_offset = static_cast<std::size_t>(offset) * dtype_size(dtype);
  if (storage) {
    if (!storage->requires_grad) return nullptr;
    if (!storage->grad) {
      if (!create) return nullptr;
      storage->grad = std::make_shared<Storage>(storage->numel, storage->dtype);
    }
    return static_cast<std::byte*>(storage->grad->data) + byte_offset;
  }
  if (slot == nullptr) return nullptr;
  if (slot->sweep != tape.sweep_id()) {
    if (!create) return nullptr;
    const std::size_t bytes = slot->numel * dtype_size(dtype);
    if (slot->data == nullptr) slot->data = tape.arena().allocate(bytes, 64);
    if (overwrite != nullptr && offset == 0 && static_cast<std::size_t>(numel) == slot->numel) {
      *overwrite = true;  // the caller writes every element
    } else {
      std::memset(slot->data, 0, bytes);
    }
    slot->sweep = tape.sweep_id();
  }
  return static_cast<std::byte*>(slot->data) + byte_offset;
}

void* Tensor::grad_pointer(Tape& tape, bool create, bool* overwrite) const {
  return detail::grad_pointer(storage_, slot_, offset_, numel(), dtype_, tape, create, overwrite);
}

Tensor Tensor::grad() const {
  check_live_own(*this, "grad");
  if (storage_) {
    if (!storage_->requires_grad) {
      throw ValueError(fmt::format("grad: tensor {} is not a parameter (call requires_grad())", shape_.str()));
    }
    if (!storage_->grad) storage_->grad = std::make_shared<detail::Storage>(storage_->numel, storage_->dtype);
    Tensor g;
    g.storage_ = storage_->grad;
    g.data_ = static_cast<std::byte*>(g.storage_->data) + static_cast<std::size_t>(offset_) * dtype_size(dtype_);
    g.shape_ = shape_;
    g.dtype_ = dtype_;
    return g;
  }
  if (slot_ == nullptr) {
    throw ValueError(fmt::format("grad: tensor {} carries no gradient (none of its inputs is a parameter)", shape_.str()));
  }
  if (slot_->sweep != tape_->sweep_id()) return zeros(shape_, dtype_);
  Tensor g = *this;
  g.slot_ = nullptr;
  g.data_ = static_cast<std::byte*>(slot_->data) + static_cast<std::size_t>(offset_) * dtype_size(dtype_);
  return g;
}

void Tensor::zero_grad() {
  if (storage_ && storage_->grad) {
    std::memset(static_cast<std::byte*>(storage_->grad->data) + static_cast<std::size_t>(offset_) * dtype_size(dtype_), 0,
                static_cast<std::size_t>(numel()) * dtype_size(dtype_));
  }
}

void Tensor::backward() const {
  if (numel() != 1) {
    throw ShapeError(fmt::format("backward: needs a one-element tensor (a loss), got shape {}", shape_.str()));
  }
  const Var v = to_var(*this);
  if (v.is_constant()) {
    throw TapeError("backward: this tensor carries no gradient (no parameter reached it, or it was "
                    "computed under NoGrad)");
  }
  v.backward();
}

Tensor Tensor::recorded(Tape& tape, const Shape& shape, Dtype dtype, bool with_grad) {
  const std::size_t n = static_cast<std::size_t>(shape.numel());
  const std::size_t bytes = std::max<std::size_t>(n * dtype_size(dtype), 1);
  // One allocation: the gradient slot (when asked for) in the 64 bytes before the data.
  constexpr std::size_t kSlotRoom = 64;
  static_assert(sizeof(detail::GradSlot) <= kSlotRoom);
  std::byte* memory = static_cast<std::byte*>(tape.arena().allocate(bytes + (with_grad ? kSlotRoom : 0), 64));
  detail::GradSlot* slot = nullptr;
  if (with_grad) {
    slot = ::new (memory) detail::GradSlot{nullptr, n, 0};
    memory += kSlotRoom;
  }
  void* data = memory;
  // Constructed in place, members initialised once (a default-constructed Tensor zeroes its
  // shape first: measurable at a few nanoseconds per operation).
  return Tensor(data, slot, &tape, tape.epoch(), shape, dtype);
}

// ---- Views and copies ------------------------------------------------------------------------------

Tensor Tensor::reshape(const Shape& shape) const { return reshape(shape.dims()); }

Tensor Tensor::reshape(std::initializer_list<std::int64_t> dims) const {
  return reshape(std::span<const std::int64_t>(dims.begin(), dims.size()));
}

Tensor Tensor::reshape(std::span<const std::int64_t> requested) const {
  check_live_own(*this, "reshape");
  auto listed = [&] { return fmt::format("[{}]", fmt::join(requested, ", ")); };  // for messages only
  if (requested.size() > Shape::kMaxRank) {
    throw ShapeError(fmt::format("reshape: {} has rank {}, more than {}", listed(), requested.size(), Shape::kMaxRank));
  }
  std::array<std::int64_t, Shape::kMaxRank> dims{};
  std::int64_t known = 1;
  int infer = -1;
  for (std::size_t i = 0; i < requested.size(); ++i) {
    dims[i] = requested[i];
    if (dims[i] == -1) {
      if (infer >= 0) throw ShapeError(fmt::format("reshape: more than one -1 in {}", listed()));
      infer = static_cast<int>(i);
    } else if (dims[i] < 0) {
      throw ShapeError(fmt::format("reshape: extent {} in {} is negative", dims[i], listed()));
    } else {
      known *= dims[i];
    }
  }
  if (infer >= 0 && known != 0 && numel() % known == 0) dims[static_cast<std::size_t>(infer)] = numel() / known;
  if (infer >= 0 && (known == 0 || numel() % known != 0)) {
    throw ShapeError(fmt::format("reshape: cannot view shape {} ({} elements) as {}", shape_.str(), numel(), listed()));
  }
  const Shape target(std::span<const std::int64_t>(dims.data(), requested.size()));
  if (target.numel() != numel()) {
    throw ShapeError(fmt::format("reshape: cannot view shape {} ({} elements) as {}", shape_.str(), numel(), listed()));
  }
  Tensor t = *this;
  t.shape_ = target;
  return t;
}

Tensor Tensor::rows(std::int64_t begin, std::int64_t end) const {
  check_live_own(*this, "rows");
  if (rank() == 0) throw ShapeError("rows: a scalar tensor has no rows");
  if (begin < 0 || end < begin || end > shape_[0]) {
    throw ShapeError(fmt::format("rows: range [{}, {}) is out of bounds for shape {}", begin, end, shape_.str()));
  }
  std::array<std::int64_t, Shape::kMaxRank> dims{};
  std::copy(shape_.dims().begin(), shape_.dims().end(), dims.begin());
  dims[0] = end - begin;
  const std::int64_t row = shape_[0] == 0 ? 0 : numel() / shape_[0];
  Tensor t = *this;
  t.shape_ = Shape(std::span<const std::int64_t>(dims.data(), rank()));
  t.offset_ = offset_ + begin * row;
  t.data_ = static_cast<std::byte*>(data_) + static_cast<std::size_t>(begin * row) * dtype_size(dtype_);
  return t;
}

Tensor Tensor::clone() const {
  check_live_own(*this, "clone");
  Tensor t = zeros(shape_, dtype_);
  std::memcpy(t.data_, data_, static_cast<std::size_t>(numel()) * dtype_size(dtype_));
  return t;
}

Tensor Tensor::detach() const {
  check_live_own(*this, "detach");
  if (storage_ && storage_->requires_grad) return clone();  // a view would share requires_grad
  Tensor t = *this;
  t.slot_ = nullptr;
  return t;
}

Tensor Tensor::to(Dtype dtype) const {
  Tape& tape = active_tape();
  check_live(tape, "to");
  const bool grad = tape.recording() && has_grad();
  Tensor out = recorded(tape, shape_, dtype, grad);
  const auto n = static_cast<std::size_t>(numel());
  auto convert = [n](const void* src, Dtype from, void* dst, Dtype to_type, bool add) {
    for (std::size_t i = 0; i < n; ++i) {
      const double v = from == Dtype::f32 ? static_cast<double>(static_cast<const float*>(src)[i])
                                          : static_cast<const double*>(src)[i];
      if (to_type == Dtype::f32) {
        float& d = static_cast<float*>(dst)[i];
        d = add ? d + static_cast<float>(v) : static_cast<float>(v);
      } else {
        double& d = static_cast<double*>(dst)[i];
        d = add ? d + v : v;
      }
    }
  };
  convert(data_, dtype_, out.data_, dtype, false);
  if (grad) {
    tape.record_backward([in = *this, out, convert](Tape& t) {
      const void* g = out.dtype() == Dtype::f32 ? static_cast<const void*>(out.grad_source<float>(t))
                                                : static_cast<const void*>(out.grad_source<double>(t));
      if (g == nullptr) return;
      void* dst = in.dtype() == Dtype::f32 ? static_cast<void*>(in.grad_target<float>(t))
                                           : static_cast<void*>(in.grad_target<double>(t));
      convert(g, out.dtype(), dst, in.dtype(), true);
    });
  }
  return out;
}

Tensor& Tensor::fill_(double value) {
  check_live_own(*this, "fill_");
  fill_with(*this, [value] { return value; });
  return *this;
}

Tensor& Tensor::copy_(const Tensor& src) {
  check_live_own(*this, "copy_");
  check_live_own(src, "copy_");
  if (!(src.shape() == shape_)) {
    throw ShapeError(fmt::format("copy_: source shape {} differs from destination shape {}", src.shape().str(), shape_.str()));
  }
  std::int64_t i = 0;
  fill_with(*this, [&] { return src.at(i++); });
  return *this;
}

// ---- Var <-> Tensor ------------------------------------------------------------------------------

Var to_var(const Tensor& t) {
  Tape& tape = active_tape();
  t.check_live(tape, "to_var");
  const double value = t.item();
  if (!t.has_grad() || !tape.recording()) return Var::constant(value);
  const Index s = tape.push_input();
  tape.record_backward([t, s](Tape& tp) {
    // As a scalar statement: an adjoint of 0 (the output does not use this Var) hands nothing
    // down, so the tensor is not reached and its backward, where 0 * an infinite derivative would
    // be NaN, does not run.
    const double a = tp.adjoint(s);
    if (a == 0.0) return;
    if (t.dtype() == Dtype::f32) {
      *t.grad_target<float>(tp) += static_cast<float>(a);
    } else {
      *t.grad_target<double>(tp) += a;
    }
  });
  return Var::recorded(value, s, tape);
}

Tensor from_vars(std::span<const Var> vars, const Shape& shape, Dtype dtype) {
  if (static_cast<std::int64_t>(vars.size()) != shape.numel()) {
    throw ShapeError(fmt::format("from_vars: {} Vars for shape {} ({} elements)", vars.size(), shape.str(), shape.numel()));
  }
  Tape& tape = active_tape();
  bool any = false;
  for (const Var& v : vars) {
    if (v.is_constant()) continue;
    tape.check_epoch(v.epoch(), "from_vars");
    any = true;
  }
  const bool grad = any && tape.recording();
  Tensor out = Tensor::recorded(tape, shape, dtype, grad);
  for (std::size_t k = 0; k < vars.size(); ++k) {
    if (dtype == Dtype::f32) out.data_unchecked<float>()[k] = static_cast<float>(vars[k].value());
    else out.data_unchecked<double>()[k] = vars[k].value();
  }
  if (grad) {
    // The indices, kept in the arena with the closure.
    Index* idx = tape.arena().allocate_array<Index>(vars.size());
    for (std::size_t k = 0; k < vars.size(); ++k) idx[k] = vars[k].index();
    tape.record_backward([out, idx, n = vars.size()](Tape& t) {
      const float* gf = out.dtype() == Dtype::f32 ? out.grad_source<float>(t) : nullptr;
      const double* gd = out.dtype() == Dtype::f64 ? out.grad_source<double>(t) : nullptr;
      if (gf == nullptr && gd == nullptr) return;
      for (std::size_t k = 0; k < n; ++k) {
        if (idx[k] != 0) t.add_adjoint(idx[k], gf ? static_cast<double>(gf[k]) : gd[k]);
      }
    });
  }
  return out;
}

}  // namespace tg

// ---- Printing ----------------------------------------------------------------------------------------

namespace {
void format_axis(const tg::Tensor& t, std::size_t axis, std::int64_t base, std::int64_t stride,
                 std::string& out) {
  const std::int64_t n = t.shape()[axis];
  const std::int64_t inner = stride / std::max<std::int64_t>(n, 1);
  constexpr std::int64_t kEdge = 3;
  out += '[';
  for (std::int64_t i = 0; i < n; ++i) {
    if (n > 2 * kEdge && i == kEdge) {
      out += "..., ";
      i = n - kEdge;
    }
    if (axis + 1 == t.rank()) {
      out += fmt::format("{:.6g}", t.at(base + i));
    } else {
      format_axis(t, axis + 1, base + i * inner, inner, out);
    }
    if (i + 1 < n) out += ", ";
  }
  out += ']';
}
}  // namespace

fmt::format_context::iterator fmt::formatter<tg::Tensor>::format(const tg::Tensor& t,
                                                                  fmt::format_context& ctx) const {
  if (!t.defined()) return fmt::format_to(ctx.out(), "tensor(undefined)");
  std::string body;
  if (t.rank() == 0) {
    body = fmt::format("{:.6g}", t.at(0));
  } else {
    format_axis(t, 0, 0, t.numel(), body);
  }
  return fmt::format_to(ctx.out(), "tensor({}, shape={}, dtype={})", body, t.shape().str(),
                        tg::dtype_name(t.dtype()));
}
