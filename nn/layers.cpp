#include <nn/layers.hpp>

#include <algorithm>
#include <cmath>
#include <fmt/format.h>
#include <random>

namespace tg::nn {

// ---- Linear ------------------------------------------------------------------------------------

Linear::Linear(std::int64_t in, std::int64_t out, const LinearOptions& o) : in_(in), out_(out) {
  if (in <= 0 || out <= 0) {
    throw ValueError(fmt::format("Linear: needs positive sizes, got in = {}, out = {}", in, out));
  }
  Tensor w = Tensor::zeros({out, in}, o.dtype);
  o.init.apply(w, o.seed.value_or(next_seed()));
  weight_ = register_parameter("weight", w);
  if (o.bias) bias_ = register_parameter("bias", Tensor::zeros({out}, o.dtype));
}

Tensor Linear::forward(const Tensor& x) {
  if (x.rank() != 2 || x.shape()[1] != in_) {
    throw ShapeError(fmt::format("Linear({} -> {}): input must be [batch, {}], got {}", in_, out_, in_,
                                 x.shape().str()));
  }
  Tensor y = matmul(x, weight_, false, true);
  return bias_.defined() ? y + bias_ : y;
}

Tensor& Linear::bias() {
  if (!bias_.defined()) throw ValueError("Linear::bias: this layer was made without bias");
  return bias_;
}

std::string Linear::describe() const {
  return fmt::format("Linear(in={}, out={}, bias={})", in_, out_, bias_.defined());
}

// ---- Sequential --------------------------------------------------------------------------------

Sequential::Sequential(std::initializer_list<std::shared_ptr<Module>> modules) {
  for (const auto& m : modules) add(m);
}

Sequential& Sequential::add(std::shared_ptr<Module> m) {
  if (!m) throw ValueError("Sequential::add: null module");
  register_module(std::to_string(children().size()), std::move(m));
  return *this;
}

Tensor Sequential::forward(const Tensor& x) {
  Tensor h = x;
  for (const auto& c : children()) h = c.second->forward(h);
  return h;
}

// ---- Activations ---------------------------------------------------------------------------------

std::int64_t UnitStats::dead() const noexcept {
  return static_cast<std::int64_t>(std::count(ever_positive.begin(), ever_positive.end(), 0));
}

double UnitStats::dead_fraction() const noexcept {
  return ever_positive.empty() ? 0.0 : static_cast<double>(dead()) / static_cast<double>(units());
}

namespace {
template <class T>
void record_positive(const T* x, std::int64_t rows, std::int64_t units, std::uint8_t* ever) {
  for (std::int64_t r = 0; r < rows; ++r) {
    const T* row = x + r * units;
    for (std::int64_t u = 0; u < units; ++u) ever[u] |= static_cast<std::uint8_t>(row[u] > T(0));
  }
}
}  // namespace

Tensor Activation::forward(const Tensor& x) {
  if (track_ && x.rank() >= 1 && x.numel() > 0) {
    const std::int64_t units = x.shape()[x.rank() - 1];
    if (stats_.units() != units) stats_.ever_positive.assign(static_cast<std::size_t>(units), 0);
    const std::int64_t rows = x.numel() / units;
    if (x.dtype() == Dtype::f32) record_positive(x.data<float>(), rows, units, stats_.ever_positive.data());
    else record_positive(x.data<double>(), rows, units, stats_.ever_positive.data());
    stats_.samples += rows;
  }
  return activate(x);
}

namespace {
std::string at_zero_text(const std::optional<double>& at_zero) {
  return at_zero ? fmt::format(", at_zero={}", *at_zero) : std::string();
}
}  // namespace

std::string ReLU::describe() const {
  return options_.at_zero ? fmt::format("ReLU(at_zero={})", *options_.at_zero) : std::string("ReLU");
}
std::string LeakyReLU::describe() const {
  return fmt::format("LeakyReLU(scale={}{})", options_.scale, at_zero_text(options_.at_zero));
}
std::string ELU::describe() const {
  return fmt::format("ELU(alpha={}{})", options_.alpha, at_zero_text(options_.at_zero));
}

// ---- Dropout -------------------------------------------------------------------------------------

Dropout::Dropout(double p, std::optional<std::uint64_t> seed) : p_(p), generator_(seed.value_or(next_seed())) {
  if (!(p >= 0.0 && p < 1.0)) throw ValueError(fmt::format("Dropout: p must be in [0, 1), got {}", p));
}

Tensor Dropout::forward(const Tensor& x) {
  if (!is_training() || p_ == 0.0) return x;
  Tape& tape = active_tape();
  Tensor mask = Tensor::recorded(tape, x.shape(), x.dtype(), false);
  const double keep = 1.0 / (1.0 - p_);
  const auto threshold = static_cast<std::uint64_t>(p_ * 18446744073709551616.0);
  for (std::int64_t i = 0; i < x.numel(); ++i) {
    const double m = generator_() >= threshold ? keep : 0.0;
    if (x.dtype() == Dtype::f32) mask.data_unchecked<float>()[i] = static_cast<float>(m);
    else mask.data_unchecked<double>()[i] = m;
  }
  return x * mask;
}

std::string Dropout::describe() const { return fmt::format("Dropout(p={})", p_); }

// ---- Diagnostics ---------------------------------------------------------------------------------

void track_units(Module& model, bool on) {
  for (auto& [name, m] : model.named_modules()) {
    if (auto* a = dynamic_cast<Activation*>(m)) a->track_units(on);
  }
}

void reset_unit_stats(Module& model) {
  for (auto& [name, m] : model.named_modules()) {
    if (auto* a = dynamic_cast<Activation*>(m)) a->reset_unit_stats();
  }
}

std::vector<DeadUnits> dead_units(Module& model) {
  std::vector<DeadUnits> out;
  for (auto& [name, m] : model.named_modules()) {
    if (auto* a = dynamic_cast<Activation*>(m)) {
      const UnitStats& s = a->unit_stats();
      out.push_back({name, a->describe(), s.units(), s.dead(), s.dead_fraction()});
    }
  }
  return out;
}

std::vector<GradNorm> gradient_norms(const Module& model) {
  std::vector<GradNorm> out;
  for (const NamedTensor& p : model.named_parameters()) {
    const Tensor g = p.tensor.grad();
    double s = 0;
    if (g.dtype() == Dtype::f32) {
      const float* d = g.data<float>();
      for (std::int64_t i = 0; i < g.numel(); ++i) s += static_cast<double>(d[i]) * static_cast<double>(d[i]);
    } else {
      const double* d = g.data<double>();
      for (std::int64_t i = 0; i < g.numel(); ++i) s += d[i] * d[i];
    }
    out.push_back({p.name, std::sqrt(s)});
  }
  return out;
}

std::string format_dead_units(const std::vector<DeadUnits>& rows) {
  std::string s = fmt::format("{:<12} {:<28} {:>7} {:>7} {:>8}\n", "module", "layer", "units", "never>0", "fraction");
  for (const DeadUnits& r : rows) {
    s += fmt::format("{:<12} {:<28} {:>7} {:>7} {:>8.3f}\n", r.name, r.layer, r.units, r.dead, r.fraction);
  }
  return s;
}

std::string format_gradient_norms(const std::vector<GradNorm>& rows) {
  std::string s = fmt::format("{:<24} {:>12}\n", "parameter", "grad norm");
  for (const GradNorm& r : rows) s += fmt::format("{:<24} {:>12.4e}\n", r.name, r.norm);
  return s;
}

}  // namespace tg::nn
