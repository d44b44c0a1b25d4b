// libFuzzer target: LoRA adapters (adapter_config.json + adapter_model.safetensors, or a GGUF
// LoRA file) checked against a real base model (stories260K) must be refused cleanly or load
// with every matrix inside its own storage. Input: one selector byte (even: PEFT, odd: GGUF),
// then for PEFT the config text, a NUL byte, and the safetensors bytes.
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <span>
#include <string_view>

#include "model/lora_adapter.h"
#include "model/model.h"

namespace {

const kinfer::model::Model* Base() {
  static auto* m = [] {
    auto r = kinfer::model::LoadModel(KINFER_SHARED_DIR "/models/stories260K/stories260K.gguf");
    return r.ok() ? r->release() : nullptr;
  }();
  return m;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const kinfer::model::Model* base = Base();
  if (!base || size < 1) return 0;
  const bool gguf = data[0] & 1;
  std::span<const uint8_t> rest(data + 1, size - 1);
  kinfer::model::LoraLoadOptions options;
  options.max_rank = 64;
  kinfer::Result<std::shared_ptr<const kinfer::model::LoraAdapter>> a =
      kinfer::NotFoundError("unset");
  if (gguf) {
    a = kinfer::model::ParseGgufLoraAdapter(rest, "fuzz.gguf", *base, options);
  } else {
    const auto* nul = static_cast<const uint8_t*>(std::memchr(rest.data(), 0, rest.size()));
    const size_t cfg = nul ? static_cast<size_t>(nul - rest.data()) : rest.size();
    std::string_view text(reinterpret_cast<const char*>(rest.data()), cfg);
    a = kinfer::model::ParsePeftLoraAdapter(text, rest.subspan(nul ? cfg + 1 : cfg), "fuzz", *base,
                                            options);
  }
  if (!a.ok()) return 0;
  volatile float sink = 0;
  for (int64_t l = 0; l < (*a)->num_layers(); ++l) {
    for (int t = 0; t < kinfer::model::kNumLoraTargets; ++t) {
      const auto& m = (*a)->matrices(l, static_cast<kinfer::model::LoraTarget>(t));
      if (m.empty()) continue;
      const auto* pa = static_cast<const uint8_t*>(m.a.data);
      const auto* pb = static_cast<const uint8_t*>(m.bt.data);
      sink = sink + pa[0] + pa[m.a.nbytes - 1] + pb[0] + pb[m.bt.nbytes - 1];
    }
  }
  return 0;
}
