// Checkpoints in the safetensors format: a model's parameters under their dotted names
// ("0.weight"), and optionally the optimizer's state ("optimizer.0.weight.momentum", with the
// optimizer's kind, step count and learning rate in the metadata). NumPy and PyTorch users can read
// them (see docs/guide.md). Saving is atomic; loading validates the whole file against the model
// (and optimizer) before changing anything.
#pragma once

#include <nn/module.hpp>
#include <nn/optim.hpp>

#include <filesystem>
#include <map>
#include <string>

namespace tg::nn {

/// Writes the model's parameters (and the optimizer's state, when given) to `path`, with `metadata`.
/// Throws tg::IoError if the write fails; the previous file is then left intact.
void save_checkpoint(const std::filesystem::path& path, const Module& model,
                     const Optimizer* optimizer = nullptr,
                     const std::map<std::string, std::string>& metadata = {});

/// Reads `path` into the model's parameters (and the optimizer's state, when given) and returns the
/// file's metadata. Throws tg::IoError for a malformed file and tg::ValueError when it does not fit
/// the model (missing or unexpected names, other shapes or dtypes, no optimizer state); either way
/// the model and optimizer are left untouched.
std::map<std::string, std::string> load_checkpoint(const std::filesystem::path& path, Module& model,
                                                   Optimizer* optimizer = nullptr);

}  // namespace tg::nn
