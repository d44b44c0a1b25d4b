#!/usr/bin/env bash
# runc, for the full cluster's containerd, with each container's oom_score_adj clamped to
# 0 or above. The kubelet asks for -998 on pod sandboxes (and -997 for Guaranteed pods); lowering
# oom_score_adj needs CAP_SYS_RESOURCE, which these machines do not grant even to root, and runc
# then fails with "can't get final child's PID from pipe: EOF". Everything else passes through.
set -euo pipefail
bundle=""
args=("$@")
for ((i = 0; i < ${#args[@]}; i++)); do
  case ${args[i]} in
    --bundle | -b) bundle=${args[i + 1]:-} ;;
    --bundle=*) bundle=${args[i]#--bundle=} ;;
  esac
done
if [[ -n $bundle && -f $bundle/config.json ]]; then
  python3 - "$bundle/config.json" <<'PY'
import json, sys
path = sys.argv[1]
with open(path) as f:
    spec = json.load(f)
proc = spec.get("process") or {}
if proc.get("oomScoreAdj", 0) < 0:
    proc["oomScoreAdj"] = 0
    with open(path, "w") as f:
        json.dump(spec, f)
PY
fi
exec runc "$@"
