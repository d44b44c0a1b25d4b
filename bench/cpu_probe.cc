// What this CPU and kernel let a process use, as one JSON line: the standalone probe that
// bench/llama_cpp.py compiles (with src/core/cpu_features.cc alone) to choose llama.cpp's build
// flags before anything of Kinfer is built.
//
//   g++ -std=c++20 -O1 -Isrc bench/cpu_probe.cc src/core/cpu_features.cc -o cpu_probe
#include <cstdio>
#include <string>

#include "core/cpu_features.h"

namespace {

std::string Quote(const std::string& s) {
  std::string out = "\"";
  for (char c : s) {
    if (c == '"' || c == '\\') out += '\\';
    out += static_cast<unsigned char>(c) < 0x20 ? ' ' : c;
  }
  return out + '"';
}

}  // namespace

int main() {
  const kinfer::CpuFeatures& f = kinfer::GetCpuFeatures();
  const kinfer::AmxStatus& amx = kinfer::RequestAmx();
  std::printf("{\"cpu\": %s, \"features\": %s, \"amx_usable\": %s, \"amx_detail\": %s}\n",
              Quote(f.model).c_str(), Quote(kinfer::FeatureList(f)).c_str(),
              amx.usable ? "true" : "false", Quote(amx.detail).c_str());
  return 0;
}
