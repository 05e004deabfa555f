#include <nn/checkpoint.hpp>

#include <nn/io/safetensors.hpp>

#include <cstring>
#include <fmt/format.h>

namespace tg::nn {

namespace {
constexpr std::string_view kOptimizerPrefix = "optimizer.";

io::Dtype io_dtype(Dtype d) { return d == Dtype::f32 ? io::Dtype::F32 : io::Dtype::F64; }

io::TensorView view(const std::string& name, const Tensor& t) {
  std::vector<std::uint64_t> shape(t.shape().dims().begin(), t.shape().dims().end());
  const std::size_t bytes = static_cast<std::size_t>(t.numel()) * dtype_size(t.dtype());
  const auto* data = t.dtype() == Dtype::f32 ? reinterpret_cast<const std::byte*>(t.data<float>())
                                             : reinterpret_cast<const std::byte*>(t.data<double>());
  return {name, io_dtype(t.dtype()), std::move(shape), std::span<const std::byte>(data, bytes)};
}

// The array as a tensor of `like`'s shape and dtype, or a ValueError naming what differs.
Tensor to_tensor(const io::Array& a, const std::string& name, const Tensor& like, const std::filesystem::path& path) {
  const std::vector<std::uint64_t> want(like.shape().dims().begin(), like.shape().dims().end());
  if (a.shape != want || a.dtype != io_dtype(like.dtype())) {
    throw ValueError(fmt::format("load_checkpoint: {}: '{}' is {} {}, the model expects {} {}", path.string(), name,
                                 io::dtype_name(a.dtype), fmt::format("[{}]", fmt::join(a.shape, ", ")),
                                 io::dtype_name(io_dtype(like.dtype())), like.shape().str()));
  }
  Tensor t = Tensor::zeros(like.shape(), like.dtype());
  if (!a.data.empty()) {
    void* dst = like.dtype() == Dtype::f32 ? static_cast<void*>(t.data<float>()) : static_cast<void*>(t.data<double>());
    std::memcpy(dst, a.data.data(), a.data.size());
  }
  return t;
}
}  // namespace

void save_checkpoint(const std::filesystem::path& path, const Module& model, const Optimizer* optimizer,
                     const std::map<std::string, std::string>& metadata) {
  std::vector<io::TensorView> views;
  for (const NamedTensor& p : model.named_parameters()) views.push_back(view(p.name, p.tensor));
  std::map<std::string, std::string> meta = metadata;
  meta["format"] = "tapegrad checkpoint 1";
  if (optimizer != nullptr) {
    for (const NamedTensor& s : optimizer->state_tensors()) {
      views.push_back(view(std::string(kOptimizerPrefix) + s.name, s.tensor));
    }
    for (const auto& [k, v] : optimizer->state_scalars()) meta[std::string(kOptimizerPrefix) + k] = v;
  }
  io::save_safetensors(path, views, meta);
}

std::map<std::string, std::string> load_checkpoint(const std::filesystem::path& path, Module& model, Optimizer* optimizer) {
  const io::SafetensorsFile file = io::load_safetensors(path);
  // Model parameters: every one present, with its shape and dtype; nothing unexpected.
  std::vector<NamedTensor> params = model.named_parameters();
  std::vector<Tensor> values;
  for (const NamedTensor& p : params) {
    if (!file.contains(p.name)) {
      throw ValueError(fmt::format("load_checkpoint: {} has no parameter '{}'", path.string(), p.name));
    }
    values.push_back(to_tensor(file.at(p.name), p.name, p.tensor, path));
  }
  std::vector<NamedTensor> optimizer_tensors;
  std::map<std::string, std::string> optimizer_scalars;
  for (const auto& [name, array] : file.tensors) {
    if (name.starts_with(kOptimizerPrefix)) {
      if (optimizer == nullptr) continue;
      const std::string buffer = name.substr(kOptimizerPrefix.size());
      // The buffer has its parameter's shape: find the parameter it belongs to.
      const NamedTensor* owner = nullptr;
      for (const NamedTensor& p : params) {
        if (buffer.starts_with(p.name + ".") && (owner == nullptr || p.name.size() > owner->name.size())) owner = &p;
      }
      if (owner == nullptr) {
        throw ValueError(fmt::format("load_checkpoint: {}: optimizer state '{}' matches no parameter", path.string(), name));
      }
      optimizer_tensors.push_back({buffer, to_tensor(array, name, owner->tensor, path)});
      continue;
    }
    const bool known = std::any_of(params.begin(), params.end(), [&](const NamedTensor& p) { return p.name == name; });
    if (!known) {
      throw ValueError(fmt::format("load_checkpoint: {} holds '{}', which the model does not have", path.string(), name));
    }
  }
  std::map<std::string, std::string> metadata;
  for (const auto& [k, v] : file.metadata) {
    if (k.starts_with(kOptimizerPrefix)) optimizer_scalars[k.substr(kOptimizerPrefix.size())] = v;
    else metadata[k] = v;
  }
  if (optimizer != nullptr) {
    if (optimizer_scalars.empty()) {
      throw ValueError(fmt::format("load_checkpoint: {} has no optimizer state", path.string()));
    }
    optimizer->load_state(optimizer_tensors, optimizer_scalars);  // validates before it changes anything
  }
  for (std::size_t i = 0; i < params.size(); ++i) params[i].tensor.copy_(values[i]);
  return metadata;
}

}  // namespace tg::nn
