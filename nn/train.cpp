#include <nn/train.hpp>

#include <nn/loss.hpp>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <fmt/format.h>
#include <unistd.h>

namespace tg::nn {

namespace {
using Clock = std::chrono::steady_clock;

template <class T>
std::int64_t argmax(const T* row, std::int64_t n) {
  return static_cast<std::int64_t>(std::max_element(row, row + n) - row);
}

Tensor loss_of(const Tensor& out, const Batch& b, bool classification) {
  return classification ? cross_entropy(out, b.labels) : mse_loss(out, b.y);
}

void draw_progress(std::FILE* f, int epoch, int epochs, std::int64_t done, std::int64_t total, double loss) {
  constexpr int kWidth = 30;
  const int filled = static_cast<int>(kWidth * done / std::max<std::int64_t>(total, 1));
  fmt::print(f, "\repoch {}/{} [{:=<{}}{: <{}}] {:3d}%  loss {:.4f}", epoch, epochs, "", filled, "", kWidth - filled,
             static_cast<int>(100 * done / std::max<std::int64_t>(total, 1)), loss);
  std::fflush(f);
}
}  // namespace

std::vector<std::int64_t> argmax_rows(const Tensor& logits) {
  if (logits.rank() != 2) throw ShapeError(fmt::format("argmax_rows: needs [batch, classes], got {}", logits.shape().str()));
  const std::int64_t n = logits.shape()[0];
  const std::int64_t c = logits.shape()[1];
  std::vector<std::int64_t> out(static_cast<std::size_t>(n));
  for (std::int64_t i = 0; i < n; ++i) {
    out[static_cast<std::size_t>(i)] = logits.dtype() == Dtype::f32 ? argmax(logits.data<float>() + i * c, c)
                                                                   : argmax(logits.data<double>() + i * c, c);
  }
  return out;
}

std::string Evaluation::format_confusion() const {
  std::string s = fmt::format("{:>10}", "true\\pred");
  for (std::int64_t j = 0; j < classes; ++j) s += fmt::format(" {:>6}", j);
  s += '\n';
  for (std::int64_t i = 0; i < classes; ++i) {
    s += fmt::format("{:>10}", i);
    for (std::int64_t j = 0; j < classes; ++j) s += fmt::format(" {:>6}", confusion[static_cast<std::size_t>(i * classes + j)]);
    s += '\n';
  }
  return s;
}

Evaluation evaluate(Module& model, const TensorDataset& data, std::int64_t batch_size) {
  if (batch_size < 1) throw ValueError(fmt::format("evaluate: batch_size must be >= 1, got {}", batch_size));
  const bool was_training = model.is_training();
  model.eval();
  Tape& tape = active_tape();
  NoGrad no_grad;
  Evaluation ev;
  double loss_sum = 0;
  std::int64_t correct = 0;
  try {
    for (std::int64_t begin = 0; begin < data.size(); begin += batch_size) {
      const std::int64_t end = std::min(begin + batch_size, data.size());
      tape.reset();
      Batch b;
      b.x = data.x().rows(begin, end);
      if (data.is_classification()) {
        b.labels = data.labels().subspan(static_cast<std::size_t>(begin), static_cast<std::size_t>(end - begin));
      } else {
        b.y = data.y().rows(begin, end);
      }
      const Tensor out = model(b.x);
      loss_sum += loss_of(out, b, data.is_classification()).item() * static_cast<double>(end - begin);
      if (data.is_classification()) {
        if (ev.classes == 0) {
          ev.classes = out.shape()[1];
          ev.confusion.assign(static_cast<std::size_t>(ev.classes * ev.classes), 0);
        }
        const std::vector<std::int64_t> pred = argmax_rows(out);
        for (std::size_t i = 0; i < pred.size(); ++i) {
          correct += pred[i] == b.labels[i] ? 1 : 0;
          ++ev.confusion[static_cast<std::size_t>(b.labels[i] * ev.classes + pred[i])];
        }
      }
    }
  } catch (...) {
    tape.reset();
    model.train(was_training);
    throw;
  }
  tape.reset();
  model.train(was_training);
  ev.samples = data.size();
  ev.loss = data.size() > 0 ? loss_sum / static_cast<double>(data.size()) : 0.0;
  ev.accuracy = data.size() > 0 ? static_cast<double>(correct) / static_cast<double>(data.size()) : 0.0;
  return ev;
}

std::vector<EpochStats> fit(Module& model, Optimizer& optimizer, DataLoader& train, const FitOptions& o) {
  if (o.epochs < 0 || o.first_epoch < 1) {
    throw ValueError(fmt::format("fit: needs epochs >= 0 and first_epoch >= 1, got {} and {}", o.epochs, o.first_epoch));
  }
  const bool progress = o.out != nullptr && o.progress.value_or(isatty(fileno(o.out)) != 0);
  const bool classification = train.dataset().is_classification();
  Tape& tape = active_tape();
  std::vector<EpochStats> history;
  for (int e = o.first_epoch; e <= o.epochs; ++e) {
    model.train();
    const auto start = Clock::now();
    double loss_sum = 0;
    std::int64_t correct = 0;
    std::int64_t seen = 0;
    std::int64_t done = 0;
    bool bar_drawn = false;
    try {
      for (const Batch& b : train.epoch(e - 1)) {
        tape.reset();
        const Tensor out = model(b.x);
        const Tensor loss = loss_of(out, b, classification);
        const double l = loss.item();
        if (!std::isfinite(l)) {  // before the update: the model keeps the last finite weights
          throw ValueError(fmt::format("fit: the loss became {} in epoch {}, batch {} (learning rate {} too large?)", l, e,
                                       done, optimizer.learning_rate()));
        }
        // Cleared before each backward, not after: gradients left from before the call do not leak
        // into the first update, and the last batch's gradients stay readable (gradient_norms).
        optimizer.zero_grad();
        loss.backward();
        optimizer.step();
        loss_sum += l * static_cast<double>(b.size());
        seen += b.size();
        if (classification) {
          const std::vector<std::int64_t> pred = argmax_rows(out);
          for (std::size_t i = 0; i < pred.size(); ++i) correct += pred[i] == b.labels[i] ? 1 : 0;
        }
        ++done;
        if (progress && (done % 16 == 0 || done == train.batches())) {
          draw_progress(o.out, e, o.epochs, done, train.batches(), loss_sum / static_cast<double>(seen));
          bar_drawn = true;
        }
      }
    } catch (...) {
      // A failed step (a non-finite loss, a shape error in the model) leaves no half recording on
      // the tape and no unterminated progress line in front of the error message.
      tape.reset();
      if (bar_drawn) fmt::print(o.out, "\n");
      throw;
    }
    tape.reset();
    EpochStats s;
    s.epoch = e;
    s.seconds = std::chrono::duration<double>(Clock::now() - start).count();
    s.train_loss = seen > 0 ? loss_sum / static_cast<double>(seen) : 0.0;
    s.train_accuracy = seen > 0 ? static_cast<double>(correct) / static_cast<double>(seen) : 0.0;
    s.samples_per_second = s.seconds > 0 ? static_cast<double>(seen) / s.seconds : 0.0;
    s.learning_rate = optimizer.learning_rate();
    if (o.validation != nullptr) s.validation = evaluate(model, *o.validation);
    if (o.out != nullptr) {
      if (progress) fmt::print(o.out, "\r\033[K");
      std::string line = fmt::format("epoch {}/{}  loss {:.4f}", e, o.epochs, s.train_loss);
      if (classification) line += fmt::format("  acc {:.4f}", s.train_accuracy);
      if (s.validation) {
        line += fmt::format("  {}_loss {:.4f}", o.validation_name, s.validation->loss);
        if (classification) line += fmt::format("  {}_acc {:.4f}", o.validation_name, s.validation->accuracy);
      }
      line += fmt::format("  {:.2f}s  {:.0f} samples/s", s.seconds, s.samples_per_second);
      fmt::print(o.out, "{}\n", line);
      std::fflush(o.out);
    }
    history.push_back(s);
    if (o.on_epoch) o.on_epoch(s);
  }
  return history;
}

}  // namespace tg::nn
