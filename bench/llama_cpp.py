#!/usr/bin/env python3
"""Builds llama.cpp (the peer Kinfer is measured against) so that it runs on this machine.

One shared builder for everyone who needs llama.cpp's tools (the benchmark, fixture makers):

  python3 bench/llama_cpp.py                       # build, print {"bin_dir": ..., ...} as JSON
  python3 bench/llama_cpp.py --target llama-cli    # also build another llama.cpp target
  python3 bench/llama_cpp.py --amx off             # native minus AMX even where AMX is granted

It takes ~/.cache/kinfer/llama.cpp.lock itself (do not wrap it in `flock` on that file: the
lock is not re-entrant across processes, it would wait on itself). From Python:
`llama_cpp.locked_build(version, jobs)`, or `llama_cpp.build(...)` when the caller holds the lock.

What it does:
  1. takes llama.cpp from the llama-cpp-python source distribution on PyPI (pinned VERSION),
     unpacked once into ~/.cache/kinfer/llama.cpp-<version>/src;
  2. probes this CPU and kernel (bench/cpu_probe.cc, compiled with src/core/cpu_features.cc):
     the usable extensions and whether AMX tiles may be used (the kernel must grant them to the
     process, arch_prctl(ARCH_REQ_XCOMP_PERM); the probe then runs tile instructions for real);
  3. builds with GGML_NATIVE (-march=native), minus AMX (-mno-amx-tile -mno-amx-int8
     -mno-amx-bf16) where the CPU advertises AMX but a process may not use it: llama.cpp's AMX
     kernels would otherwise die with SIGILL on Q4_0/Q4_1/Q8_0 models; where AMX is usable and
     the compiler is GCC < 13, with clang (GCC 12 drops the stores into llama.cpp's tile config:
     SIGILL/SIGSEGV in its AMX matmul); `--amx off` forces the minus-AMX build;
  4. into ~/.cache/kinfer/llama.cpp-<version>/build-<variant>-<cpu key>: a native build only
     runs on the CPU it was made for, so each CPU (model and usable extensions) gets its own
     build directory, and a build made on another machine's CPU is never reused.
"""
import argparse
import fcntl
import hashlib
import json
import os
import shutil
import subprocess
import sys
import tarfile
import time

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
CACHE = os.path.expanduser(os.environ.get("KINFER_BENCH_CACHE", "~/.cache/kinfer"))
VERSION = "0.3.36"
LOCK = os.path.join(CACHE, "llama.cpp.lock")
DEFAULT_TARGETS = ["llama-bench", "llama-server", "llama-quantize"]
NO_AMX = "-mno-amx-tile -mno-amx-int8 -mno-amx-bf16"


def log(msg):
    print(f"[llama.cpp {time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


def run(cmd, **kw):
    log("$ " + " ".join(cmd))
    return subprocess.run(cmd, check=True, **kw)


def probe_cpu():
    """{"cpu", "features", "amx_usable", "amx_detail"} for this machine, from bench/cpu_probe.cc."""
    srcs = [os.path.join(REPO, "bench/cpu_probe.cc"), os.path.join(REPO, "src/core/cpu_features.cc"),
            os.path.join(REPO, "src/core/cpu_features.h")]
    h = hashlib.sha256()
    for p in srcs:
        with open(p, "rb") as f:
            h.update(f.read())
    exe = os.path.join(CACHE, "cpu-probe", h.hexdigest()[:16])
    if not os.path.exists(exe):
        os.makedirs(os.path.dirname(exe), exist_ok=True)
        tmp = f"{exe}.{os.getpid()}.tmp"
        subprocess.run(["g++", "-std=c++20", "-O1", "-I" + os.path.join(REPO, "src"), srcs[0],
                        srcs[1], "-o", tmp], check=True)
        os.replace(tmp, exe)
    return json.loads(subprocess.run([exe], check=True, capture_output=True, text=True).stdout)


def gcc_drops_tile_config():
    """True where the default C++ compiler is GCC < 13. GCC 12's amxtileintrin.h declares that
    _tile_loadconfig reads 8 bytes ("m" (*(const void **)cfg)), so at -O2/-O3 it drops the
    stores of the rows/colsb fields into a local config as dead: llama.cpp's
    ggml_tile_config_init then loads palette 1 with zero or stale shapes and its AMX matmul
    (ggml_backend_amx_mul_mat: Q4_0/Q4_1/Q8_0/Q4_K/Q5_K/Q6_K prefill) dies at its first tile
    instruction: SIGILL (tilezero on an unconfigured tile) or SIGSEGV si_code=SI_KERNEL (#GP
    from ldtilecfg on garbage). Kinfer's own tile code works around it (matmul_amx.cc)."""
    cxx = shutil.which(os.environ.get("CXX", "c++"))
    if not cxx:
        return False
    r = subprocess.run([cxx, "-dumpfullversion", "-dumpversion"], capture_output=True, text=True)
    v = subprocess.run([cxx, "--version"], capture_output=True, text=True).stdout
    if "clang" in v or r.returncode != 0:
        return False
    try:
        return int(r.stdout.strip().split(".")[0]) < 13
    except ValueError:
        return False


def plan(cpu, amx="auto"):
    """(variant, extra cmake arguments, description of llama.cpp's SIMD target).

    amx="off" builds native minus AMX even where the kernel grants it (a fallback, e.g. for a
    machine where AMX misbehaves); "auto" uses AMX where the kernel grants it, built with clang
    where the default compiler is GCC < 13 (see gcc_drops_tile_config)."""
    feats = set(cpu["features"].split())
    isa = ", ".join(x for x in ["avx2", "avx512f", "avx512-vnni", "avx512-bf16", "avx512-fp16"]
                    if x in feats) or "no AVX2"
    no_amx = ("native-noamx", [f"-DCMAKE_C_FLAGS={NO_AMX}", f"-DCMAKE_CXX_FLAGS={NO_AMX}"])
    if "amx-tile" in feats and amx == "off":
        return no_amx + (f"GGML_NATIVE -march=native ({isa}) {NO_AMX}: AMX "
                         f"{'usable' if cpu['amx_usable'] else 'not usable'}, turned off (--amx off)",)
    if "amx-tile" in feats and not cpu["amx_usable"]:
        return no_amx + (f"GGML_NATIVE -march=native ({isa}) {NO_AMX}: AMX advertised but not "
                         f"usable ({cpu['amx_detail']})",)
    if "amx-tile" in feats:
        simd = (f"GGML_NATIVE -march=native ({isa}, AMX-INT8/BF16: its AMX kernels run "
                f"Q4_0/Q4_1/Q8_0/Q4_K/Q5_K/Q6_K matmuls of more than one token)")
        if gcc_drops_tile_config():
            if shutil.which("clang") and shutil.which("clang++"):
                return ("native-clang", ["-DCMAKE_C_COMPILER=clang", "-DCMAKE_CXX_COMPILER=clang++"],
                        simd + ", built with clang: GCC < 13 drops its AMX tile config")
            return no_amx + (f"GGML_NATIVE -march=native ({isa}) {NO_AMX}: AMX usable, but GCC "
                             f"< 13 would miscompile llama.cpp's tile config and no clang",)
        return "native", [], simd
    return "native", [], f"GGML_NATIVE -march=native ({isa})"


def source(version):
    """The unpacked llama.cpp tree of llama-cpp-python==version (downloaded once)."""
    root = os.path.join(CACHE, f"llama.cpp-{version}")
    src = os.path.join(root, "src")
    if os.path.exists(os.path.join(src, "CMakeLists.txt")):
        return src
    sdist_dir = os.path.join(CACHE, "sdist")
    os.makedirs(sdist_dir, exist_ok=True)
    tgz = os.path.join(sdist_dir, f"llama_cpp_python-{version}.tar.gz")
    if not os.path.exists(tgz):
        run([sys.executable, "-m", "pip", "download", "--quiet", "--no-deps", "--no-binary",
             ":all:", "-d", sdist_dir, f"llama-cpp-python=={version}"])
    log(f"unpacking llama.cpp from {tgz}")
    tmp = os.path.join(root, f"unpack.{os.getpid()}")
    shutil.rmtree(tmp, ignore_errors=True)
    with tarfile.open(tgz) as t:
        t.extractall(tmp)
    shutil.move(os.path.join(tmp, f"llama_cpp_python-{version}", "vendor", "llama.cpp"), src)
    shutil.rmtree(tmp)
    return src


def build(version=VERSION, jobs=2, targets=(), cpu=None, amx="auto"):
    """Builds the targets (DEFAULT_TARGETS and `targets`) unless built; the caller holds LOCK.
    Returns {"bin_dir", "variant", "simd", "cpu"}."""
    cpu = cpu or probe_cpu()
    variant, cmake_args, simd = plan(cpu, amx)
    key = hashlib.sha256(f"{cpu['cpu']}|{cpu['features']}|{cpu['amx_usable']}".encode()).hexdigest()
    build_dir = os.path.join(CACHE, f"llama.cpp-{version}", f"build-{variant}-{key[:8]}")
    bin_dir = os.path.join(build_dir, "bin")
    want = list(dict.fromkeys(DEFAULT_TARGETS + list(targets)))
    stamp = os.path.join(build_dir, "kinfer-build.json")
    done = {}
    if os.path.exists(stamp):
        with open(stamp) as f:
            done = json.load(f)
    if not (set(want) <= set(done.get("targets", [])) and
            all(os.path.exists(os.path.join(bin_dir, t)) for t in want)):
        src = source(version)
        log(f"building {', '.join(want)} for {cpu['cpu']}: {simd}")
        run(["cmake", "-S", src, "-B", build_dir, "-G", "Ninja", "-DCMAKE_BUILD_TYPE=Release",
             "-DGGML_NATIVE=ON", "-DLLAMA_BUILD_TESTS=OFF", "-DLLAMA_BUILD_EXAMPLES=OFF",
             "-DLLAMA_BUILD_UI=OFF", "-DLLAMA_USE_PREBUILT_UI=OFF", "-DLLAMA_OPENSSL=OFF",
             "-DLLAMA_CURL=OFF", "-DLLAMA_BUILD_APP=OFF",
             f"-DCMAKE_RUNTIME_OUTPUT_DIRECTORY={bin_dir}"] + cmake_args,
            stdout=subprocess.DEVNULL)
        run(["nice", "-n", "5", "cmake", "--build", build_dir, f"-j{jobs}", "--target"] + want,
            stdout=subprocess.DEVNULL)
        with open(stamp, "w") as f:
            json.dump({"targets": want, "variant": variant, "simd": simd, "cpu": cpu}, f)
    return {"bin_dir": bin_dir, "variant": variant, "simd": simd, "cpu": cpu}


def locked_build(version=VERSION, jobs=2, targets=(), amx="auto"):
    """build() under ~/.cache/kinfer/llama.cpp.lock, shared with everyone who builds llama.cpp."""
    os.makedirs(CACHE, exist_ok=True)
    with open(LOCK, "a") as lock:
        try:
            fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            log(f"waiting for {LOCK} (another llama.cpp build)")
            fcntl.flock(lock, fcntl.LOCK_EX)
        return build(version, jobs, targets, amx=amx)


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--version", default=VERSION, help="llama-cpp-python sdist version")
    ap.add_argument("--jobs", type=int, default=2)
    ap.add_argument("--target", action="append", default=[], help="another llama.cpp target")
    ap.add_argument("--amx", choices=["auto", "off"], default="auto",
                    help="auto: use AMX where the kernel grants it; off: native minus AMX")
    args = ap.parse_args()
    print(json.dumps(locked_build(args.version, args.jobs, args.target, args.amx)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
