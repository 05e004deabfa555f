#include <nn/module.hpp>

#include <fmt/format.h>

namespace tg::nn {

namespace {
thread_local std::uint64_t seed_state = 0x7461706567726164ull;  // "tapegrad"

std::uint64_t splitmix64(std::uint64_t& s) {
  std::uint64_t z = (s += 0x9e3779b97f4a7c15ull);
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
  return z ^ (z >> 31);
}
}  // namespace

void manual_seed(std::uint64_t seed) { seed_state = seed; }
std::uint64_t next_seed() { return splitmix64(seed_state); }

Tensor Module::register_parameter(std::string name, Tensor t) {
  for (const NamedTensor& p : parameters_) {
    if (p.name == name) throw ValueError(fmt::format("register_parameter: '{}' is already a parameter", name));
  }
  t.requires_grad(true);
  parameters_.push_back({std::move(name), std::move(t)});
  return parameters_.back().tensor;
}

void Module::collect(const std::string& prefix, std::vector<NamedTensor>& out) const {
  for (const NamedTensor& p : parameters_) out.push_back({prefix + p.name, p.tensor});
  for (const auto& [name, child] : children_) child->collect(prefix + name + ".", out);
}

std::vector<NamedTensor> Module::named_parameters() const {
  std::vector<NamedTensor> out;
  collect("", out);
  return out;
}

std::vector<Tensor> Module::parameters() const {
  std::vector<Tensor> out;
  for (NamedTensor& p : named_parameters()) out.push_back(std::move(p.tensor));
  return out;
}

std::vector<std::pair<std::string, Module*>> Module::named_modules() {
  std::vector<std::pair<std::string, Module*>> out{{"", this}};
  for (const auto& [name, child] : children_) {
    for (auto& [sub, m] : child->named_modules()) out.emplace_back(sub.empty() ? name : name + "." + sub, m);
  }
  return out;
}

void Module::zero_grad() {
  for (NamedTensor& p : parameters_) p.tensor.zero_grad();
  for (const auto& c : children_) c.second->zero_grad();
}

void Module::train(bool on) {
  training_ = on;
  for (const auto& c : children_) c.second->train(on);
}

std::int64_t Module::parameter_count() const {
  std::int64_t n = 0;
  for (const NamedTensor& p : named_parameters()) n += p.tensor.numel();
  return n;
}

void Module::summarize(const std::string& name, int depth, std::string& out) const {
  out += fmt::format("{:{}}{}{}\n", "", 2 * depth, name.empty() ? "" : name + ": ", describe());
  for (const auto& [n, child] : children_) child->summarize(n, depth + 1, out);
}

std::string Module::summary() const {
  std::string out;
  summarize("", 0, out);
  out += fmt::format("{} parameters\n", parameter_count());
  return out;
}

}  // namespace tg::nn
