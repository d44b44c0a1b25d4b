#!/usr/bin/env python3
"""Encode speed: kinfer vs Hugging Face `tokenizers`, one thread each, same ~1 MB text.

The text is generated here (no downloads): English prose, Chinese, Japanese, Russian, code,
emoji and numbers, interleaved in paragraphs. For the Llama-3 and Qwen3 tokenizers in
../shared/tokenizers, prints each side's median encode time and the ratio HF time / kinfer time
(> 1.0 means kinfer is faster), after checking that both produce the same ids. Two shapes: the
whole text as one input, and each line as its own input (HF: encode_batch on one thread).

    python3 bench/tokenizer_bench.py [--mb 1.0] [--repeat 7]
"""

import argparse
import json
import os
import pathlib
import random
import statistics
import subprocess
import sys
import tempfile
import time

os.environ["RAYON_NUM_THREADS"] = "1"
os.environ["TOKENIZERS_PARALLELISM"] = "false"

from tokenizers import Tokenizer  # noqa: E402  (after the thread settings)

ROOT = pathlib.Path(__file__).resolve().parents[1]
SHARED = pathlib.Path(os.environ.get("KINFER_SHARED_DIR", ROOT.parent / "shared"))

EN = ("the of and to in is that it was for on are with as his they be at one have this from or "
      "had by word but what some we can out other were all there when up use your how said an "
      "each she which do their time if will way about many then them write would like so these "
      "her long make thing see him two has look more day could go come did number sound no most "
      "people my over know water than call first who may down side been now find tokenizer "
      "inference server kubernetes throughput latency").split()
RU = ("и в не на я быть он с что а по это она этот к но они мы как из у который то за свой весь "
      "год от так о для ты же все тот мочь вы человек такой его сказать только или еще бы себя "
      "один как уже до время если сам когда другой вот говорить наш мой знать стать при чтобы "
      "дело жизнь кто первый очень два день её новый рука даже во со раз где там под можно").split()
ZH = "的一是不了人我在有他这为之大来以个中上们到说国和地也子时道出而要于就下得可你年生自会那后能对着事其里所去行过家十用发天如然作方成者多日都三小军二无同么经法当起与好看学进种将还分此心前面又定见只主没公从"
JA = "日本語のテキストはひらがなとカタカナと漢字を混ぜて書きます。東京は大きな都市です。"
CODE = [
    "def encode(self, text: str) -> list[int]:\n    return [self.vocab[t] for t in text.split()]\n",
    "for (size_t i = 0; i < n; ++i) {\n    out[i] = std::max(0.0f, in[i]);\n}\n",
    "SELECT id, name FROM users WHERE created_at > '2024-01-01' ORDER BY id;\n",
    "{\"model\": \"llama\", \"max_tokens\": 128, \"temperature\": 0.7, \"stream\": true}\n",
    "if err != nil {\n\treturn fmt.Errorf(\"open %s: %w\", path, err)\n}\n",
]
EMOJI = ["🙂", "🚀", "👍🏽", "👨‍👩‍👧", "🇫🇷", "❤️", "🦙", "✨"]


def generate_text(target_bytes, seed=2024):
    rng = random.Random(seed)
    parts, size = [], 0
    while size < target_bytes:
        kind = rng.random()
        if kind < 0.45:
            words = [rng.choice(EN) for _ in range(rng.randint(20, 80))]
            words[0] = words[0].capitalize()
            p = " ".join(words) + ". "
            if rng.random() < 0.5:
                p += f"It costs ${rng.randint(1, 99999)}.{rng.randint(0, 99):02d} in {rng.randint(1900, 2030)}. "
        elif kind < 0.6:
            p = "".join(rng.choice(ZH) for _ in range(rng.randint(30, 120))) + "。"
        elif kind < 0.67:
            p = JA * rng.randint(1, 3)
        elif kind < 0.8:
            p = " ".join(rng.choice(RU) for _ in range(rng.randint(20, 60))).capitalize() + ". "
        elif kind < 0.92:
            p = rng.choice(CODE)
        else:
            p = " ".join(rng.choice(EMOJI) + rng.choice(EN) for _ in range(rng.randint(3, 12)))
            p += f" {rng.randint(0, 10**rng.randint(1, 12))} "
        p += "\n\n" if rng.random() < 0.3 else "\n"
        parts.append(p)
        size += len(p.encode("utf-8"))
    return "".join(parts)


def fnv1a(ids):
    h = 1469598103934665603
    for i in ids:
        h = ((h ^ i) * 1099511628211) & 0xFFFFFFFFFFFFFFFF
    return h


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--mb", type=float, default=1.0)
    ap.add_argument("--repeat", type=int, default=7)
    ap.add_argument("--binary", default=str(ROOT / "build" / "release" / "bench" /
                                            "tokenizer_encode_bench"))
    args = ap.parse_args()
    text = generate_text(int(args.mb * 1_000_000))
    with tempfile.NamedTemporaryFile("w", encoding="utf-8", suffix=".txt", delete=False) as f:
        f.write(text)
        path = f.name
    print(f"text: {len(text.encode('utf-8'))} bytes, {len(text)} characters; "
          f"{args.repeat} runs each, median shown")
    ok = True
    lines = text.split("\n")
    try:
        for name in ("llama3", "qwen3"):
            tj = SHARED / "tokenizers" / name / "tokenizer.json"
            hf = Tokenizer.from_file(str(tj))
            for mode in ("whole", "lines"):
                hf_times = []
                for _ in range(args.repeat):
                    t0 = time.perf_counter()
                    if mode == "whole":
                        ids = hf.encode(text, add_special_tokens=False).ids
                    else:
                        enc = hf.encode_batch(lines, add_special_tokens=False)
                        ids = [i for e in enc for i in e.ids]
                    hf_times.append(time.perf_counter() - t0)
                out = subprocess.run([args.binary, str(tj), path, str(args.repeat), mode],
                                     capture_output=True, text=True, check=True)
                k = json.loads(out.stdout)
                same = k["tokens"] == len(ids) and k["ids_fnv1a"] == fnv1a(ids)
                ok = ok and same
                hf_med, k_med = statistics.median(hf_times), statistics.median(k["seconds"])
                print(f"{name:7s} {mode:5s} tokens {len(ids):7d}  HF tokenizers "
                      f"{hf_med * 1e3:7.1f} ms  kinfer {k_med * 1e3:7.1f} ms  "
                      f"speed ratio (HF time / kinfer time) {hf_med / k_med:5.2f}x  "
                      f"{'ids identical' if same else 'IDS DIFFER'}")
    finally:
        os.unlink(path)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
