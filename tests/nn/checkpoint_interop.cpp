// The C++ side of the NumPy test of checkpoints (checkpoint_numpy_test.py):
//
//   nn_checkpoint_interop write <dir>   trains two small models a few steps and saves them with
//                                       save_checkpoint (with optimizer state) to
//                                       <dir>/f32.safetensors and <dir>/f64.safetensors, and every
//                                       tensor's values as text to <dir>/expected.txt
//   nn_checkpoint_interop check <dir>   loads <dir>/from_numpy.safetensors (written by Python)
//                                       into the f32 model with load_checkpoint and compares its
//                                       parameters with <dir>/from_numpy.txt
//
// The text files have one line per tensor, "file<TAB>name<TAB>dtype<TAB>d0,d1,...<TAB>v0 v1 ..."
// (values in shortest round-trip decimal form, so that parsing gives the same bits), and one line
// per metadata entry, "#meta<TAB>file<TAB>key<TAB>value".
#include <nn/checkpoint.hpp>
#include <nn/io/atomic_file.hpp>
#include <nn/layers.hpp>
#include <nn/loss.hpp>
#include <nn/optim.hpp>

#include <charconv>
#include <cstdio>
#include <filesystem>
#include <fmt/format.h>
#include <fstream>
#include <memory>
#include <sstream>
#include <string>
#include <vector>

namespace {

using namespace tg::nn;
using tg::Dtype;
using tg::Tensor;

std::shared_ptr<Sequential> model(Dtype dtype) {
  return std::make_shared<Sequential>(std::initializer_list<std::shared_ptr<Module>>{
      std::make_shared<Linear>(3, 4, LinearOptions{.seed = 1, .dtype = dtype}), std::make_shared<Tanh>(),
      std::make_shared<Linear>(4, 2, LinearOptions{.seed = 2, .dtype = dtype})});
}

void train(Module& m, Optimizer& opt, Dtype dtype, int steps) {
  tg::Tape& tape = tg::active_tape();
  const Tensor x = Tensor::rand({6, 3}, 10, dtype, -1, 1);
  const Tensor y = Tensor::rand({6, 2}, 11, dtype, -1, 1);
  for (int i = 0; i < steps; ++i) {
    tape.reset();
    mse_loss(m(x), y).backward();
    opt.step();
    opt.zero_grad();
  }
  tape.reset();
}

std::string values_text(const Tensor& t) {
  std::string s;
  for (double v : t.to_vector()) {
    if (!s.empty()) s += ' ';
    char buf[64];
    // Shortest round trip of the double; for a float element that double is the float exactly.
    const auto r = std::to_chars(buf, buf + sizeof buf, v);
    s.append(buf, r.ptr);
  }
  return s;
}

std::string line(const std::string& file, const std::string& name, const Tensor& t) {
  return fmt::format("{}\t{}\t{}\t{}\t{}\n", file, name, t.dtype() == Dtype::f32 ? "F32" : "F64",
                     fmt::join(t.shape().dims(), ","), values_text(t));
}

int write(const std::filesystem::path& dir) {
  std::string text;
  {
    auto m = model(Dtype::f32);
    Adam adam(m->named_parameters(), {.lr = 0.01});
    train(*m, adam, Dtype::f32, 3);
    save_checkpoint(dir / "f32.safetensors", *m, &adam, {{"epoch", "3"}});
    for (const NamedTensor& p : m->named_parameters()) text += line("f32.safetensors", p.name, p.tensor);
    for (const NamedTensor& s : adam.state_tensors()) text += line("f32.safetensors", "optimizer." + s.name, s.tensor);
    for (const auto& [k, v] : adam.state_scalars()) text += fmt::format("#meta\tf32.safetensors\toptimizer.{}\t{}\n", k, v);
    text += "#meta\tf32.safetensors\tepoch\t3\n";
  }
  {
    auto m = model(Dtype::f64);
    SGD sgd(m->named_parameters(), {.lr = 0.1, .momentum = 0.9});
    train(*m, sgd, Dtype::f64, 2);
    save_checkpoint(dir / "f64.safetensors", *m, &sgd);
    for (const NamedTensor& p : m->named_parameters()) text += line("f64.safetensors", p.name, p.tensor);
    for (const NamedTensor& s : sgd.state_tensors()) text += line("f64.safetensors", "optimizer." + s.name, s.tensor);
    for (const auto& [k, v] : sgd.state_scalars()) text += fmt::format("#meta\tf64.safetensors\toptimizer.{}\t{}\n", k, v);
  }
  tg::io::write_file_atomically(dir / "expected.txt", text);
  return 0;
}

std::vector<std::string> split(const std::string& s, char sep) {
  std::vector<std::string> out;
  std::string cur;
  std::istringstream in(s);
  while (std::getline(in, cur, sep)) out.push_back(cur);
  if (!s.empty() && s.back() == sep) out.emplace_back();
  return out;
}

int check(const std::filesystem::path& dir) {
  auto m = model(Dtype::f32);
  const auto meta = load_checkpoint(dir / "from_numpy.safetensors", *m);
  std::ifstream in(dir / "from_numpy.txt");
  if (!in) throw std::runtime_error("cannot read from_numpy.txt");
  std::map<std::string, std::vector<double>> want;
  std::string l;
  while (std::getline(in, l)) {
    const auto f = split(l, '\t');
    if (f.size() != 2) throw std::runtime_error("bad line in from_numpy.txt: " + l);
    std::vector<double> v;
    for (const std::string& item : split(f[1], ' ')) {
      double d = 0;
      if (std::from_chars(item.data(), item.data() + item.size(), d).ec != std::errc()) {
        throw std::runtime_error("bad number " + item);
      }
      v.push_back(static_cast<double>(static_cast<float>(d)));
    }
    want[f[0]] = v;
  }
  int failures = 0;
  for (const NamedTensor& p : m->named_parameters()) {
    if (p.tensor.to_vector() != want[p.name]) {
      std::fprintf(stderr, "MISMATCH: %s\n", p.name.c_str());
      ++failures;
    }
  }
  if (want.size() != m->named_parameters().size()) {
    std::fprintf(stderr, "MISMATCH: %zu tensors expected, the model has %zu\n", want.size(), m->named_parameters().size());
    ++failures;
  }
  if (meta.count("source") == 0 || meta.at("source") != "numpy") {
    std::fprintf(stderr, "MISMATCH: metadata 'source' missing\n");
    ++failures;
  }
  if (failures == 0) std::printf("ok: %zu parameters loaded from the NumPy-written checkpoint\n", want.size());
  return failures == 0 ? 0 : 1;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc != 3) {
    std::fprintf(stderr, "usage: %s write|check <dir>\n", argv[0]);
    return 2;
  }
  try {
    const std::string mode = argv[1];
    if (mode == "write") return write(argv[2]);
    if (mode == "check") return check(argv[2]);
    std::fprintf(stderr, "unknown mode %s\n", argv[1]);
    return 2;
  } catch (const std::exception& e) {
    std::fprintf(stderr, "error: %s\n", e.what());
    return 1;
  }
}
