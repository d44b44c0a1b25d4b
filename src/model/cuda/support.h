// What the CUDA backend computes: the dense decoder of Llama, Mistral, Qwen2 and Qwen3. Models
// that need more (Gemma's norms and interleaved sliding window, Phi-3's fused tensors and
// LongRoPE, mixtures of experts) are refused at load, never run with a wrong result. Plain C++
// (no CUDA headers), so the check is tested where there is no GPU.
#pragma once

#include "core/status.h"
#include "model/model.h"

namespace kinfer::model::cuda {

// Ok when the CUDA backend runs `model` exactly as the CPU decoder does; else Unimplemented,
// naming the model's architecture and each feature the backend lacks, and saying to use
// --device cpu. Checks the config only (weight types are checked as they are uploaded).
Status CheckCudaSupport(const Model& model);
Status CheckCudaSupport(const ModelConfig& config, const std::string& source);

}  // namespace kinfer::model::cuda
