// Helpers of the nn tests: a matcher for "throws E whose message says ...", snapshots of a model's
// parameters (to assert that a failed load left them alone), and small tensor builders.
#pragma once

#include <nn/layers.hpp>
#include <nn/module.hpp>

#include <autodiff/error.hpp>
#include <autodiff/tensor.hpp>

#include <catch2/catch.hpp>

#include <initializer_list>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

namespace tgtest {

/// Catch2 matcher: the exception's message contains every one of the fragments.
template <class E>
class Says : public Catch::MatcherBase<E> {
 public:
  Says(std::initializer_list<std::string> parts) : parts_(parts) {}
  bool match(const E& e) const override {
    const std::string_view what = e.what();
    for (const std::string& p : parts_) {
      if (what.find(p) == std::string_view::npos) return false;
    }
    return true;
  }
  std::string describe() const override {
    std::string s = "has a message containing";
    for (const std::string& p : parts_) s += " \"" + p + "\"";
    return s;
  }

 private:
  std::vector<std::string> parts_;
};

/// Every parameter's name and values, in order.
struct Snapshot {
  std::vector<std::string> names;
  std::vector<std::vector<double>> values;
  friend bool operator==(const Snapshot&, const Snapshot&) = default;
};
inline Snapshot snapshot(const tg::nn::Module& m) {
  Snapshot s;
  for (const tg::nn::NamedTensor& p : m.named_parameters()) {
    s.names.push_back(p.name);
    s.values.push_back(p.tensor.to_vector());
  }
  return s;
}

/// A Sequential of the given modules, as a shared pointer.
inline std::shared_ptr<tg::nn::Sequential> sequential(std::initializer_list<std::shared_ptr<tg::nn::Module>> modules) {
  return std::make_shared<tg::nn::Sequential>(modules);
}

/// A double tensor holding `values`.
inline tg::Tensor tensor64(std::initializer_list<double> values, const tg::Shape& shape) {
  return tg::Tensor::from_values(values, shape, tg::Dtype::f64);
}

/// A double parameter (requires grad) holding `values`.
inline tg::Tensor param(std::initializer_list<double> values, const tg::Shape& shape) {
  tg::Tensor t = tensor64(values, shape);
  t.requires_grad();
  return t;
}

}  // namespace tgtest

/// REQUIRE that `expr` throws E whose message contains all the fragments.
#define REQUIRE_THROWS_SAYING(expr, E, ...) REQUIRE_THROWS_MATCHES(expr, E, tgtest::Says<E>({__VA_ARGS__}))
