#!/usr/bin/env python3
"""Regenerate tests/fixtures/lora/: PEFT LoRA adapters for the tiny `llama` fixture model.

Two adapters with random, non-zero A and B (PEFT initializes B to zero; a zero B would test
nothing), saved by PEFT's own save_pretrained:

- adapter_a: r 4, lora_alpha 8, q/k/v/o projections;
- adapter_b: r 8, lora_alpha 16, rsLoRA, q/v/gate/up/down, rank_pattern {down_proj: 2} and
  alpha_pattern {v_proj: 4} (per-module ranks and scales).

References, for every position of the base fixture's sequences:
- logits.peft_<x>.f32: the PEFT model, adapters unmerged (transformers eager, float32);
- logits.merged_<x>.f32: the same after merge_and_unload();
- greedy tokens (argmax, no EOS stop) from a fixed prompt, base and each adapter;
- adapter_a.f32.gguf: adapter_a converted by llama.cpp's own convert_lora_to_gguf.py (from the
  llama-cpp-python sdist that bench/run.py builds llama.cpp from), given with --llama-cpp DIR
  (the sdist's vendor/llama.cpp). It stores alpha and A/B with the q/k rows permuted for arch
  llama, as llama.cpp reads them.

Run from the repo root with torch, transformers and peft installed (versions in reference.json):
    python3 tests/reference/make_lora_fixtures.py --llama-cpp /path/to/vendor/llama.cpp
Deterministic: fixed seeds, single-threaded float32 CPU.
"""

from __future__ import annotations

import argparse
import importlib.metadata
import json
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np
import torch
from peft import LoraConfig, PeftModel, get_peft_model
from transformers import AutoModelForCausalLM

ROOT = Path(__file__).resolve().parent.parent.parent
BASE = ROOT / "tests" / "fixtures" / "models" / "llama"
OUT = ROOT / "tests" / "fixtures" / "lora"

ADAPTERS = {
    "adapter_a": dict(r=4, lora_alpha=8, target_modules=["q_proj", "k_proj", "v_proj", "o_proj"]),
    "adapter_b": dict(
        r=8,
        lora_alpha=16,
        use_rslora=True,
        target_modules=["q_proj", "v_proj", "gate_proj", "up_proj", "down_proj"],
        rank_pattern={"down_proj": 2},
        alpha_pattern={"v_proj": 4},
    ),
}
PROMPT = [1, 17, 42, 5, 88, 23, 64]
# The real stories260K (../shared), for the server tests: two adapters, one also as GGUF.
STORIES = ROOT.parent / "shared" / "models" / "stories260K" / "hf"
STORIES_ADAPTERS = {
    "stories_a": dict(r=8, lora_alpha=16, target_modules=["q_proj", "k_proj", "v_proj", "o_proj"]),
    "stories_b": dict(r=4, lora_alpha=4, target_modules=["gate_proj", "up_proj", "down_proj"]),
}
STORIES_PROMPT = [1, 403, 407, 261, 378]  # "Once upon a time"
STORIES_STEPS = 16
GREEDY_STEPS = 12


def base_model(path=BASE / "hf"):
    m = AutoModelForCausalLM.from_pretrained(path, torch_dtype=torch.float32,
                                             attn_implementation="eager")
    return m.eval()


def all_logits(model, sequences):
    out = []
    with torch.no_grad():
        for seq in sequences:
            ids = torch.tensor([seq], dtype=torch.long)
            out.append(model(input_ids=ids).logits[0].float().numpy())
    return np.concatenate(out, axis=0).astype("<f4")


def greedy(model, prompt, steps):
    ids = list(prompt)
    with torch.no_grad():
        for _ in range(steps):
            logits = model(input_ids=torch.tensor([ids], dtype=torch.long)).logits[0, -1]
            ids.append(int(torch.argmax(logits)))
    return ids[len(prompt):]


def make_adapter(name, seed, base=BASE / "hf", config=None, std=0.3):
    model = base_model(base)
    cfg = LoraConfig(task_type="CAUSAL_LM", lora_dropout=0.0, init_lora_weights=False,
                     **(config or ADAPTERS[name]))
    peft_model = get_peft_model(model, cfg)
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for pname, p in peft_model.named_parameters():
            if "lora_A" in pname or "lora_B" in pname:
                p.copy_(torch.randn(p.shape, generator=gen) * std)
    peft_model.eval()
    return peft_model


def save(peft_model, name, base_name):
    peft_model.save_pretrained(OUT / name)
    (OUT / name / "README.md").unlink()  # PEFT's model card template: nothing to test
    # The base's path in the repository, not on this machine.
    cfg_path = OUT / name / "adapter_config.json"
    cfg = json.loads(cfg_path.read_text())
    cfg["base_model_name_or_path"] = base_name
    cfg_path.write_text(json.dumps(cfg, indent=2, sort_keys=True) + "\n")


def convert_to_gguf(llama_cpp, base, adapter, out):
    with tempfile.TemporaryDirectory() as tmp:
        gguf_out = Path(tmp) / "out.gguf"
        env_path = f"{llama_cpp / 'gguf-py'}:{llama_cpp}"
        subprocess.run([sys.executable, str(llama_cpp / "convert_lora_to_gguf.py"),
                        "--base", str(base), "--outtype", "f32", "--outfile", str(gguf_out),
                        str(adapter)], check=True,
                       env={"PYTHONPATH": env_path, "PATH": "/usr/bin:/bin"})
        shutil.copy(gguf_out, out)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--llama-cpp", type=Path, required=True,
                    help="llama.cpp source tree (vendor/llama.cpp of the llama-cpp-python sdist)")
    args = ap.parse_args()
    torch.manual_seed(0)
    torch.set_num_threads(1)
    ref = json.loads((BASE / "reference.json").read_text())
    sequences = ref["sequences"]
    if OUT.exists():
        shutil.rmtree(OUT)
    OUT.mkdir(parents=True)

    out = {
        "base": "tests/fixtures/models/llama",
        "sequences": sequences,
        "prompt": PROMPT,
        "greedy_steps": GREEDY_STEPS,
        "greedy": {"base": greedy(base_model(), PROMPT, GREEDY_STEPS)},
        "adapters": {},
        "packages": {p: importlib.metadata.version(p) for p in ("torch", "transformers", "peft")},
    }
    base_logits = all_logits(base_model(), sequences)
    for i, name in enumerate(ADAPTERS):
        peft_model = make_adapter(name, 1000 + i)
        save(peft_model, name, "tests/fixtures/models/llama/hf")
        # Reload from disk as a user would, so the references are of the saved files.
        loaded = PeftModel.from_pretrained(base_model(), OUT / name).eval()
        unmerged = all_logits(loaded, sequences)
        tokens = greedy(loaded, PROMPT, GREEDY_STEPS)
        merged_model = loaded.merge_and_unload().eval()
        merged = all_logits(merged_model, sequences)
        assert greedy(merged_model, PROMPT, GREEDY_STEPS) == tokens
        unmerged.tofile(OUT / f"logits.peft_{name}.f32")
        merged.tofile(OUT / f"logits.merged_{name}.f32")
        out["adapters"][name] = {
            "config": ADAPTERS[name],
            "logits_peft": f"logits.peft_{name}.f32",
            "logits_merged": f"logits.merged_{name}.f32",
            "greedy": tokens,
            # How far the adapter moves the logits, and how far merging moves them: the first
            # must be large (the test can see a wrong adapter), the second tiny (F32 rounding).
            "max_abs_change_from_base": float(np.max(np.abs(unmerged - base_logits))),
            "max_abs_merged_vs_unmerged": float(np.max(np.abs(merged - unmerged))),
        }
        print(name, out["adapters"][name]["max_abs_change_from_base"],
              out["adapters"][name]["max_abs_merged_vs_unmerged"])

    # adapter_a as GGUF, by llama.cpp's converter.
    convert_to_gguf(args.llama_cpp, BASE / "hf", OUT / "adapter_a", OUT / "adapter_a.f32.gguf")
    out["adapters"]["adapter_a"]["gguf"] = "adapter_a.f32.gguf"
    # stories260K: greedy tokens of the base and each adapter (the server tests' reference).
    out["stories"] = {"base": "../shared/models/stories260K", "prompt": STORIES_PROMPT,
                      "steps": STORIES_STEPS,
                      "greedy": {"base": greedy(base_model(STORIES), STORIES_PROMPT, STORIES_STEPS)},
                      "adapters": {}}
    for i, (name, config) in enumerate(STORIES_ADAPTERS.items()):
        peft_model = make_adapter(name, 2000 + i, STORIES, config, std=0.15)
        save(peft_model, name, "../shared/models/stories260K/hf")
        loaded = PeftModel.from_pretrained(base_model(STORIES), OUT / name).eval()
        out["stories"]["adapters"][name] = {"config": config,
                                            "greedy": greedy(loaded, STORIES_PROMPT, STORIES_STEPS)}
        print(name, out["stories"]["adapters"][name]["greedy"], out["stories"]["greedy"]["base"])
    convert_to_gguf(args.llama_cpp, STORIES, OUT / "stories_a", OUT / "stories_a.f32.gguf")
    out["stories"]["adapters"]["stories_a"]["gguf"] = "stories_a.f32.gguf"
    out["llama_cpp_converter"] = str(args.llama_cpp.resolve().parent.parent.name)
    (OUT / "reference.json").write_text(json.dumps(out, indent=1) + "\n")


if __name__ == "__main__":
    main()
