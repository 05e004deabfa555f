// transpose, permute, concat, index_select, gather and one_hot: values, tg::gradcheck, gradients
// that land where the elements came from, and the errors.
#include "tensor_check.hpp"

using tg::Shape;
using tg::Tensor;
using tgtest::f64;
using tgtest::require_gradcheck;
using tgtest::uniform;
using In = std::span<const Tensor>;

// ---- transpose and permute -------------------------------------------------------------------------

TEST_CASE("transpose, permute: values and shapes", "[tensor][index]") {
  tg::Tape tape;
  tg::TapeScope scope(tape);
  const Tensor x = f64({1, 2, 3, 4, 5, 6}, {2, 3});
  const Tensor t = tg::transpose(x);
  REQUIRE(t.shape() == Shape{3, 2});
  REQUIRE(t.to_vector() == std::vector<double>{1, 4, 2, 5, 3, 6});
  REQUIRE(tg::permute(x, {1, 0}).to_vector() == t.to_vector());
  REQUIRE(tg::permute(x, {0, 1}).to_vector() == x.to_vector());
  // [2, 3, 2] -> axes (2, 0, 1): out[k, i, j] = y[i, j, k].
  const Tensor y = Tensor::arange(12, tg::Dtype::f64).reshape({2, 3, 2});
  const Tensor p = tg::permute(y, {2, 0, -2});
  REQUIRE(p.shape() == Shape{2, 2, 3});
  REQUIRE(p.to_vector() == std::vector<double>{0, 2, 4, 6, 8, 10, 1, 3, 5, 7, 9, 11});
}

TEST_CASE("transpose, permute: gradcheck", "[tensor][index]") {
  require_gradcheck("transpose", [](In in) { return tg::transpose(in[0]) * in[1]; },
                    {uniform({2, 3}, 1), uniform({3, 2}, 2)});
  require_gradcheck("permute", [](In in) { return tg::permute(in[0], {1, 2, 0}) * in[1]; },
                    {uniform({2, 3, 4}, 3), uniform({3, 4, 2}, 4)});
}

TEST_CASE("transpose, permute: wrong rank or order names the operation and the shape", "[tensor][index][error]") {
  tg::Tape tape;
  tg::TapeScope scope(tape);
  const Tensor x = Tensor::zeros({2, 3, 4});
  REQUIRE_THAT(tgtest::error_message<tg::ShapeError>([&] { (void)tg::transpose(x); }),
               Catch::StartsWith("transpose:") && Catch::Contains("[2, 3, 4]"));
  REQUIRE_THAT(tgtest::error_message<tg::ShapeError>([&] { (void)tg::permute(x, {0, 0, 1}); }),
               Catch::StartsWith("permute:") && Catch::Contains("(0, 0, 1)") && Catch::Contains("[2, 3, 4]"));
  REQUIRE_THAT(tgtest::error_message<tg::ShapeError>([&] { (void)tg::permute(x, {0, 1}); }),
               Catch::StartsWith("permute:") && Catch::Contains("[2, 3, 4]"));
}

// ---- concat --------------------------------------------------------------------------------------

TEST_CASE("concat: values along each axis", "[tensor][index]") {
  tg::Tape tape;
  tg::TapeScope scope(tape);
  const Tensor a = f64({1, 2, 3, 4}, {2, 2});
  const Tensor b = f64({5, 6}, {1, 2});
  const Tensor c = f64({7, 8}, {2, 1});
  REQUIRE(tg::concat({a, b}).to_vector() == std::vector<double>{1, 2, 3, 4, 5, 6});
  REQUIRE(tg::concat({a, b}).shape() == Shape{3, 2});
  REQUIRE(tg::concat({a, c}, 1).to_vector() == std::vector<double>{1, 2, 7, 3, 4, 8});
  REQUIRE(tg::concat({c, a, c}, -1).shape() == Shape{2, 4});
}

TEST_CASE("concat: gradcheck, and each part gets its own slice of the gradient", "[tensor][index]") {
  require_gradcheck("concat axis 0", [](In in) { return tg::tanh(tg::concat(in, 0)); },
                    {uniform({2, 3}, 5), uniform({1, 3}, 6), uniform({3, 3}, 7)});
  require_gradcheck("concat axis 1", [](In in) { return tg::tanh(tg::concat({in[0], in[1] * 2.0, in[0]}, 1)); },
                    {uniform({2, 2, 2}, 8), uniform({2, 3, 2}, 9)});

  tg::Tape tape;
  tg::TapeScope scope(tape);
  Tensor a = f64({1, 2, 3, 4}, {2, 2}).requires_grad();
  Tensor c = f64({7, 8}, {2, 1}).requires_grad();
  tg::sum(tg::concat({a, c}, 1) * f64({1, 2, 3, 4, 5, 6}, {2, 3})).backward();
  REQUIRE(a.grad().to_vector() == std::vector<double>{1, 2, 4, 5});
  REQUIRE(c.grad().to_vector() == std::vector<double>{3, 6});
}

TEST_CASE("concat: mismatched shapes name the operation and both shapes", "[tensor][index][error]") {
  tg::Tape tape;
  tg::TapeScope scope(tape);
  REQUIRE_THAT(tgtest::error_message<tg::ShapeError>([&] { (void)tg::concat({Tensor::zeros({2, 3}), Tensor::zeros({2, 4})}); }),
               Catch::StartsWith("concat:") && Catch::Contains("[2, 3]") && Catch::Contains("[2, 4]"));
  REQUIRE_THAT(tgtest::error_message<tg::ShapeError>([&] { (void)tg::concat({Tensor::zeros({2, 3}), Tensor::zeros({3})}); }),
               Catch::StartsWith("concat:") && Catch::Contains("[3]"));
  REQUIRE_THAT(tgtest::error_message<tg::ShapeError>([&] { (void)tg::concat(std::span<const Tensor>{}); }),
               Catch::StartsWith("concat:"));
}

// ---- index_select ----------------------------------------------------------------------------------

TEST_CASE("index_select: picks rows in order, and a repeated row gets both gradients", "[tensor][index]") {
  tg::Tape tape;
  tg::TapeScope scope(tape);
  Tensor x = f64({1, 2, 3, 4, 5, 6}, {3, 2}).requires_grad();
  const Tensor s = tg::index_select(x, {2, 0, 2});
  REQUIRE(s.shape() == Shape{3, 2});
  REQUIRE(s.to_vector() == std::vector<double>{5, 6, 1, 2, 5, 6});
  tg::sum(s * f64({1, 2, 3, 4, 5, 6}, {3, 2})).backward();
  REQUIRE(x.grad().to_vector() == std::vector<double>{3, 4, 0, 0, 1 + 5, 2 + 6});
}

TEST_CASE("index_select: gradcheck of a shuffled batch", "[tensor][index]") {
  const std::vector<std::int64_t> permutation{3, 0, 4, 1, 2};
  require_gradcheck("index_select", [&](In in) {
    return tg::sigmoid(tg::matmul(tg::index_select(in[0], std::span(permutation).subspan(1, 3)), in[1]));
  }, {uniform({5, 3}, 10), uniform({3, 2}, 11)});
  require_gradcheck("index_select of a 3-D tensor", [](In in) { return tg::exp(tg::index_select(in[0], {1, 1, 0})); },
                    {uniform({2, 2, 3}, 12)});
}

// ---- gather and one_hot ----------------------------------------------------------------------------

TEST_CASE("gather: one element per row along the last axis", "[tensor][index]") {
  tg::Tape tape;
  tg::TapeScope scope(tape);
  Tensor x = f64({1, 2, 3, 4, 5, 6}, {2, 3}).requires_grad();
  const Tensor g = tg::gather(x, {2, 0});
  REQUIRE(g.shape() == Shape{2});
  REQUIRE(g.to_vector() == std::vector<double>{3, 4});
  tg::sum(g * f64({10, 20}, {2})).backward();
  REQUIRE(x.grad().to_vector() == std::vector<double>{0, 0, 10, 20, 0, 0});
  const Tensor y = Tensor::arange(12, tg::Dtype::f64).reshape({2, 2, 3});
  REQUIRE(tg::gather(y, {0, 1, 2, 0}).to_vector() == std::vector<double>{0, 4, 8, 9});
}

TEST_CASE("gather: gradcheck of a cross-entropy", "[tensor][index]") {
  const std::vector<std::int64_t> labels{2, 0, 1, 2};
  require_gradcheck("gather of log_softmax", [&](In in) { return -tg::mean(tg::gather(tg::log_softmax(in[0]), labels)); },
                    {uniform({4, 3}, 13, -2, 2)});
}

TEST_CASE("one_hot: rows with a single 1, usable in a loss", "[tensor][index]") {
  tg::Tape tape;
  tg::TapeScope scope(tape);
  const Tensor h = tg::one_hot({2, 0, 1}, 3);
  REQUIRE(h.shape() == Shape{3, 3});
  REQUIRE(h.dtype() == tg::Dtype::f32);
  REQUIRE(h.to_vector() == std::vector<double>{0, 0, 1, 1, 0, 0, 0, 1, 0});
  REQUIRE_FALSE(h.has_grad());
  REQUIRE(tg::one_hot({1}, 2, tg::Dtype::f64).dtype() == tg::Dtype::f64);

  // -sum(one_hot * log_softmax) is the same cross-entropy as gather's.
  const std::vector<std::int64_t> labels{1, 0, 2};
  require_gradcheck("one_hot cross-entropy", [&](In in) {
    return -tg::sum(tg::one_hot(labels, 3, tg::Dtype::f64) * tg::log_softmax(in[0]));
  }, {uniform({3, 3}, 14, -2, 2)});
  const Tensor z = uniform({3, 3}, 15);
  REQUIRE(tgtest::all_close(tg::sum(tg::one_hot(labels, 3, tg::Dtype::f64) * tg::log_softmax(z)).to_vector(),
                            tg::sum(tg::gather(tg::log_softmax(z), labels)).to_vector(), 1e-15));
}

TEST_CASE("index_select, gather, one_hot: an index out of range says which and where", "[tensor][index][error]") {
  tg::Tape tape;
  tg::TapeScope scope(tape);
  const Tensor x = Tensor::zeros({3, 2});
  REQUIRE_THAT(tgtest::error_message<tg::ShapeError>([&] { (void)tg::index_select(x, {0, 3}); }),
               Catch::StartsWith("index_select:") && Catch::Contains("index 3 at position 1") && Catch::Contains("[3, 2]"));
  REQUIRE_THAT(tgtest::error_message<tg::ShapeError>([&] { (void)tg::gather(x, {0, -1, 1}); }),
               Catch::StartsWith("gather:") && Catch::Contains("index -1 at position 1") && Catch::Contains("[3, 2]"));
  REQUIRE_THAT(tgtest::error_message<tg::ShapeError>([&] { (void)tg::gather(x, {0, 1}); }),
               Catch::StartsWith("gather:") && Catch::Contains("2 indices") && Catch::Contains("[3, 2]"));
  REQUIRE_THAT(tgtest::error_message<tg::ValueError>([&] { (void)tg::one_hot({0, 5}, 5); }),
               Catch::StartsWith("one_hot:") && Catch::Contains("label 5 at position 1"));
  REQUIRE_THAT(tgtest::error_message<tg::ValueError>([&] { (void)tg::one_hot({0}, 0); }),
               Catch::StartsWith("one_hot:"));
}
