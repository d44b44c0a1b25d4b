// `kinfer inspect PATH`: what a model file holds, without running it.
#include <fmt/format.h>

#include <map>

#include "cli/commands.h"
#include "core/units.h"
#include "model/gguf.h"
#include "model/model.h"

namespace kinfer::cli {
namespace {

int RunInspect(const std::string& path, bool metadata) {
  model::LoadOptions options;
  options.pack_weights = false;  // describe the file as stored
  auto model = model::LoadModel(path, options);
  if (!model.ok()) {
    fmt::print(stderr, "error: {}\n", model.status().message());
    return 1;
  }
  const model::Model& m = **model;
  const model::ModelConfig& c = m.config();
  fmt::print("path:          {}\n", m.path());
  fmt::print("format:        {}\n", model::ModelFormatName(m.format()));
  fmt::print("architecture:  {}\n", c.architecture);
  fmt::print("layers:        {}\n", c.num_layers);
  fmt::print("hidden size:   {}\n", c.hidden_size);
  fmt::print("ffn size:      {}\n", c.intermediate_size);
  fmt::print("heads:         {} query, {} key/value, head dim {}\n", c.num_heads, c.num_kv_heads,
             c.head_dim);
  fmt::print("vocab size:    {}\n", c.vocab_size);
  fmt::print("context:       {}\n", c.max_position_embeddings);
  fmt::print("rope:          theta {}, {} layout{}\n", c.rope_theta,
             c.rope_layout == model::RopeLayout::kHalf ? "rotate-half" : "interleaved",
             c.rope_scaling.type == model::RopeScalingType::kLlama3   ? ", llama3 scaling"
             : c.rope_scaling.type == model::RopeScalingType::kLinear ? ", linear scaling"
                                                                      : "");
  fmt::print("rms norm eps:  {}\n", c.rms_norm_eps);
  fmt::print("tied embed:    {}\n", c.tie_word_embeddings ? "yes" : "no");
  fmt::print("qkv bias:      {}\n", c.attention_bias ? "yes" : "no");
  fmt::print("qk norm:       {}\n", c.qk_norm ? "yes" : "no");
  fmt::print("parameters:    {} ({:.1f} M)\n", m.num_parameters(), m.num_parameters() / 1e6);
  fmt::print("weight bytes:  {} ({})\n", m.weight_bytes(),
             FormatBytes(static_cast<int64_t>(m.weight_bytes())));

  // Tensor types and counts, over the matrices the decoder uses.
  std::map<std::string, std::pair<int, size_t>> by_type;
  auto count = [&](const TensorView& t) {
    if (t.empty()) return;
    auto& e = by_type[std::string(DTypeName(t.dtype))];
    e.first++;
    e.second += t.nbytes;
  };
  count(m.weights().token_embedding);
  if (m.weights().lm_head.data != m.weights().token_embedding.data) count(m.weights().lm_head);
  for (const auto& l : m.weights().layers) {
    for (const TensorView* t : {&l.wq, &l.wk, &l.wv, &l.wo, &l.w_gate, &l.w_up, &l.w_down})
      count(*t);
  }
  fmt::print("matrix types:\n");
  for (const auto& [name, e] : by_type) {
    fmt::print("  {:<6} {:>5} tensors  {}\n", name, e.first,
               FormatBytes(static_cast<int64_t>(e.second)));
  }
  if (metadata && m.gguf()) {
    fmt::print("gguf metadata (version {}):\n", m.gguf()->version());
    for (const auto& [key, value] : m.gguf()->metadata()) {
      fmt::print("  {} = {}\n", key, value.ToDisplayString());
    }
  }
  return 0;
}

}  // namespace

void AddInspectCommand(CLI::App& app) {
  auto* cmd = app.add_subcommand("inspect", "Show a model's architecture, sizes and tensor types");
  auto path = std::make_shared<std::string>();
  auto metadata = std::make_shared<bool>(false);
  cmd->add_option("path", *path, "GGUF file, HF model directory or llama2.c .bin")->required();
  cmd->add_flag("--metadata", *metadata, "Also print every GGUF metadata key");
  cmd->callback([path, metadata] { ExitCode() = RunInspect(*path, *metadata); });
}

}  // namespace kinfer::cli
