#include "data.hpp"

#include <nn/io/csv.hpp>
#include <nn/io/idx.hpp>

#include <algorithm>
#include <cmath>
#include <fmt/format.h>
#include <numeric>
#include <random>

namespace tg::examples {

Split load_idx(const std::filesystem::path& dir) {
  const io::MnistData data = io::load_mnist(dir);
  const auto features = static_cast<std::int64_t>(data.train.features());
  double mean = 0;
  for (float v : data.train.pixels) mean += v;
  mean /= static_cast<double>(data.train.pixels.size());
  double var = 0;
  for (float v : data.train.pixels) var += (v - mean) * (v - mean);
  const double sd = std::sqrt(var / static_cast<double>(data.train.pixels.size()));
  auto make = [&](const io::ImageSet& s) {
    std::vector<float> x(s.pixels.size());
    std::transform(s.pixels.begin(), s.pixels.end(), x.begin(),
                   [&](float v) { return static_cast<float>((v - mean) / sd); });
    Tensor t = Tensor::from_values(std::span<const float>(x), {static_cast<std::int64_t>(s.count), features});
    return nn::TensorDataset(t, std::vector<std::int64_t>(s.labels.begin(), s.labels.end()));
  };
  return {make(data.train), make(data.test), features, static_cast<std::int64_t>(data.classes), true,
          fmt::format("{} ({} train, {} test, {} features, {} classes)", dir.string(), data.train.count,
                      data.test.count, features, data.classes)};
}

Split load_csv(const std::filesystem::path& path, const std::string& target, Task task, double test_fraction,
               std::uint64_t seed, Dtype dtype) {
  if (!(test_fraction > 0 && test_fraction < 1)) {
    throw ValueError(fmt::format("load_csv: the test fraction must be in (0, 1), got {}", test_fraction));
  }
  const io::CsvDataset d = io::split_target(io::read_csv(path), target);
  const auto n = static_cast<std::int64_t>(d.rows);
  const auto f = static_cast<std::int64_t>(d.feature_names.size());
  if (n < 2) throw ValueError(fmt::format("load_csv: {} has {} data rows; at least 2 are needed", path.string(), n));
  bool integral = std::all_of(d.targets.begin(), d.targets.end(),
                              [](double t) { return t >= 0 && t < 1000 && t == std::floor(t); });
  const bool classify = task == Task::classification || (task == Task::automatic && integral);
  if (task == Task::classification && !integral) {
    throw ValueError(fmt::format("load_csv: column '{}' of {} must hold class indices 0, 1, ... for classification", target, path.string()));
  }
  // Seeded shuffle, then the split.
  std::vector<std::int64_t> order(static_cast<std::size_t>(n));
  std::iota(order.begin(), order.end(), 0);
  std::mt19937_64 gen(seed);
  for (std::int64_t i = n - 1; i > 0; --i) {
    std::swap(order[static_cast<std::size_t>(i)], order[gen() % static_cast<std::uint64_t>(i + 1)]);
  }
  const std::int64_t n_test = std::max<std::int64_t>(1, static_cast<std::int64_t>(static_cast<double>(n) * test_fraction));
  const std::int64_t n_train = n - n_test;
  std::vector<double> mean(static_cast<std::size_t>(f), 0.0), sd(static_cast<std::size_t>(f), 0.0);
  for (std::int64_t r = 0; r < n_train; ++r) {
    for (std::int64_t c = 0; c < f; ++c) mean[c] += d.features[static_cast<std::size_t>(order[r] * f + c)];
  }
  for (double& m : mean) m /= static_cast<double>(n_train);
  for (std::int64_t r = 0; r < n_train; ++r) {
    for (std::int64_t c = 0; c < f; ++c) {
      const double v = d.features[static_cast<std::size_t>(order[r] * f + c)] - mean[c];
      sd[c] += v * v;
    }
  }
  for (double& s : sd) s = std::sqrt(s / static_cast<double>(n_train)) + 1e-12;
  std::int64_t classes = 0;
  if (classify) classes = static_cast<std::int64_t>(*std::max_element(d.targets.begin(), d.targets.end())) + 1;
  auto make = [&](std::int64_t begin, std::int64_t end) {
    std::vector<double> x;
    std::vector<double> y;
    std::vector<std::int64_t> labels;
    for (std::int64_t r = begin; r < end; ++r) {
      const std::int64_t row = order[static_cast<std::size_t>(r)];
      for (std::int64_t c = 0; c < f; ++c) x.push_back((d.features[static_cast<std::size_t>(row * f + c)] - mean[c]) / sd[c]);
      if (classify) labels.push_back(static_cast<std::int64_t>(d.targets[static_cast<std::size_t>(row)]));
      else y.push_back(d.targets[static_cast<std::size_t>(row)]);
    }
    Tensor xt = Tensor::from_values(std::span<const double>(x), {end - begin, f}, dtype);
    if (classify) return nn::TensorDataset(xt, std::move(labels));
    return nn::TensorDataset(xt, Tensor::from_values(std::span<const double>(y), {end - begin, 1}, dtype));
  };
  return {make(0, n_train), make(n_train, n), f, classify ? classes : 1, classify,
          fmt::format("{} ({} rows: {} train, {} test; {} features; target '{}', {})", path.string(), n, n_train, n_test,
                      f, target, classify ? fmt::format("{} classes", classes) : std::string("regression"))};
}

}  // namespace tg::examples
