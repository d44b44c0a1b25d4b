#!/usr/bin/env bash
# Builds the kinfer container image with buildah from deploy/docker/Dockerfile, with no registry:
# the build stage's base is a Debian bookworm root made once by debootstrap (packages in
# build-base.packages) and imported as localhost/kinfer-build-base:<key>, the key changing with
# the package list and the month (so security updates arrive monthly). The C++ build inside uses
# the host's ccache, mounted in.
#
#   deploy/docker/build.sh            # build localhost/kinfer:<version> (and :dev)
#   deploy/docker/build.sh --smoke    # build, then run it once: --version, and a short
#                                     # `kinfer serve` on the tiny model answering /ready
#   deploy/docker/build.sh --base     # only make sure the build base exists (run.sh starts
#                                     # this early, beside the Go builds)
#   deploy/docker/build.sh --cuda     # the CUDA variant, localhost/kinfer:<version>-cuda (the
#                                     # chart's image when gpu > 0); add --smoke to run it
#                                     # (on the CPU: a machine without a GPU still serves)
#
# Env: KINFER_IMAGE (default localhost/kinfer), KINFER_CACHE, CCACHE_DIR, KINFER_DEBIAN_MIRROR,
# KINFER_SMOKE_MODEL (default ../shared/models/stories260K/stories260K.gguf).
set -euo pipefail
cd "$(dirname "$0")/../.."
ROOT=$PWD
CACHE="${KINFER_CACHE:-$HOME/.cache/kinfer}"
IMAGE="${KINFER_IMAGE:-localhost/kinfer}"
VERSION="$(sed -n 's/^project(kinfer VERSION \([0-9.]*\).*/\1/p' CMakeLists.txt)"
SUITE=bookworm
MIRROR="${KINFER_DEBIAN_MIRROR:-http://deb.debian.org/debian}"
mapfile -t PACKAGES < <(grep -v '^#' deploy/docker/build-base.packages | grep -v '^$')
KEY="$({ echo "$SUITE"; printf '%s\n' "${PACKAGES[@]}"; date -u +%Y-%m; } | sha256sum | cut -c1-12)"
BASE="localhost/kinfer-build-base:$KEY"

say() { printf '\033[1m[image]\033[0m %s\n' "$*" >&2; }

need() {
  local missing=() p
  for p in buildah podman debootstrap runc; do command -v "$p" >/dev/null || missing+=("$p"); done
  if ((${#missing[@]})); then
    say "installing ${missing[*]} (Debian packages)"
    apt-get update -q >/dev/null
    DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends \
      buildah podman debootstrap runc uidmap >/dev/null
  fi
}

ensure_base() {
  if podman image exists "$BASE"; then
    say "build base $BASE is cached"
    return
  fi
  local start=$SECONDS tmp
  say "making the build base: debootstrap $SUITE + ${#PACKAGES[@]} packages (once per package list and month)"
  mkdir -p "$CACHE/image"
  tmp="$(mktemp -d "$CACHE/image/rootfs.XXXXXX")"
  debootstrap --variant=minbase --include="$(IFS=,; echo "${PACKAGES[*]}")" "$SUITE" "$tmp/rootfs" \
    "$MIRROR" >"$tmp/debootstrap.log" 2>&1 || {
    tail -n 20 "$tmp/debootstrap.log" >&2
    rm -rf "$tmp"
    return 1
  }
  rm -rf "$tmp"/rootfs/var/cache/apt/archives/*.deb "$tmp"/rootfs/var/lib/apt/lists/*
  tar -C "$tmp/rootfs" -c . | podman import -q \
    --change 'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' \
    --change "LABEL kinfer.dev/build-base-key=$KEY" - "$BASE" >/dev/null
  rm -rf "$tmp"
  say "build base ready in $((SECONDS - start))s"
}

build() {
  local start=$SECONDS ccache_dir="${CCACHE_DIR:-$CACHE/ccache}" variant=()
  mkdir -p "$ccache_dir"
  if [[ $CUDA == 1 ]]; then
    # The pinned toolchain at the path the cuda preset names, read-only.
    scripts/cuda_toolchain.sh >/dev/null
    variant=(--build-arg PRESET=cuda -v "$HOME/.cache/kinfer/cuda:/root/.cache/kinfer/cuda:ro")
  fi
  # llguidance, built here by cargo from third_party/llguidance's Cargo.lock (a freshness check
  # when the release build already made it), mounted read-only into the build stage.
  local llg_target="${KINFER_CARGO_TARGET_DIR:-$CACHE/cargo-target}"
  PATH="$HOME/.cargo/bin:$PATH" cargo build --release --locked --quiet \
    --manifest-path third_party/llguidance/Cargo.toml --target-dir "$llg_target"
  variant+=(-v "$llg_target/release:/llguidance:ro")
  say "buildah bud -f deploy/docker/Dockerfile -> $IMAGE:$TAG"
  buildah bud --quiet --isolation "${KINFER_BUILDAH_ISOLATION:-chroot}" -f deploy/docker/Dockerfile \
    --build-arg "BUILD_BASE=$BASE" --build-arg "SRC_DIR=$ROOT" -v "$ccache_dir:/ccache" \
    "${variant[@]}" --label "org.opencontainers.image.version=$VERSION" \
    -t "$IMAGE:$TAG" -t "$IMAGE:dev$SUFFIX" . >"$CACHE/image/build.log" 2>&1 || {
    tail -n 40 "$CACHE/image/build.log" >&2
    return 1
  }
  # The build stage and the image this one replaced are left untagged; on a machine that builds
  # every test run they pile up by the gigabyte.
  podman image prune -f >/dev/null || true
  grep -E "^\s*(Hits|Misses):" "$CACHE/image/build.log" | sed 's/^ */  ccache /' >&2 || true
  local size
  size="$(podman image inspect --format '{{.Size}}' "$IMAGE:$TAG")"
  say "built $IMAGE:$TAG in $((SECONDS - start))s: $((size / 1024 / 1024)) MiB ($size bytes)"
}

free_port() {
  python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'
}

# As the chart runs it: non-root, read-only root, no capabilities, no privilege escalation.
RUN=(podman run --runtime runc --read-only --user 65532:65532 --cap-drop ALL
  --security-opt no-new-privileges --ulimit nofile=1024:1024 --ulimit nproc=1024:1024
  --network host)

smoke() {
  local out
  out="$("${RUN[@]}" --rm "$IMAGE:$TAG" --version)"
  [[ $out == "kinfer $VERSION" ]] || { say "error: kinfer --version printed '$out'"; return 1; }
  say "smoke: kinfer --version -> $out"
  "${RUN[@]}" --rm "$IMAGE:$TAG" pull --help >/dev/null
  say "smoke: kinfer pull --help runs"

  local model="${KINFER_SMOKE_MODEL:-${KINFER_SHARED_DIR:-$ROOT/../shared}/models/stories260K/stories260K.gguf}"
  [[ -f $model ]] || { say "error: smoke-test model $model not found"; return 1; }
  local port name="kinfer-smoke-$$" code
  port="$(free_port)"
  "${RUN[@]}" -d --name "$name" -v "$(dirname "$model"):/models:ro" "$IMAGE:$TAG" \
    serve --model "/models/$(basename "$model")" --served-model-name tiny --host 127.0.0.1 \
    --port "$port" >/dev/null
  local deadline=$((SECONDS + 60))
  until [[ $(curl -s -o /dev/null -w '%{http_code}' "http://127.0.0.1:$port/ready") == 200 ]]; do
    if ((SECONDS > deadline)) || [[ $(podman inspect -f '{{.State.Running}}' "$name") != true ]]; then
      say "error: kinfer serve in the image did not answer /ready with 200 within 60s; its log:"
      podman logs "$name" >&2 || true
      podman rm -f "$name" >/dev/null || true
      return 1
    fi
    sleep 0.5
  done
  say "smoke: kinfer serve answers /ready on port $port"
  podman stop -t 40 "$name" >/dev/null
  code="$(podman inspect -f '{{.State.ExitCode}}' "$name")"
  podman rm "$name" >/dev/null
  [[ $code == 0 ]] || { say "error: kinfer serve exited $code after SIGTERM, want 0"; return 1; }
  say "smoke: SIGTERM -> exit 0"
}

CUDA=0 SUFFIX="" SMOKE=0
for arg in "$@"; do
  case $arg in
    --cuda) CUDA=1 SUFFIX=-cuda ;;
    --smoke) SMOKE=1 ;;
    --base) ;;
    *) say "unknown option $arg"; exit 2 ;;
  esac
done
TAG="$VERSION$SUFFIX"
need
ensure_base
[[ " $* " == *" --base "* ]] && exit 0
build
if ((SMOKE)); then
  smoke
fi
