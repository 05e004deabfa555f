// The safetensors format (https://huggingface.co/docs/safetensors), for checkpoints that NumPy
// and PyTorch users can read:
//
//     bytes 0..8     N, the header length, unsigned 64-bit little-endian
//     bytes 8..8+N   a JSON object: {"name": {"dtype": "F32", "shape": [2, 3],
//                                              "data_offsets": [begin, end]}, ...,
//                                     "__metadata__": {"key": "value", ...}}
//     the rest       the data section: each tensor's elements, row-major, little-endian, at
//                    [begin, end) relative to the start of the data section
//
// Saving writes the tensors in the order given, contiguously, pads the header with spaces so the
// data section starts at a multiple of 8, and goes through write_file_atomically (a failed save
// leaves the previous file intact). Loading checks everything and throws tg::IoError naming the
// file and what is wrong: header length against the file size, JSON syntax, unknown dtypes,
// shapes against offsets, offsets out of range, overlapping or leaving gaps, duplicate names,
// truncated or trailing data. Nothing is returned unless the whole file is valid.
//
// These are neutral types (a dtype, a shape, bytes); the tensor and module layers convert.
//
//     std::vector<float> w = ...;
//     tg::io::save_safetensors("model.safetensors",
//                              {tg::io::TensorView::of("layer.weight", {16, 2}, w)},
//                              {{"epoch", "3"}});
//     auto file = tg::io::load_safetensors("model.safetensors");
//     std::vector<float> back = file.at("layer.weight").to_vector<float>();
#pragma once

#include <nn/io/atomic_file.hpp>

#include <bit>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <filesystem>
#include <initializer_list>
#include <map>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <type_traits>
#include <vector>

namespace tg::io {

static_assert(std::endian::native == std::endian::little,
              "tg::io reads and writes little-endian data in place; big-endian hosts would need "
              "byte swapping, which is not implemented");

/// Element types of the safetensors format (all of them; tapegrad computes in F32 and F64).
enum class Dtype : std::uint8_t {
  BOOL, U8, I8, F8_E5M2, F8_E4M3, I16, U16, F16, BF16, I32, U32, F32, I64, U64, F64
};

/// "F32", "I64", ...: the name in the header.
std::string_view dtype_name(Dtype dtype) noexcept;
/// Bytes per element.
std::size_t dtype_size(Dtype dtype) noexcept;
/// The dtype called `name`, or nullopt.
std::optional<Dtype> parse_dtype(std::string_view name) noexcept;

/// The dtype that stores C++ type T.
template <class T>
constexpr Dtype dtype_of() noexcept {
  using U = std::remove_cv_t<T>;
  if constexpr (std::is_same_v<U, float>) return Dtype::F32;
  else if constexpr (std::is_same_v<U, double>) return Dtype::F64;
  else if constexpr (std::is_same_v<U, std::int64_t>) return Dtype::I64;
  else if constexpr (std::is_same_v<U, std::int32_t>) return Dtype::I32;
  else if constexpr (std::is_same_v<U, std::int16_t>) return Dtype::I16;
  else if constexpr (std::is_same_v<U, std::int8_t>) return Dtype::I8;
  else if constexpr (std::is_same_v<U, std::uint64_t>) return Dtype::U64;
  else if constexpr (std::is_same_v<U, std::uint32_t>) return Dtype::U32;
  else if constexpr (std::is_same_v<U, std::uint16_t>) return Dtype::U16;
  else if constexpr (std::is_same_v<U, std::uint8_t>) return Dtype::U8;
  else if constexpr (std::is_same_v<U, bool>) return Dtype::BOOL;
  else static_assert(sizeof(T) == 0, "no safetensors dtype for this type");
}

/// Number of elements of `shape` (1 for a scalar, shape {}), or nullopt if it overflows 64 bits.
std::optional<std::uint64_t> element_count(std::span<const std::uint64_t> shape) noexcept;

/// One tensor to save: its name, dtype, shape and bytes (native = little-endian, row-major).
/// The view does not own the bytes; they must outlive the save call.
struct TensorView {
  std::string name;
  Dtype dtype = Dtype::F32;
  std::vector<std::uint64_t> shape;
  std::span<const std::byte> data;

  /// A view of typed values.
  template <class T, std::size_t Extent>
  static TensorView of(std::string name, std::vector<std::uint64_t> shape, std::span<T, Extent> values) {
    return {std::move(name), dtype_of<T>(), std::move(shape), std::as_bytes(values)};
  }
  template <class T>
  static TensorView of(std::string name, std::vector<std::uint64_t> shape, const std::vector<T>& values) {
    return of(std::move(name), std::move(shape), std::span<const T>(values));
  }
};

/// A loaded tensor: owns its bytes.
struct Array {
  Dtype dtype = Dtype::F32;
  std::vector<std::uint64_t> shape;
  std::vector<std::byte> data;

  std::size_t size() const noexcept { return data.size() / dtype_size(dtype); }
  /// The elements as T; throws tg::IoError if T is not this array's dtype.
  template <class T>
  std::vector<T> to_vector() const {
    static_assert(!std::is_same_v<T, bool>, "read BOOL arrays from `data` (std::vector<bool> packs bits)");
    check_dtype(dtype_of<T>());
    std::vector<T> out(size());
    if (!data.empty()) std::memcpy(out.data(), data.data(), data.size());
    return out;
  }

 private:
  void check_dtype(Dtype wanted) const;
};

/// The contents of a safetensors file.
struct SafetensorsFile {
  std::filesystem::path path;                     ///< where it was loaded from
  std::map<std::string, Array> tensors;           ///< by name
  std::map<std::string, std::string> metadata;    ///< the "__metadata__" object, if any

  bool contains(std::string_view name) const { return tensors.find(std::string(name)) != tensors.end(); }
  /// The tensor called `name`; throws tg::IoError naming the file and listing what it holds.
  const Array& at(std::string_view name) const;
};

/// Writes `tensors` and `metadata` to `path` atomically. Throws tg::IoError if a name is empty,
/// repeated, "__metadata__" or not valid UTF-8, if a view's byte count does not match its shape and
/// dtype, or if the write fails (the previous file is then left as it was).
void save_safetensors(const std::filesystem::path& path, std::span<const TensorView> tensors,
                      const std::map<std::string, std::string>& metadata = {});
inline void save_safetensors(const std::filesystem::path& path, std::initializer_list<TensorView> tensors,
                             const std::map<std::string, std::string>& metadata = {}) {
  save_safetensors(path, std::span<const TensorView>(tensors.begin(), tensors.size()), metadata);
}

/// Reads and validates a whole safetensors file. Throws tg::IoError on anything malformed.
SafetensorsFile load_safetensors(const std::filesystem::path& path);

/// Largest header accepted when loading (the reference implementation's limit, 100 MB).
inline constexpr std::uint64_t kMaxSafetensorsHeader = 100'000'000;

}  // namespace tg::io
