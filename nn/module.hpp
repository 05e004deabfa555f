// tg::nn::Module: the base of every layer. A module owns named parameters (owned tensors that
// require gradients) and child modules; it lists them recursively with dotted names
// ("layers.0.weight"), zeroes their gradients, and switches between training and evaluation mode.
#pragma once

#include <autodiff/tensor.hpp>
#include <autodiff/tensor_ops.hpp>

#include <cstdint>
#include <memory>
#include <string>
#include <utility>
#include <vector>

namespace tg::nn {

/// A parameter or buffer with its dotted name.
struct NamedTensor {
  std::string name;
  Tensor tensor;
};

class Module {
 public:
  Module() = default;
  virtual ~Module() = default;
  Module(const Module&) = delete;
  Module& operator=(const Module&) = delete;

  /// The layer's computation, recorded on the active tape.
  virtual Tensor forward(const Tensor& x) = 0;
  Tensor operator()(const Tensor& x) { return forward(x); }

  /// A one-line description, e.g. "Linear(in=784, out=256, bias=true)".
  virtual std::string describe() const = 0;

  /// Every parameter of this module and its children, depth first, with dotted names.
  std::vector<NamedTensor> named_parameters() const;
  std::vector<Tensor> parameters() const;
  /// Direct children with their names.
  const std::vector<std::pair<std::string, std::shared_ptr<Module>>>& children() const noexcept {
    return children_;
  }
  /// Every module below this one (this one first), with dotted names ("" for this one).
  std::vector<std::pair<std::string, Module*>> named_modules();

  /// Sets every parameter's accumulated gradient to zero.
  void zero_grad();
  /// Training mode (Dropout active) or evaluation mode, for this module and its children.
  void train(bool on = true);
  void eval() { train(false); }
  bool is_training() const noexcept { return training_; }

  /// Number of scalar parameters.
  std::int64_t parameter_count() const;
  /// The module tree, one line per module, indented.
  std::string summary() const;

 protected:
  /// Makes `t` a parameter of this module (it will require gradients) and returns a handle to it
  /// (handles share data and gradient).
  Tensor register_parameter(std::string name, Tensor t);
  /// Adds a child module under `name`.
  template <class M>
  std::shared_ptr<M> register_module(std::string name, std::shared_ptr<M> m) {
    children_.emplace_back(std::move(name), m);
    return m;
  }

 private:
  void collect(const std::string& prefix, std::vector<NamedTensor>& out) const;
  void summarize(const std::string& name, int depth, std::string& out) const;

  std::vector<NamedTensor> parameters_;
  std::vector<std::pair<std::string, std::shared_ptr<Module>>> children_;
  bool training_ = true;
};

/// Seeds the generator that gives layers their default initialisation seeds, on this thread.
void manual_seed(std::uint64_t seed);
/// The next seed from that generator (what a layer uses when its options give none).
std::uint64_t next_seed();

}  // namespace tg::nn
