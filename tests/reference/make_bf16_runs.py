#!/usr/bin/env python3
"""Measure how far transformers' own BF16 run is from its F32 run, on every fixture model and
format in tests/fixtures/models, and record it in each reference.json as "bf16_run_error".

Issue 17's precision rule: a faster kernel path that rounds activations (bf16 on AMX tiles,
8-bit activations for the quantized types) may deviate from the F32 reference logits by at most
what transformers itself deviates when it runs the same weights in bfloat16. The unit tests
(tests/unit/model/reference_test.cc) hold Kinfer's fast path to this number, and its exact path
to the F32 tolerance.

For each logits entry of a fixture: the same model the F32 reference came from (the HF
checkpoint, or the values a GGUF stores, read back as make_model_fixtures.py does), run once in
float32 (checked against the stored reference) and once after model.to(torch.bfloat16); the
error is max |bf16 logits - f32 reference| / max |f32 reference|, as the tests scale theirs,
over the positions the tests compare on a rounding path (for mixture-of-experts fixtures, those
before the first router near-tie that reference.json records for the format).

Run from the repo root with torch and transformers installed:
  python3 tests/reference/make_bf16_runs.py                 # every fixture
  python3 tests/reference/make_bf16_runs.py gemma3 mixtral  # only the named ones
Deterministic: single-threaded CPU.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np
import torch

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

import gguf_convert  # noqa: E402
import make_model_fixtures as fx  # noqa: E402
from transformers import AutoConfig, AutoModelForCausalLM  # noqa: E402


def config_for(mdir: Path, name: str):
    if (mdir / "hf" / "config.json").is_file():
        return AutoConfig.from_pretrained(mdir / "hf")
    spec = next(m for m in fx.MODELS if m["name"] == name)
    return fx.make_config(spec)


def compared_rows(seqs: list[list[int]], near_ties: list[list[int]]) -> np.ndarray:
    """Rows of the concatenated logits that the tests compare: every position of a sequence
    before its first router near-tie (make_model_fixtures.router_near_ties). From there on a run
    that rounds activations (bf16 here, 8-bit in the engine) may route to another expert, and
    the tests skip those positions on such a path; measuring the bf16 run there would make the
    bound the difference between two routings (0.12 on qwen3moe q8_0) rather than rounding."""
    cut = [len(s) for s in seqs]
    for si, pos in near_ties:
        cut[si] = min(cut[si], pos)
    rows, offset = [], 0
    for s, n in zip(seqs, cut):
        rows.extend(range(offset, offset + n))
        offset += len(s)
    return np.array(rows, dtype=np.int64)


def main() -> int:
    torch.set_num_threads(1)
    torch.use_deterministic_algorithms(True)
    only = set(sys.argv[1:])
    for ref_path in sorted(fx.OUT.glob("*/reference.json")):
        mdir = ref_path.parent
        if only and mdir.name not in only:
            continue
        ref = json.loads(ref_path.read_text())
        name = ref["name"]
        cfg = config_for(mdir, name)
        seqs = ref["sequences"]
        errors = {}
        for fmt, logits_file in ref["logits"].items():
            want = np.fromfile(mdir / logits_file, dtype="<f4").reshape(-1, cfg.vocab_size)
            if fmt == "hf":
                model = AutoModelForCausalLM.from_pretrained(
                    mdir / "hf", dtype=torch.float32, attn_implementation="eager")
                model.eval()
            else:
                sd = gguf_convert.read_gguf_as_hf_state_dict(mdir / ref["gguf_files"][fmt],
                                                             cfg.to_dict())
                model = fx.model_from_state_dict(cfg, sd)
            f32 = fx.run_logits(model, seqs)
            check = fx.rel_max_err(f32, want)
            assert check < 1e-5, f"{name} {fmt}: f32 rerun differs from the reference by {check}"
            bf16 = fx.run_logits(model.to(torch.bfloat16), seqs)
            rows = compared_rows(seqs, ref.get("router_near_ties", {}).get(fmt, []))
            errors[fmt] = float(f"{fx.rel_max_err(bf16[rows], want[rows]):.6g}")
            fx.log(f"{name} {fmt}: transformers bf16 run vs f32 reference {errors[fmt]:.4g} "
                   f"(f32 rerun {check:.2g})")
        ref["bf16_run_error"] = errors
        ref_path.write_text(fx.dump_json(ref))
    return 0


if __name__ == "__main__":
    sys.exit(main())
