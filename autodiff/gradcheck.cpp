#include <autodiff/gradcheck.hpp>

#include <algorithm>
#include <cmath>
#include <fmt/format.h>

namespace tg {

bool GradcheckReport::ok() const noexcept {
  return std::all_of(entries.begin(), entries.end(), [](const GradcheckEntry& e) { return e.ok; });
}

std::vector<GradcheckEntry> GradcheckReport::failures() const {
  std::vector<GradcheckEntry> out;
  std::copy_if(entries.begin(), entries.end(), std::back_inserter(out),
               [](const GradcheckEntry& e) { return !e.ok; });
  return out;
}

std::string GradcheckReport::summary() const {
  std::string s;
  for (const GradcheckEntry& e : entries) {
    if (e.ok) continue;
    if (e.kink) {
      s += fmt::format("input {} (x = {}): AD {} is outside the one-sided quotients [{}, {}] (a kink "
                       "lies within the step)\n",
                       e.input, e.x, e.ad, std::min(e.left, e.right), std::max(e.left, e.right));
    } else {
      s += fmt::format("input {} (x = {}): AD {} vs finite difference {} (difference {})\n", e.input,
                       e.x, e.ad, e.fd, e.ad - e.fd);
    }
  }
  if (s.empty()) s = fmt::format("all {} inputs agree\n", entries.size());
  return s;
}

namespace detail {

GradcheckReport gradcheck_core(std::span<const double> x, std::span<const double> ad,
                               const std::function<Probe(std::span<const double>)>& eval,
                               const GradcheckOptions& o) {
  if (!(o.step > 0) || !std::isfinite(o.step) || !(o.rtol >= 0) || !(o.atol >= 0)) {
    throw ValueError(fmt::format("gradcheck: step must be finite and > 0 and tolerances >= 0, got "
                                 "step {}, rtol {}, atol {}",
                                 o.step, o.rtol, o.atol));
  }
  if (x.size() != ad.size()) {
    throw ShapeError(fmt::format("gradcheck: {} inputs but {} AD derivatives", x.size(), ad.size()));
  }
  for (std::size_t i = 0; i < x.size(); ++i) {
    if (!std::isfinite(x[i])) {
      throw ValueError(fmt::format("gradcheck: input {} is {}, not a finite number", i, x[i]));
    }
  }
  GradcheckReport report;
  std::vector<double> p(x.begin(), x.end());
  const Probe at = eval(p);
  for (std::size_t i = 0; i < x.size(); ++i) {
    const double h = o.step * std::max(1.0, std::abs(x[i]));
    p[i] = x[i] + h;
    const Probe plus = eval(p);
    p[i] = x[i] - h;
    const Probe minus = eval(p);
    p[i] = x[i];

    GradcheckEntry e;
    e.input = i;
    e.x = x[i];
    e.ad = ad[i];
    e.fd = (plus.value - minus.value) / (2 * h);
    e.left = (at.value - minus.value) / h;
    e.right = (plus.value - at.value) / h;
    e.kink = plus.branches != at.branches || minus.branches != at.branches;
    if (!e.kink) {
      const double scale = std::max(std::abs(e.ad), std::abs(e.fd));
      e.ok = std::abs(e.ad - e.fd) <= o.atol + o.rtol * scale;
    } else {
      // One-sided quotients carry an O(h f'') error, so the interval gets a looser margin.
      const double lo = std::min(e.left, e.right);
      const double hi = std::max(e.left, e.right);
      const double margin =
          o.atol + std::max(o.rtol, std::sqrt(o.step)) * std::max({1.0, std::abs(lo), std::abs(hi)});
      e.ok = e.ad >= lo - margin && e.ad <= hi + margin;
    }
    report.entries.push_back(e);
  }
  return report;
}

}  // namespace detail

GradcheckReport gradcheck(const ScalarFunction& f, std::span<const double> x,
                          const GradcheckOptions& options) {
  for (std::size_t i = 0; i < x.size(); ++i) {
    if (!std::isfinite(x[i])) {
      throw ValueError(fmt::format("gradcheck: input {} is {}, not a finite number", i, x[i]));
    }
  }
  Tape tape;
  TapeScope scope(tape);
  std::vector<Var> vars;
  vars.reserve(x.size());
  for (double xi : x) vars.emplace_back(xi, tape);
  const Var y = f(vars);
  const std::vector<double> ad = gradient(y, vars);

  auto eval = [&](std::span<const double> point) {
    tape.reset();
    NoGrad no_grad;
    tape.track_branches(true);
    std::vector<Var> v;
    v.reserve(point.size());
    for (double pi : point) v.push_back(Var::constant(pi));
    const double value = f(v).value();
    const detail::Probe probe{value, tape.branch_signature()};
    tape.track_branches(false);
    return probe;
  };
  return detail::gradcheck_core(x, ad, eval, options);
}

}  // namespace tg
