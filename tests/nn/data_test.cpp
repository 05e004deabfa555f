// TensorDataset and DataLoader: batch counts with and without drop_last, every sample once per
// epoch, shuffles fixed by (seed, epoch), labels and targets staying with their rows, split().
#include "nn_test_util.hpp"

#include <nn/data.hpp>

#include <algorithm>
#include <numeric>
#include <set>

using tg::Dtype;
using tg::Shape;
using tg::Tensor;
using namespace tg::nn;

namespace {

// n samples of 2 features: row i is [i, -i]; label i % 3 (classification) or target [10 i]
// (regression). Each row thereby says which sample it is.
Tensor features(std::int64_t n) {
  std::vector<double> v;
  for (std::int64_t i = 0; i < n; ++i) {
    v.push_back(static_cast<double>(i));
    v.push_back(-static_cast<double>(i));
  }
  return Tensor::from_values(std::span<const double>(v), {n, 2}, Dtype::f32);
}
std::vector<std::int64_t> labels(std::int64_t n) {
  std::vector<std::int64_t> l;
  for (std::int64_t i = 0; i < n; ++i) l.push_back(i % 3);
  return l;
}
Tensor targets(std::int64_t n) {
  std::vector<double> v;
  for (std::int64_t i = 0; i < n; ++i) v.push_back(10.0 * static_cast<double>(i));
  return Tensor::from_values(std::span<const double>(v), {n, 1}, Dtype::f64);
}

// The sample ids of an epoch in order, batch by batch, checking each row against its label.
std::vector<std::vector<std::int64_t>> epoch_ids(DataLoader& loader, std::int64_t e) {
  std::vector<std::vector<std::int64_t>> out;
  for (const Batch& b : loader.epoch(e)) {
    std::vector<std::int64_t> ids;
    for (std::int64_t r = 0; r < b.size(); ++r) {
      const auto id = static_cast<std::int64_t>(b.x.at(2 * r));
      REQUIRE(b.x.at(2 * r + 1) == -static_cast<double>(id));
      if (loader.dataset().is_classification()) {
        REQUIRE(b.labels.size() == static_cast<std::size_t>(b.size()));
        REQUIRE(b.labels[static_cast<std::size_t>(r)] == id % 3);
      } else {
        REQUIRE(b.y.at(r) == 10.0 * static_cast<double>(id));
      }
      ids.push_back(id);
    }
    out.push_back(ids);
  }
  return out;
}

std::vector<std::int64_t> flat(const std::vector<std::vector<std::int64_t>>& batches) {
  std::vector<std::int64_t> all;
  for (const auto& b : batches) all.insert(all.end(), b.begin(), b.end());
  return all;
}

}  // namespace

TEST_CASE("DataLoader: ceil(n / b) batches, the last one short, drop_last drops it", "[nn][data]") {
  const TensorDataset data(features(10), labels(10));
  DataLoader keep(data, {.batch_size = 4, .shuffle = false});
  REQUIRE(keep.batches() == 3);
  std::vector<std::int64_t> sizes;
  for (const auto& b : epoch_ids(keep, 0)) sizes.push_back(static_cast<std::int64_t>(b.size()));
  REQUIRE(sizes == std::vector<std::int64_t>{4, 4, 2});

  DataLoader drop(data, {.batch_size = 4, .shuffle = true, .seed = 1, .drop_last = true});
  REQUIRE(drop.batches() == 2);
  const auto batches = epoch_ids(drop, 0);
  REQUIRE(batches.size() == 2);
  REQUIRE(flat(batches).size() == 8);

  DataLoader exact(data, {.batch_size = 5, .drop_last = true});
  REQUIRE(exact.batches() == 2);  // nothing to drop
  DataLoader big(data, {.batch_size = 64});
  REQUIRE(big.batches() == 1);
  DataLoader big_drop(data, {.batch_size = 64, .drop_last = true});
  REQUIRE(big_drop.batches() == 0);
  REQUIRE(epoch_ids(big_drop, 0).empty());
}

TEST_CASE("DataLoader: without shuffle, the rows in order", "[nn][data]") {
  const TensorDataset data(features(7), labels(7));
  DataLoader loader(data, {.batch_size = 3, .shuffle = false});
  REQUIRE(flat(epoch_ids(loader, 0)) == std::vector<std::int64_t>{0, 1, 2, 3, 4, 5, 6});
  REQUIRE(flat(epoch_ids(loader, 5)) == std::vector<std::int64_t>{0, 1, 2, 3, 4, 5, 6});
}

TEST_CASE("DataLoader: every sample exactly once per shuffled epoch, with its label", "[nn][data]") {
  const TensorDataset data(features(103), labels(103));
  DataLoader loader(data, {.batch_size = 10, .shuffle = true, .seed = 7});
  for (std::int64_t e = 0; e < 3; ++e) {
    std::vector<std::int64_t> all = flat(epoch_ids(loader, e));
    const std::vector<std::int64_t> shuffled = all;
    std::sort(all.begin(), all.end());
    std::vector<std::int64_t> want(103);
    std::iota(want.begin(), want.end(), 0);
    REQUIRE(all == want);
    REQUIRE(shuffled != want);  // it did shuffle
  }
}

TEST_CASE("DataLoader: the order is fixed by (seed, epoch): same pair same order, else another", "[nn][data]") {
  const TensorDataset data(features(50), labels(50));
  DataLoader a(data, {.batch_size = 8, .seed = 3});
  DataLoader b(data, {.batch_size = 8, .seed = 3});
  DataLoader c(data, {.batch_size = 8, .seed = 4});
  const auto a0 = epoch_ids(a, 0);
  const auto a1 = epoch_ids(a, 1);
  REQUIRE(epoch_ids(b, 1) == a1);  // another loader, epochs asked in another order
  REQUIRE(epoch_ids(b, 0) == a0);
  REQUIRE(epoch_ids(a, 0) == a0);  // asking again gives the same
  REQUIRE(a0 != a1);
  REQUIRE(epoch_ids(c, 0) != a0);
}

TEST_CASE("DataLoader: regression targets stay with their rows", "[nn][data]") {
  const TensorDataset data(features(23), targets(23));
  REQUIRE_FALSE(data.is_classification());
  DataLoader loader(data, {.batch_size = 5, .seed = 2});
  std::vector<std::int64_t> all = flat(epoch_ids(loader, 0));  // checks y against x per row
  std::sort(all.begin(), all.end());
  REQUIRE(all.size() == 23);
  REQUIRE(std::adjacent_find(all.begin(), all.end()) == all.end());
}

TEST_CASE("DataLoader: batch() outside the epoch and batch_size < 1 are ValueErrors", "[nn][data]") {
  const TensorDataset data(features(10), labels(10));
  DataLoader loader(data, {.batch_size = 4});
  REQUIRE_THROWS_SAYING(loader.batch(3), tg::ValueError, "index 3", "3 batches");
  REQUIRE_THROWS_SAYING(DataLoader(data, {.batch_size = 0}), tg::ValueError, "batch_size");
}

TEST_CASE("TensorDataset: label or target counts must match the samples", "[nn][data]") {
  REQUIRE_THROWS_SAYING(TensorDataset(features(5), labels(4)), tg::ShapeError, "4 labels", "5 samples");
  REQUIRE_THROWS_AS(TensorDataset(features(5), targets(6)), tg::ShapeError);
}

TEST_CASE("TensorDataset::split: sizes, disjoint, together all rows, labels aligned", "[nn][data]") {
  const TensorDataset data(features(50), labels(50));
  const auto [train, val] = data.split(0.2, 11);
  REQUIRE(train.size() == 40);
  REQUIRE(val.size() == 10);
  std::set<std::int64_t> seen;
  for (const TensorDataset* part : {&train, &val}) {
    for (std::int64_t r = 0; r < part->size(); ++r) {
      const auto id = static_cast<std::int64_t>(part->x().at(2 * r));
      REQUIRE(part->labels()[static_cast<std::size_t>(r)] == id % 3);
      REQUIRE(seen.insert(id).second);  // in no other row, of either part
    }
  }
  REQUIRE(seen.size() == 50);
  // Seeded: the same seed splits the same way, another seed another way.
  REQUIRE(data.split(0.2, 11).second.x().to_vector() == val.x().to_vector());
  REQUIRE(data.split(0.2, 12).second.x().to_vector() != val.x().to_vector());
  REQUIRE_THROWS_SAYING(data.split(1.0, 1), tg::ValueError, "fraction");
  REQUIRE_THROWS_AS(data.split(0.0, 1), tg::ValueError);
}

TEST_CASE("TensorDataset::split keeps regression targets aligned", "[nn][data]") {
  const TensorDataset data(features(30), targets(30));
  const auto [train, val] = data.split(0.5, 3);
  REQUIRE(train.size() + val.size() == 30);
  for (const TensorDataset* part : {&train, &val}) {
    for (std::int64_t r = 0; r < part->size(); ++r) REQUIRE(part->y().at(r) == 10.0 * part->x().at(2 * r));
  }
}

TEST_CASE("TensorDataset::slice: rows begin to end (exclusive) with their labels", "[nn][data]") {
  const TensorDataset data(features(10), labels(10));
  const TensorDataset s = data.slice(4, 7);
  REQUIRE(s.size() == 3);
  REQUIRE(s.x().at(0) == 4.0);
  REQUIRE(std::vector<std::int64_t>(s.labels().begin(), s.labels().end()) == std::vector<std::int64_t>{1, 2, 0});
}

TEST_CASE("TensorDataset::slice: a range outside the rows is a ShapeError", "[nn][data]") {
  const TensorDataset data(features(10), labels(10));
  REQUIRE_THROWS_SAYING(data.slice(8, 12), tg::ShapeError, "[8, 12)", "10 samples");
  REQUIRE_THROWS_SAYING(data.slice(5, 4), tg::ShapeError, "[5, 4)");
  REQUIRE_THROWS_AS(data.slice(-1, 2), tg::ShapeError);
}
