// Datasets for the example programs and the trainer: Fashion-MNIST (or any MNIST-format directory)
// and numeric CSV files, as tg::nn::TensorDataset pairs.
#pragma once

#include <nn/data.hpp>

#include <cstdint>
#include <filesystem>
#include <string>

namespace tg::examples {

struct Split {
  nn::TensorDataset train;
  nn::TensorDataset test;
  std::int64_t features = 0;
  std::int64_t outputs = 0;  ///< classes, or 1 for regression
  bool classification = true;
  std::string description;
};

/// An MNIST-format directory (default: Debian's dataset-fashion-mnist), pixels scaled to [0, 1] and
/// standardised with the training set's mean and standard deviation.
Split load_idx(const std::filesystem::path& dir);

enum class Task { automatic, classification, regression };

/// A numeric CSV with a header row; `target` names the column to predict. The last `test_fraction`
/// of a seeded shuffle is the test set; features are standardised with the training rows' means and
/// standard deviations. Task::automatic picks classification when every target is an integer in
/// [0, 1000), regression otherwise.
Split load_csv(const std::filesystem::path& path, const std::string& target, Task task, double test_fraction,
               std::uint64_t seed, Dtype dtype = Dtype::f32);

}  // namespace tg::examples
