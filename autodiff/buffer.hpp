// Memory behind a tape: a growable contiguous buffer for the statement stream, and a block arena
// for everything else recorded (tensor data, backward closures). Both keep their memory across
// Tape::reset(), so a steady record/backward/reset loop stops allocating after its first iteration.
#pragma once

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <new>
#include <type_traits>
#include <vector>

namespace tg::detail {

/// Moves the first `size` elements of `data` (64-byte aligned, or null) into a new 64-byte aligned
/// block of `cap` elements, frees the old block and returns the new one. Throws std::bad_alloc
/// with `data` untouched.
template <class T>
T* reallocate_aligned(T* data, std::size_t size, std::size_t cap) {
  T* fresh = static_cast<T*>(::operator new(cap * sizeof(T), std::align_val_t{64}));
  if (size != 0) std::memcpy(fresh, data, size * sizeof(T));
  ::operator delete(data, std::align_val_t{64});
  return fresh;
}

/// Contiguous storage for trivially copyable T; unlike std::vector it never value-initialises and
/// keeps its capacity on clear(). `limit` bounds the size (the tape's 32-bit index space): growing
/// past it calls `on_overflow`, which throws.
template <class T>
class PodBuffer {
  static_assert(std::is_trivially_copyable_v<T> && std::is_trivially_destructible_v<T>);

 public:
  PodBuffer() = default;
  PodBuffer(const PodBuffer&) = delete;
  PodBuffer& operator=(const PodBuffer&) = delete;
  ~PodBuffer() { ::operator delete(data_, std::align_val_t{64}); }

  std::size_t size() const noexcept { return size_; }
  std::size_t capacity() const noexcept { return capacity_; }
  bool empty() const noexcept { return size_ == 0; }
  T* data() noexcept { return data_; }
  const T* data() const noexcept { return data_; }
  T& operator[](std::size_t i) noexcept { return data_[i]; }
  const T& operator[](std::size_t i) const noexcept { return data_[i]; }
  T& back() noexcept { return data_[size_ - 1]; }
  const T& back() const noexcept { return data_[size_ - 1]; }

  void clear() noexcept { size_ = 0; }

  /// Makes room for `n` more elements, so that `n` push_unchecked calls follow.
  [[gnu::always_inline]] void reserve_more(std::size_t n, std::size_t limit, void (*on_overflow)()) {
    if (size_ + n > capacity_) [[unlikely]] grow(size_ + n, limit, on_overflow);
  }
  [[gnu::always_inline]] void push_unchecked(const T& v) noexcept { data_[size_++] = v; }
  void push(const T& v, std::size_t limit, void (*on_overflow)()) {
    reserve_more(1, limit, on_overflow);
    data_[size_++] = v;
  }
  /// Sets the size to n; new elements are uninitialised.
  void resize_uninitialized(std::size_t n, std::size_t limit, void (*on_overflow)()) {
    if (n > capacity_) grow(n, limit, on_overflow);
    size_ = n;
  }
  void pop_back() noexcept { --size_; }
  /// Appends n zero elements (room for them reserved).
  void append_zeros(std::size_t n) noexcept {
    std::memset(static_cast<void*>(data_ + size_), 0, n * sizeof(T));
    size_ += n;
  }

  /// How many times this buffer went to the heap.
  std::size_t allocations() const noexcept { return allocations_; }

 private:
  void grow(std::size_t need, std::size_t limit, void (*on_overflow)()) {
    if (need > limit) on_overflow();
    std::size_t cap = std::max<std::size_t>({need, capacity_ * 2, 64 / sizeof(T) * 16});
    cap = std::min(cap, limit);
    data_ = reallocate_aligned(data_, size_, cap);
    capacity_ = cap;
    ++allocations_;
  }

  T* data_ = nullptr;
  std::size_t size_ = 0;
  std::size_t capacity_ = 0;
  std::size_t allocations_ = 0;
};

/// The index of the variable an operand reads, as stored in the operand stream. An enum of its own,
/// not a plain std::uint32_t: a store into the stream then cannot alias a tg::Var's fields or the
/// tape's epoch, so the compiler keeps those in registers across a run of primitives.
enum class OperandIndex : std::uint32_t {};

/// The operand stream of a recording: for each operand, the index of the variable it reads and the
/// partial derivative, in two parallel arrays that share one size and one capacity (so recording an
/// operand checks one capacity, not two).
class OperandBuffer {
 public:
  OperandBuffer() = default;
  OperandBuffer(const OperandBuffer&) = delete;
  OperandBuffer& operator=(const OperandBuffer&) = delete;
  ~OperandBuffer() {
    ::operator delete(indices_, std::align_val_t{64});
    ::operator delete(partials_, std::align_val_t{64});
  }

  std::size_t size() const noexcept { return size_; }
  std::size_t capacity() const noexcept { return capacity_; }
  OperandIndex* indices() noexcept { return indices_; }
  const OperandIndex* indices() const noexcept { return indices_; }
  double* partials() noexcept { return partials_; }
  const double* partials() const noexcept { return partials_; }

  void clear() noexcept { size_ = 0; }
  /// Room for `n` more operands, so that `n` push_unchecked calls follow.
  [[gnu::always_inline]] void reserve_more(std::size_t n, std::size_t limit, void (*on_overflow)()) {
    if (capacity_ - size_ < n) [[unlikely]] grow(size_ + n, limit, on_overflow);
  }
  [[gnu::always_inline]] void push_unchecked(std::uint32_t index, double partial) noexcept {
    indices_[size_] = OperandIndex{index};
    partials_[size_] = partial;
    ++size_;
  }
  std::size_t allocations() const noexcept { return allocations_; }

 private:
  void grow(std::size_t need, std::size_t limit, void (*on_overflow)()) {
    if (need > limit) on_overflow();
    const std::size_t cap = std::min(std::max<std::size_t>({need, capacity_ * 2, 1024}), limit);
    // capacity_ moves only once both arrays have grown: if the second allocation throws, the first
    // array is merely larger than needed.
    indices_ = reallocate_aligned(indices_, size_, cap);
    ++allocations_;
    partials_ = reallocate_aligned(partials_, size_, cap);
    ++allocations_;
    capacity_ = cap;
  }

  OperandIndex* indices_ = nullptr;
  double* partials_ = nullptr;
  std::size_t size_ = 0;
  std::size_t capacity_ = 0;
  std::size_t allocations_ = 0;
};

/// Bump allocator over a list of blocks that grow geometrically; reset() rewinds to the first block
/// and reuses every block. Pointers stay valid until reset(). Blocks are 64-byte aligned.
class Arena {
 public:
  Arena() = default;
  Arena(const Arena&) = delete;
  Arena& operator=(const Arena&) = delete;
  ~Arena();

  /// `bytes` bytes aligned to `align` (a power of two, at most 64).
  void* allocate(std::size_t bytes, std::size_t align = alignof(std::max_align_t)) {
    if (current_ < blocks_.size()) {
      const Block& b = blocks_[current_];
      const std::size_t p = (offset_ + align - 1) & ~(align - 1);
      if (p + bytes <= b.size) {
        offset_ = p + bytes;
        used_ += bytes;
        return b.data + p;
      }
    }
    return allocate_slow(bytes, align);
  }

  template <class T>
  T* allocate_array(std::size_t n) {
    static_assert(std::is_trivially_destructible_v<T>);
    return static_cast<T*>(allocate(n * sizeof(T), std::max<std::size_t>(alignof(T), 64)));
  }

  void reset() noexcept {
    current_ = 0;
    offset_ = 0;
    used_ = 0;
  }
  std::size_t used() const noexcept { return used_; }
  std::size_t capacity() const noexcept;
  std::size_t allocations() const noexcept { return allocations_; }

 private:
  struct Block {
    std::byte* data;
    std::size_t size;
  };
  void* allocate_slow(std::size_t bytes, std::size_t align);

  std::vector<Block> blocks_;
  std::size_t current_ = 0;
  std::size_t offset_ = 0;
  std::size_t used_ = 0;
  std::size_t allocations_ = 0;
};

}  // namespace tg::detail
