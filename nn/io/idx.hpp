// IDX files, the format of MNIST and Fashion-MNIST, gzipped or not, and a loader for an
// MNIST-format directory (Fashion-MNIST from Debian's dataset-fashion-mnist by default).
//
// An IDX file is: two zero bytes, a type byte (0x08 = unsigned byte, the only type read here), a
// rank byte r, then r big-endian 32-bit dimensions, then the elements, row-major. Image files are
// rank 3 (count, rows, cols; magic 0x00000803), label files rank 1 (magic 0x00000801).
//
//     auto data = tg::io::load_mnist();      // /usr/share/datasets/fashion-mnist
//     data.train.pixels;                     // 60000 x 784 floats in [0, 1]
//     data.train.labels;                     // 60000 labels 0..9
#pragma once

#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <vector>

namespace tg::io {

/// The contents of an IDX file of unsigned bytes.
struct IdxArray {
  std::vector<std::size_t> dims;
  std::vector<std::uint8_t> data;  ///< row-major, product(dims) bytes
};

/// Reads an IDX file of unsigned bytes (type 0x08), gzip-compressed or plain (detected from the
/// contents, not the name). When `expected_rank` is non-zero the rank must equal it. Throws
/// tg::IoError naming the file and what is wrong: a bad magic number, another element type, a
/// rank or dimension of 0, truncated data, bytes after the declared data, a corrupt gzip stream.
IdxArray read_idx(const std::filesystem::path& path, std::size_t expected_rank = 0);

/// Where Debian's dataset-fashion-mnist package installs Fashion-MNIST.
inline constexpr const char* kFashionMnistDir = "/usr/share/datasets/fashion-mnist";

/// Images with their labels.
struct ImageSet {
  std::size_t count = 0, rows = 0, cols = 0;
  std::vector<float> pixels;         ///< count x (rows * cols), row-major, byte / 255 in [0, 1]
  std::vector<std::uint8_t> labels;  ///< count labels

  std::size_t features() const noexcept { return rows * cols; }
};

struct MnistData {
  ImageSet train, test;
  std::size_t classes = 0;  ///< 1 + the largest label in either set
};

/// Loads the four files of an MNIST-format directory: train-images-idx3-ubyte,
/// train-labels-idx1-ubyte, t10k-images-idx3-ubyte and t10k-labels-idx1-ubyte, each with or
/// without ".gz" (and the "train-images.idx3-ubyte" spelling of the original MNIST archives).
/// Checks that images and labels agree in count and that train and test images have the same
/// size. When the default directory is missing the error says which Debian package to install.
MnistData load_mnist(const std::filesystem::path& dir = kFashionMnistDir);

}  // namespace tg::io
