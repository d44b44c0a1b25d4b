"""Drives `kinfer tokenize --jsonl` and `kinfer chat-template` from the tests."""

import base64
import json
import subprocess


def tokenize_batch(kinfer, path, requests, timeout=300):
    """Sends `requests` (dicts) to one `kinfer tokenize --jsonl` process; returns its answers."""
    lines = []
    for r in requests:
        if "bytes" in r:
            r = dict(r)
            r["b64"] = base64.b64encode(r.pop("bytes")).decode("ascii")
        lines.append(json.dumps(r, ensure_ascii=False))
    proc = subprocess.run([kinfer, "tokenize", "--tokenizer", str(path), "--jsonl"],
                          input=("\n".join(lines) + "\n").encode("utf-8"), capture_output=True,
                          timeout=timeout)
    if proc.returncode != 0:
        raise AssertionError(f"kinfer tokenize failed ({proc.returncode}): "
                             f"{proc.stderr.decode(errors='replace')}")
    out = [json.loads(line) for line in proc.stdout.decode("utf-8").split("\n") if line]
    assert len(out) == len(requests), f"{len(out)} answers for {len(requests)} requests"
    for o in out:
        assert "error" not in o, o["error"]
    return out


def mismatch_report(mismatches, limit=8):
    return "\n".join(repr(m)[:600] for m in mismatches[:limit]) + (
        f"\n... and {len(mismatches) - limit} more" if len(mismatches) > limit else "")
