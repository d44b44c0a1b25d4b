#include "core/cpu_features.h"

#include <fstream>
#include <mutex>

#if defined(__x86_64__)
#include <cpuid.h>
#include <immintrin.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#endif

namespace kinfer {
namespace {

std::string CpuinfoModelName() {
  std::ifstream f("/proc/cpuinfo");
  std::string line;
  while (std::getline(f, line)) {
    if (line.rfind("model name", 0) == 0) {
      const size_t colon = line.find(':');
      if (colon != std::string::npos) {
        size_t b = line.find_first_not_of(" \t", colon + 1);
        return b == std::string::npos ? std::string() : line.substr(b);
      }
    }
  }
  return {};
}

#if defined(__x86_64__)
bool Bit(unsigned v, int b) { return (v >> b) & 1u; }

std::string BrandString() {
  unsigned regs[12] = {};
  unsigned max_ext = __get_cpuid_max(0x80000000u, nullptr);
  if (max_ext < 0x80000004u) return {};
  for (unsigned i = 0; i < 3; ++i) {
    __get_cpuid(0x80000002u + i, &regs[4 * i], &regs[4 * i + 1], &regs[4 * i + 2],
                &regs[4 * i + 3]);
  }
  std::string s(reinterpret_cast<const char*>(regs), sizeof(regs));
  s = s.c_str();
  const size_t b = s.find_first_not_of(' ');
  return b == std::string::npos ? std::string() : s.substr(b);
}

CpuFeatures Detect() {
  CpuFeatures f;
  f.model = CpuinfoModelName();
  if (f.model.empty()) f.model = BrandString();
  unsigned a = 0, b = 0, c = 0, d = 0;
  if (!__get_cpuid(1, &a, &b, &c, &d)) return f;
  const bool osxsave = Bit(c, 27);
  unsigned long long xcr0 = 0;
  if (osxsave) {
    unsigned lo = 0, hi = 0;
    __asm__("xgetbv" : "=a"(lo), "=d"(hi) : "c"(0));
    xcr0 = (static_cast<unsigned long long>(hi) << 32) | lo;
  }
  const bool os_avx = (xcr0 & 0x6) == 0x6;                 // XMM and YMM state
  const bool os_avx512 = os_avx && (xcr0 & 0xE0) == 0xE0;  // opmask, ZMM upper halves, ZMM16-31
  f.sse4_2 = Bit(c, 20);
  f.fma = os_avx && Bit(c, 12);
  f.f16c = os_avx && Bit(c, 29);
  unsigned a7 = 0, b7 = 0, c7 = 0, d7 = 0;
  if (__get_cpuid_count(7, 0, &a7, &b7, &c7, &d7)) {
    f.avx2 = os_avx && Bit(b7, 5);
    f.avx512f = os_avx512 && Bit(b7, 16);
    f.avx512bw = os_avx512 && Bit(b7, 30);
    f.avx512vl = os_avx512 && Bit(b7, 31);
    f.avx512_vnni = os_avx512 && Bit(c7, 11);
    f.gfni = Bit(c7, 8);
    f.avx512_fp16 = os_avx512 && Bit(d7, 23);
    f.amx_bf16 = Bit(d7, 22);
    f.amx_tile = Bit(d7, 24);
    f.amx_int8 = Bit(d7, 25);
    unsigned a71 = 0, b71 = 0, c71 = 0, d71 = 0;
    if (a7 >= 1 && __get_cpuid_count(7, 1, &a71, &b71, &c71, &d71)) {
      f.avx_vnni = os_avx && Bit(a71, 4);
      f.avx512_bf16 = os_avx512 && Bit(a71, 5);
    }
  }
  return f;
}

// Linux's arch_prctl codes for dynamically enabled state (asm/prctl.h, 5.16 and later).
constexpr int kArchGetXcompSupp = 0x1021;
constexpr int kArchReqXcompPerm = 0x1023;
constexpr int kXfeatureXtiledata = 18;

// One of each tile operation the kernels would use, on zeroed tiles.
__attribute__((target("amx-tile,amx-int8,amx-bf16"))) void RunTiles() {
  alignas(64) unsigned char cfg[64] = {};
  cfg[0] = 1;  // palette 1: rows in bytes 48.., bytes per row (u16) in bytes 16..
  for (int t = 0; t < 3; ++t) {
    cfg[16 + 2 * t] = 64;
    cfg[48 + t] = 16;
  }
  // GCC 12 does not see that ldtilecfg reads `cfg` and drops the stores above without this.
  __asm__ volatile("" : : "r"(cfg) : "memory");
  _tile_loadconfig(cfg);
  _tile_zero(0);
  _tile_zero(1);
  _tile_zero(2);
  _tile_dpbssd(0, 1, 2);
  _tile_dpbf16ps(0, 1, 2);
  _tile_release();
}

AmxStatus Probe() {
  const CpuFeatures& f = GetCpuFeatures();
  if (!f.amx_tile || !f.amx_int8) return {false, "the CPU has no AMX-INT8"};
  unsigned long long supported = 0;
  if (syscall(SYS_arch_prctl, kArchGetXcompSupp, &supported) != 0) {
    return {false, std::string("arch_prctl(ARCH_GET_XCOMP_SUPP): ") + std::strerror(errno) +
                       " (kernel older than 5.16?)"};
  }
  if (!((supported >> kXfeatureXtiledata) & 1)) {
    return {false, "the kernel does not offer AMX tile data (XTILEDATA not in XCOMP_SUPP)"};
  }
  if (syscall(SYS_arch_prctl, kArchReqXcompPerm, kXfeatureXtiledata) != 0) {
    return {false,
            std::string("arch_prctl(ARCH_REQ_XCOMP_PERM, XTILEDATA): ") + std::strerror(errno)};
  }
  // Permission granted is no proof: run the instructions where a fault kills only a child.
  const pid_t pid = fork();
  if (pid < 0) return {false, std::string("fork: ") + std::strerror(errno)};
  if (pid == 0) {
    RunTiles();
    _exit(0);
  }
  int status = 0;
  while (waitpid(pid, &status, 0) < 0 && errno == EINTR) {
  }
  if (WIFSIGNALED(status)) {
    return {false, std::string("tile instructions died with signal ") +
                       std::to_string(WTERMSIG(status)) + " although the kernel granted them"};
  }
  if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) return {false, "tile probe failed"};
  return {true, "granted by arch_prctl; ldtilecfg, tdpbssd and tdpbf16ps ran"};
}
#else
CpuFeatures Detect() {
  CpuFeatures f;
  f.model = CpuinfoModelName();
  return f;
}
AmxStatus Probe() { return {false, "not an x86-64 CPU"}; }
#endif

}  // namespace

const CpuFeatures& GetCpuFeatures() {
  static const CpuFeatures f = Detect();
  return f;
}

std::string FeatureList(const CpuFeatures& f) {
  std::string s;
  auto add = [&](bool on, const char* name) {
    if (!on) return;
    if (!s.empty()) s += ' ';
    s += name;
  };
  add(f.sse4_2, "sse4.2");
  add(f.avx2, "avx2");
  add(f.fma, "fma");
  add(f.f16c, "f16c");
  add(f.avx_vnni, "avx-vnni");
  add(f.avx512f, "avx512f");
  add(f.avx512bw, "avx512bw");
  add(f.avx512vl, "avx512vl");
  add(f.avx512_vnni, "avx512-vnni");
  add(f.avx512_bf16, "avx512-bf16");
  add(f.avx512_fp16, "avx512-fp16");
  add(f.gfni, "gfni");
  add(f.amx_tile, "amx-tile");
  add(f.amx_int8, "amx-int8");
  add(f.amx_bf16, "amx-bf16");
  return s;
}

const AmxStatus& RequestAmx() {
  static const AmxStatus s = Probe();
  return s;
}

}  // namespace kinfer
