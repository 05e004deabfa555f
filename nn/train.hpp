// A small training loop: fit() trains a model on a DataLoader, reporting loss and accuracy per
// epoch (a progress bar on a terminal, plain lines otherwise); evaluate() measures a dataset.
// Classification sets (labels) train with cross_entropy on logits, regression sets with mse_loss.
//
// fit() and evaluate() record on the active tape and reset it before every batch: tensors recorded
// before the call are stale afterwards.
#pragma once

#include <nn/data.hpp>
#include <nn/module.hpp>
#include <nn/optim.hpp>

#include <cstdint>
#include <cstdio>
#include <functional>
#include <optional>
#include <string>
#include <vector>

namespace tg::nn {

struct Evaluation {
  double loss = 0;
  double accuracy = 0;                    ///< classification only
  std::int64_t classes = 0;               ///< classification only
  std::vector<std::int64_t> confusion;    ///< [true class][predicted class], classes x classes
  std::int64_t samples = 0;

  /// The confusion matrix as an aligned table.
  std::string format_confusion() const;
};

/// Loss (and accuracy, confusion matrix) of `model` on `data`, in evaluation mode, without
/// recording gradients; restores the model's mode.
Evaluation evaluate(Module& model, const TensorDataset& data, std::int64_t batch_size = 1000);

struct EpochStats {
  int epoch = 0;               ///< 1-based
  double train_loss = 0;       ///< mean over the epoch's batches, weighted by batch size
  double train_accuracy = 0;   ///< classification only
  std::optional<Evaluation> validation;
  double seconds = 0;
  double samples_per_second = 0;
  double learning_rate = 0;
};

struct FitOptions {
  int epochs = 10;
  /// Where to start (1-based), e.g. after resuming from a checkpoint: epochs first_epoch..epochs
  /// run, and epoch e shuffles as the loader's epoch(e - 1).
  int first_epoch = 1;
  /// Evaluated after every epoch when given.
  const TensorDataset* validation = nullptr;
  /// What the per-epoch lines call that set: "val_loss", "val_acc" by default ("test" when it is
  /// the test set, say).
  std::string validation_name = "val";
  /// Progress bar: default when `out` is a terminal.
  std::optional<bool> progress{};
  /// Per-epoch lines ("epoch 3/10  loss 0.41  acc 0.853 ...") on `out`; nullptr prints nothing.
  std::FILE* out = stdout;
  /// Called after each epoch (a learning-rate schedule's step(), a checkpoint, metrics...).
  std::function<void(const EpochStats&)> on_epoch = {};
};

/// Trains `model` with `optimizer` over `train` for epochs first_epoch..epochs and returns each
/// epoch's figures. Each step: reset the tape, forward, loss, zero_grad, backward, step; so
/// gradients from before the call are ignored and the last batch's remain for diagnostics
/// (gradient_norms). A non-finite loss throws tg::ValueError before its update is applied. On any
/// exception the tape is reset (no half-recorded batch is left on it) and a progress bar drawn in
/// that epoch is ended with a newline.
std::vector<EpochStats> fit(Module& model, Optimizer& optimizer, DataLoader& train, const FitOptions& options = {});

/// Index of the largest logit of each row of a [batch, classes] tensor.
std::vector<std::int64_t> argmax_rows(const Tensor& logits);

}  // namespace tg::nn
