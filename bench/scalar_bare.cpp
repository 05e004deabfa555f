// The bare statement stream: what recording `h(sum_i g(x_i))` on tapegrad's tape layout costs with
// nothing else around it. Same buffers as tg::Tape (a uint16 count per statement, a uint32 index and
// a double partial per operand), the same recording (an input statement per x_i, g's statement
// merged into the running sum's), the same sweep and gradient read-out, but none of what makes it a
// library: no epochs (stale Vars go unnoticed), no fresh flags, no modes, no fusion decisions (the
// program's shape is known), no kink events, no exactness checks. It exists for sumsq and logsumexp,
// the two workloads of that shape, as a floor beside "hand": the time a tape of this layout cannot
// go below on this machine, and so how much of tapegrad's time its checks and its generality cost
// (docs/benchmarks.md). Not a tool: nothing in tapegrad uses it.
#include "scalar.hpp"

#include <cmath>
#include <cstdint>
#include <cstring>
#include <span>
#include <vector>

namespace tgbench {
namespace {

struct BareVar {
  double value;
  std::uint32_t index;
};

class BareTape {
 public:
  explicit BareTape(std::size_t n)
      : counts_(n + 3), indices_(n + 2), partials_(n + 2), adj_(n + 3) {}

  /// Records h(sum_i g(x_i)), with the values and derivatives of g and h given by `g(x, &d)` and
  /// `h(s, &d)`, sweeps, and writes the gradient into `grad`. Returns the value.
  template <class G, class H>
  double gradient(std::span<const double> point, std::vector<BareVar>& x, std::span<double> grad,
                  G g, H h) {
    inputs(point, x);
    const double f = record(x, g, h);
    sweep(x, grad);
    return f;
  }

  // The three phases of gradient(), which "bare_phases" times apart.
  void inputs(std::span<const double> point, std::vector<BareVar>& x) {
    std::uint16_t* counts = counts_.data();
    std::size_t ns = 0;
    counts[ns++] = 0;  // the constant sink
    for (std::size_t k = 0; k < point.size(); ++k) {
      counts[ns] = 0;
      x[k] = {point[k], static_cast<std::uint32_t>(ns++)};
    }
    ns_ = ns;
    no_ = 0;
  }
  template <class G, class H>
  double record(const std::vector<BareVar>& x, G g, H h) {
    std::uint16_t* counts = counts_.data();
    std::uint32_t* idx = indices_.data();
    double* par = partials_.data();
    std::size_t ns = ns_;
    std::size_t no = no_;
    // The running sum: g(x_0)'s statement, into which every later g(x_k)'s is merged.
    const std::size_t sum = ns;
    double s = 0.0;
    for (std::size_t k = 0; k < x.size(); ++k) {
      double d = 0.0;
      const double y = g(x[k].value, &d);
      idx[no] = x[k].index;
      par[no++] = d;
      counts[ns++] = 1;
      if (k != 0) {
        counts[sum] = static_cast<std::uint16_t>(counts[sum] + counts[ns - 1]);  // merge
        --ns;
      }
      s += y;
    }
    double dh = 0.0;
    const double f = h(s, &dh);  // f = h(s): one more statement, on top
    idx[no] = static_cast<std::uint32_t>(sum);
    par[no++] = dh;
    counts[ns++] = 1;
    ns_ = ns;
    no_ = no;
    return f;
  }
  // The sweep and the read-out.
  void sweep(const std::vector<BareVar>& x, std::span<double> grad) {
    const std::uint16_t* counts = counts_.data();
    const std::uint32_t* idx = indices_.data();
    const double* par = partials_.data();
    double* adj = adj_.data();
    const std::size_t ns = ns_;
    std::memset(adj, 0, ns * sizeof(double));
    adj[ns - 1] = 1.0;
    std::size_t e = no_;
    for (std::size_t st = ns - 1; st > 0 && e != 0; --st) {
      const double a = adj[st];
      const std::size_t b = e - counts[st];
      for (std::size_t k = b; k != e; ++k) adj[idx[k]] += par[k] * a;
      e = b;
    }
    for (std::size_t k = 0; k < x.size(); ++k) grad[k] = adj[x[k].index];
  }

 private:
  std::size_t ns_ = 0;  // statements
  std::size_t no_ = 0;  // operands
  std::vector<std::uint16_t> counts_;
  std::vector<std::uint32_t> indices_;
  std::vector<double> partials_;
  std::vector<double> adj_;
};

// A full gradient on the bare stream, timed whole, or phase by phase (phases = true).
template <class W, class G, class H>
void gradient(benchmark::State& state, const W& w, G g, H h, bool phases) {
  const std::size_t n = w.point.size();
  BareTape tape(n);
  std::vector<BareVar> x(n);
  std::vector<double> grad(n);
  if (phases) {
    time_phases(
        state, w, grad, [&] { tape.inputs(w.point, x); },
        [&] { benchmark::DoNotOptimize(tape.record(x, g, h)); }, [&] { tape.sweep(x, grad); });
    return;
  }
  const auto full_gradient = [&] {
    benchmark::DoNotOptimize(tape.gradient(w.point, x, grad, g, h));
  };
  time_full_gradients(state, w, grad, full_gradient);
}

// "<workload>/bare" and "<workload>/bare_phases".
template <class W, class G, class H>
void register_workload(const W& w, G g, H h) {
  register_gradient(w, "bare", [g, h](benchmark::State& state, const W& wl) {
    gradient(state, wl, g, h, false);
  });
  register_gradient(w, "bare_phases", [g, h](benchmark::State& state, const W& wl) {
    gradient(state, wl, g, h, true);
  });
}

}  // namespace

void register_bare(std::string_view workload) {
  if (workload == Sumsq::name) {
    register_workload(
        Sumsq{},
        [](double x, double* d) {
          *d = x + x;
          return x * x;
        },
        [](double s, double* d) {
          *d = 1.0;
          return s;
        });
  } else if (workload == Logsumexp::name) {
    register_workload(
        Logsumexp{},
        [](double x, double* d) {
          const double y = std::exp(x);
          *d = y;
          return y;
        },
        [](double s, double* d) {
          *d = 1.0 / s;
          return std::log(s);
        });
  }
}

}  // namespace tgbench
