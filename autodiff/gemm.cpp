#include <autodiff/gemm.hpp>

#include <autodiff/error.hpp>

#include <algorithm>
#include <atomic>
#include <cctype>
#include <charconv>
#include <condition_variable>
#include <cstdlib>
#include <exception>
#include <fmt/format.h>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include <cblas.h>

extern "C" {
// OpenBLAS extensions (declared here: Debian's cblas.h may be the generic one).
void openblas_set_num_threads(int num_threads);
char* openblas_get_corename(void);
}

// The Eigen kernels (gemm_eigen.inl, one translation unit per instruction set). Which ones exist is
// decided by CMake from the compiler's support: TAPEGRAD_GEMM_HAVE_AVX2 / _AVX512.
#define TAPEGRAD_DECLARE_EIGEN_GEMM(variant)                                                       \
  namespace tg::detail::variant {                                                                 \
  void sgemm(bool, bool, std::int64_t, std::int64_t, std::int64_t, const float*, std::int64_t,    \
             const float*, std::int64_t, float, float*, std::int64_t);                            \
  void dgemm(bool, bool, std::int64_t, std::int64_t, std::int64_t, const double*, std::int64_t,   \
             const double*, std::int64_t, double, double*, std::int64_t);                         \
  const char* description();                                                                      \
  }
TAPEGRAD_DECLARE_EIGEN_GEMM(eigen_generic)
#if TAPEGRAD_GEMM_HAVE_AVX2
TAPEGRAD_DECLARE_EIGEN_GEMM(eigen_avx2)
#endif
#if TAPEGRAD_GEMM_HAVE_AVX512
TAPEGRAD_DECLARE_EIGEN_GEMM(eigen_avx512)
#endif
#undef TAPEGRAD_DECLARE_EIGEN_GEMM

namespace tg {
namespace detail {
namespace {

// ---- Threads ------------------------------------------------------------------------------------

std::atomic<int> gemm_threads{0};  // 0: not read from the environment yet
std::mutex threads_mutex;

/// TAPEGRAD_NUM_THREADS's value: a positive int.
int parse_threads(const char* text) {
  int n = 0;
  const char* end = text + std::char_traits<char>::length(text);
  const auto [ptr, ec] = std::from_chars(text, end, n);
  if (ec != std::errc() || ptr != end || n < 1) {
    throw ValueError(fmt::format(
        "TAPEGRAD_NUM_THREADS: expected a positive number of threads, got '{}'", text));
  }
  return n;
}

int threads() {
  int n = gemm_threads.load(std::memory_order_acquire);
  if (n != 0) [[likely]] return n;
  std::lock_guard lock(threads_mutex);
  n = gemm_threads.load(std::memory_order_relaxed);
  if (n != 0) return n;
  n = 1;  // single-threaded by default
  if (const char* env = std::getenv("TAPEGRAD_NUM_THREADS")) n = parse_threads(env);
  openblas_set_num_threads(n);
  gemm_threads.store(n, std::memory_order_release);
  return n;
}

/// Helper threads for the Eigen kernels: a product split in `parts` runs part 0 on the caller and
/// the others on the workers. One product at a time: a second caller meanwhile runs serially.
class Pool {
 public:
  ~Pool() { resize(0); }

  /// Runs fn(ctx, p) for p in [0, parts), parts <= workers + 1.
  void run(int parts, void (*fn)(void*, int), void* ctx) {
    std::unique_lock busy(busy_, std::try_to_lock);
    if (!busy.owns_lock()) {
      for (int p = 0; p < parts; ++p) fn(ctx, p);
      return;
    }
    {
      std::lock_guard lock(mutex_);
      job_ = {fn, ctx, parts};
      pending_ = static_cast<int>(workers_.size());
      error_ = nullptr;
      ++generation_;
    }
    work_.notify_all();
    std::exception_ptr error;
    try {
      fn(ctx, 0);
    } catch (...) {
      error = std::current_exception();
    }
    std::unique_lock lock(mutex_);
    done_.wait(lock, [this] { return pending_ == 0; });
    if (!error) error = error_;
    lock.unlock();
    if (error) std::rethrow_exception(error);
  }

  /// Keeps `n` worker threads.
  void resize(int n) {
    std::lock_guard busy(busy_);
    if (static_cast<int>(workers_.size()) == n) return;
    {
      std::lock_guard lock(mutex_);
      stop_ = true;
      ++generation_;
    }
    work_.notify_all();
    for (std::thread& t : workers_) t.join();
    workers_.clear();
    stop_ = false;
    // The workers start from this generation: a job posted before a worker first looks is still
    // seen as new.
    const std::uint64_t start = generation_;
    for (int i = 0; i < n; ++i) workers_.emplace_back([this, i, start] { loop(i + 1, start); });
  }
  int workers() const noexcept { return static_cast<int>(workers_.size()); }

 private:
  struct Job {
    void (*fn)(void*, int) = nullptr;
    void* ctx = nullptr;
    int parts = 0;
  };

  void loop(int part, std::uint64_t seen) {
    for (;;) {
      Job job;
      {
        std::unique_lock lock(mutex_);
        work_.wait(lock, [&] { return generation_ != seen; });
        seen = generation_;
        if (stop_) return;
        job = job_;
      }
      std::exception_ptr error;
      if (part < job.parts) {
        try {
          job.fn(job.ctx, part);
        } catch (...) {
          error = std::current_exception();
        }
      }
      std::lock_guard lock(mutex_);
      if (error && !error_) error_ = error;
      if (--pending_ == 0) done_.notify_one();
    }
  }

  std::mutex busy_;  // held by the product being split
  std::mutex mutex_;
  std::condition_variable work_;
  std::condition_variable done_;
  std::vector<std::thread> workers_;
  Job job_;
  std::uint64_t generation_ = 0;
  int pending_ = 0;
  bool stop_ = false;
  std::exception_ptr error_;
};

Pool& pool() {
  static Pool p;
  return p;
}

// ---- Kernels --------------------------------------------------------------------------------------

template <class T>
using EigenFn = void (*)(bool, bool, std::int64_t, std::int64_t, std::int64_t, const T*,
                         std::int64_t, const T*, std::int64_t, T, T*, std::int64_t);

template <class T>
EigenFn<T> eigen_fn(GemmKernel k) {
  switch (k) {
#if TAPEGRAD_GEMM_HAVE_AVX512
    case GemmKernel::eigen_avx512:
      if constexpr (std::is_same_v<T, float>) return &eigen_avx512::sgemm;
      else return &eigen_avx512::dgemm;
#endif
#if TAPEGRAD_GEMM_HAVE_AVX2
    case GemmKernel::eigen_avx2:
      if constexpr (std::is_same_v<T, float>) return &eigen_avx2::sgemm;
      else return &eigen_avx2::dgemm;
#endif
    default:
      if constexpr (std::is_same_v<T, float>) return &eigen_generic::sgemm;
      else return &eigen_generic::dgemm;
  }
}

template <class T>
struct Split {
  EigenFn<T> fn;
  bool ta, tb, by_rows;
  std::int64_t m, n, k, chunk;
  const T* a;
  const T* b;
  T beta;
  T* c;

  static void run(void* self, int part) {
    const Split& s = *static_cast<const Split*>(self);
    const std::int64_t extent = s.by_rows ? s.m : s.n;
    const std::int64_t lo = std::min<std::int64_t>(part * s.chunk, extent);
    const std::int64_t hi = std::min<std::int64_t>(lo + s.chunk, extent);
    if (lo >= hi) return;
    const std::int64_t lda = s.ta ? s.m : s.k;
    const std::int64_t ldb = s.tb ? s.k : s.n;
    if (s.by_rows) {  // rows [lo, hi) of C: rows of op(A)
      const T* a = s.ta ? s.a + lo : s.a + lo * lda;
      s.fn(s.ta, s.tb, hi - lo, s.n, s.k, a, lda, s.b, ldb, s.beta, s.c + lo * s.n, s.n);
    } else {  // columns [lo, hi) of C: columns of op(B)
      const T* b = s.tb ? s.b + lo * ldb : s.b + lo;
      s.fn(s.ta, s.tb, s.m, hi - lo, s.k, s.a, lda, b, ldb, s.beta, s.c + lo, s.n);
    }
  }
};

template <class T>
void eigen_gemm(GemmKernel kernel, bool ta, bool tb, std::int64_t m, std::int64_t n,
                std::int64_t k, const T* a, const T* b, T beta, T* c) {
  const EigenFn<T> fn = eigen_fn<T>(kernel);
  const int nt = threads();
  // Split only products worth a thread hand-off (a few microseconds).
  constexpr double kMinWork = 1 << 18;
  if (nt > 1 && static_cast<double>(m) * static_cast<double>(n) * static_cast<double>(k) >= kMinWork) {
    const bool by_rows = m >= n;
    const std::int64_t extent = by_rows ? m : n;
    constexpr std::int64_t kAlign = 16;
    const std::int64_t per_thread = (extent + nt - 1) / nt;
    const std::int64_t chunk = (per_thread + kAlign - 1) / kAlign * kAlign;
    const int parts = static_cast<int>(std::min<std::int64_t>(nt, (extent + chunk - 1) / chunk));
    if (parts > 1) {
      if (pool().workers() != nt - 1) pool().resize(nt - 1);
      Split<T> split{fn, ta, tb, by_rows, m, n, k, chunk, a, b, beta, c};
      pool().run(parts, &Split<T>::run, &split);
      return;
    }
  }
  fn(ta, tb, m, n, k, a, ta ? m : k, b, tb ? k : n, beta, c, n);
}

template <class T>
void openblas_gemm(bool ta, bool tb, std::int64_t m, std::int64_t n, std::int64_t k, const T* a,
                   const T* b, T beta, T* c) {
  threads();  // applies TAPEGRAD_NUM_THREADS before the first product
  const int lda = std::max(static_cast<int>(ta ? m : k), 1);
  const int ldb = std::max(static_cast<int>(tb ? k : n), 1);
  const int ldc = std::max(static_cast<int>(n), 1);
  const CBLAS_TRANSPOSE opa = ta ? CblasTrans : CblasNoTrans;
  const CBLAS_TRANSPOSE opb = tb ? CblasTrans : CblasNoTrans;
  if constexpr (std::is_same_v<T, float>) {
    cblas_sgemm(CblasRowMajor, opa, opb, static_cast<int>(m), static_cast<int>(n),
                static_cast<int>(k), 1.0f, a, lda, b, ldb, beta, c, ldc);
  } else {
    cblas_dgemm(CblasRowMajor, opa, opb, static_cast<int>(m), static_cast<int>(n),
                static_cast<int>(k), 1.0, a, lda, b, ldb, beta, c, ldc);
  }
}

template <class T>
void gemm_impl(GemmKernel kernel, bool ta, bool tb, std::int64_t m, std::int64_t n,
               std::int64_t k, const T* a, const T* b, T beta, T* c) {
  if (m == 0 || n == 0) return;
  if (kernel == GemmKernel::openblas) openblas_gemm(ta, tb, m, n, k, a, b, beta, c);
  else eigen_gemm(kernel, ta, tb, m, n, k, a, b, beta, c);
}

// ---- The choice -------------------------------------------------------------------------------------

/// The widest instruction set a GEMM kernel uses: 0 SSE, 1 AVX, 2 AVX2, 3 AVX-512, -1 unknown.
int openblas_core_level(std::string_view core) {
  std::string lower(core);
  for (char& ch : lower) ch = static_cast<char>(std::tolower(static_cast<unsigned char>(ch)));
  for (std::string_view c : {"skylakex", "cooperlake", "sapphirerapids"}) {
    if (lower == c) return 3;
  }
  for (std::string_view c : {"haswell", "zen", "excavator"}) {
    if (lower == c) return 2;
  }
  for (std::string_view c : {"sandybridge", "bulldozer", "piledriver", "steamroller"}) {
    if (lower == c) return 1;
  }
  for (std::string_view c : {"prescott", "core2", "penryn", "dunnington", "nehalem", "atom",
                             "nano", "barcelona", "opteron", "opteron_sse3", "bobcat", "katmai",
                             "coppermine", "northwood", "banias"}) {
    if (lower == c) return 0;
  }
  return -1;
}

std::atomic<int> chosen{-1};  // a GemmKernel, or -1 before the first use
std::mutex chosen_mutex;

}  // namespace

std::string_view gemm_kernel_name(GemmKernel k) noexcept {
  switch (k) {
    case GemmKernel::openblas: return "openblas";
    case GemmKernel::eigen_generic: return "eigen-generic";
    case GemmKernel::eigen_avx2: return "eigen-avx2";
    case GemmKernel::eigen_avx512: return "eigen-avx512";
  }
  return "unknown";
}

bool gemm_kernel_compiled(GemmKernel k) noexcept {
  switch (k) {
    case GemmKernel::openblas:
    case GemmKernel::eigen_generic: return true;
    case GemmKernel::eigen_avx2: return TAPEGRAD_GEMM_HAVE_AVX2 != 0;
    case GemmKernel::eigen_avx512: return TAPEGRAD_GEMM_HAVE_AVX512 != 0;
  }
  return false;
}

CpuFeatures cpu_features() noexcept {
  CpuFeatures f;
#if defined(__x86_64__) && defined(__GNUC__)
  __builtin_cpu_init();
  f.avx2_fma = __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
  f.avx512 = f.avx2_fma && __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512dq") &&
             __builtin_cpu_supports("avx512vl") && __builtin_cpu_supports("avx512bw");
#endif
  return f;
}

bool gemm_kernel_available(GemmKernel k) noexcept {
  if (!gemm_kernel_compiled(k)) return false;
  const CpuFeatures cpu = cpu_features();
  if (k == GemmKernel::eigen_avx2) return cpu.avx2_fma;
  if (k == GemmKernel::eigen_avx512) return cpu.avx512;
  return true;
}

GemmKernel choose_gemm_kernel(std::string_view requested, const CpuFeatures& cpu,
                              std::string_view openblas_core) {
  // Eigen in the widest form this CPU runs and this build has.
  GemmKernel eigen = GemmKernel::eigen_generic;
  int eigen_level = 0;
  if (cpu.avx512 && gemm_kernel_compiled(GemmKernel::eigen_avx512)) {
    eigen = GemmKernel::eigen_avx512;
    eigen_level = 3;
  } else if (cpu.avx2_fma && gemm_kernel_compiled(GemmKernel::eigen_avx2)) {
    eigen = GemmKernel::eigen_avx2;
    eigen_level = 2;
  }
  if (requested == "openblas") return GemmKernel::openblas;
  if (requested == "eigen") return eigen;
  if (!requested.empty() && requested != "auto") {
    throw ValueError(fmt::format("TAPEGRAD_GEMM: unknown GEMM backend '{}'; expected openblas, "
                                 "eigen or auto",
                                 requested));
  }
  // auto: OpenBLAS, unless its kernel was built for a narrower instruction set than this CPU's
  // widest (OPENBLAS_CORETYPE=Haswell on AVX-512 hardware) and Eigen covers the CPU's. Measured
  // (docs/benchmarks.md): with matching instruction sets OpenBLAS is the faster; Eigen's AVX-512
  // kernel beats OpenBLAS's Haswell kernel on AVX-512 hardware (about 180 against 129 GFLOP/s),
  // and Eigen's AVX2 kernel beats OpenBLAS's Sandybridge kernel on AVX2 hardware. An unknown core
  // name keeps OpenBLAS.
  const int cpu_level = cpu.avx512 ? 3 : cpu.avx2_fma ? 2 : 0;
  const int blas_level = openblas_core_level(openblas_core);
  if (blas_level >= 0 && blas_level < cpu_level && eigen_level == cpu_level) return eigen;
  return GemmKernel::openblas;
}

GemmKernel gemm_kernel() {
  const int k = chosen.load(std::memory_order_acquire);
  if (k >= 0) [[likely]] return static_cast<GemmKernel>(k);
  std::lock_guard lock(chosen_mutex);
  if (chosen.load(std::memory_order_relaxed) < 0) {
    const char* env = std::getenv("TAPEGRAD_GEMM");
    const GemmKernel pick = choose_gemm_kernel(env != nullptr ? env : "", cpu_features(),
                                               openblas_get_corename());
    chosen.store(static_cast<int>(pick), std::memory_order_release);
  }
  return static_cast<GemmKernel>(chosen.load(std::memory_order_relaxed));
}

void set_gemm_kernel(GemmKernel k) {
  if (!gemm_kernel_available(k)) {
    throw ValueError(fmt::format("set_gemm_kernel: {} is not {} here", gemm_kernel_name(k),
                                 gemm_kernel_compiled(k) ? "supported by this CPU"
                                                         : "compiled into this build"));
  }
  std::lock_guard lock(chosen_mutex);
  chosen.store(static_cast<int>(k), std::memory_order_release);
}

void gemm(bool ta, bool tb, std::int64_t m, std::int64_t n, std::int64_t k, const float* a,
          const float* b, float beta, float* c) {
  gemm_impl(gemm_kernel(), ta, tb, m, n, k, a, b, beta, c);
}
void gemm(bool ta, bool tb, std::int64_t m, std::int64_t n, std::int64_t k, const double* a,
          const double* b, double beta, double* c) {
  gemm_impl(gemm_kernel(), ta, tb, m, n, k, a, b, beta, c);
}

void gemm_with(GemmKernel kernel, bool ta, bool tb, std::int64_t m, std::int64_t n, std::int64_t k,
               const float* a, const float* b, float beta, float* c) {
  gemm_impl(kernel, ta, tb, m, n, k, a, b, beta, c);
}
void gemm_with(GemmKernel kernel, bool ta, bool tb, std::int64_t m, std::int64_t n, std::int64_t k,
               const double* a, const double* b, double beta, double* c) {
  gemm_impl(kernel, ta, tb, m, n, k, a, b, beta, c);
}

}  // namespace detail

void set_num_threads(int n) {
  if (n < 1) throw ValueError(fmt::format("set_num_threads: needs at least 1 thread, got {}", n));
  std::lock_guard lock(detail::threads_mutex);
  openblas_set_num_threads(n);
  detail::gemm_threads.store(n, std::memory_order_release);
}

int num_threads() { return detail::threads(); }

std::string gemm_backend() {
  using detail::GemmKernel;
  const GemmKernel k = detail::gemm_kernel();
  switch (k) {
    case GemmKernel::openblas:
      return fmt::format("openblas (OpenBLAS core {})", openblas_get_corename());
#if TAPEGRAD_GEMM_HAVE_AVX512
    case GemmKernel::eigen_avx512:
      return fmt::format("eigen-avx512 ({})", detail::eigen_avx512::description());
#endif
#if TAPEGRAD_GEMM_HAVE_AVX2
    case GemmKernel::eigen_avx2:
      return fmt::format("eigen-avx2 ({})", detail::eigen_avx2::description());
#endif
    default:
      return fmt::format("eigen-generic ({})", detail::eigen_generic::description());
  }
}

}  // namespace tg
