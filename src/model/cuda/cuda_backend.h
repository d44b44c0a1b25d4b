// The CUDA backend: the decoder's forward pass on an NVIDIA GPU, behind model::Backend. Weights
// are uploaded once in their stored type (F32/F16/BF16 and ggml's block formats, dequantized
// inside the matmul), the KV cache lives in device memory in the engine's block layout, and
// each step copies the batch's token tables in and the requested logits rows out.
//
// Built only by the `cuda` preset (KINFER_CUDA=ON); the engine reaches it through
// engine/device.h, so nothing else depends on CUDA.
#pragma once

#include <memory>
#include <string>

#include "core/status.h"
#include "model/backend.h"
#include "model/model.h"

namespace kinfer::model::cuda {

// Number of CUDA devices; 0 when there is no driver or no device, with `why` saying which.
int DeviceCount(std::string* why);

struct CudaBackendOptions {
  int device = 0;
  // Share of the GPU's memory this process may take (weights + activations + KV cache), as
  // vLLM's --gpu-memory-utilization.
  double gpu_memory_utilization = 0.9;
};

// Uploads `model`'s weights to the GPU. Fails (naming the tensor) on weight types the CUDA
// kernels do not read, and when the weights do not fit.
Result<std::unique_ptr<Backend>> CreateCudaBackend(const Model& model,
                                                   const CudaBackendOptions& options);

}  // namespace kinfer::model::cuda
