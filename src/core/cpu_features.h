// What this processor can run, as far as the operating system lets this process use it: the
// model name and the x86 instruction-set extensions the kernels and the benchmarks care about.
//
// AMX is special: CPUID may advertise it while the kernel (or the hypervisor under it) does not
// let a process use the tile data state. Linux hands it out per process on request
// (arch_prctl(ARCH_REQ_XCOMP_PERM, XFEATURE_XTILEDATA)); RequestAmx() asks, then runs tile
// instructions in a child process, so a CPU that would fault on them is found without a crash.
//
//   const CpuFeatures& f = GetCpuFeatures();
//   if (f.avx512_bf16 && RequestAmx().usable) { ... }
#pragma once

#include <string>

namespace kinfer {

struct CpuFeatures {
  std::string model;  // "model name" of /proc/cpuinfo, or the CPUID brand string
  // Usable extensions: CPUID says the CPU has them and XCR0 says the OS saves their registers.
  bool sse4_2 = false, avx2 = false, fma = false, f16c = false;
  bool avx512f = false, avx512bw = false, avx512vl = false, avx512_vnni = false;
  bool avx512_bf16 = false, avx512_fp16 = false, avx_vnni = false;
  bool gfni = false;  // GF2P8AFFINEQB & co. (the K-quant decode kernels move bits with it)
  // Advertised by CPUID; whether a process may use the tiles is RequestAmx()'s answer.
  bool amx_tile = false, amx_int8 = false, amx_bf16 = false;
};

// This CPU's features, detected once.
const CpuFeatures& GetCpuFeatures();

// The extensions of `f` as one line, e.g. "avx2 fma f16c avx512f ... amx-tile amx-int8".
std::string FeatureList(const CpuFeatures& f);

struct AmxStatus {
  bool usable = false;
  std::string detail;  // why not, or what was checked
};

// Asks the kernel for AMX tile data for this process and checks that tile instructions
// (ldtilecfg, tdpbssd, tdpbf16ps) run, in a forked child. Decided once; thread-safe.
const AmxStatus& RequestAmx();

}  // namespace kinfer
