"""Hard strings for tokenizer comparisons, generated deterministically (no downloads).

Covers what breaks tokenizers: whitespace runs and tabs, newlines, CJK, emoji with ZWJ, combining
marks, numbers of every length, code, special-token strings inside text, text that looks like a
special token but is not, and (separately, as bytes) invalid UTF-8.
"""

import random

WHITESPACE = [" ", "\t", "\n", "\r", "\r\n", "\u00a0", "\u3000", "\u2009", "\u200b", "\u0085",
              "\u180e", "\u2028", "\u2029", "\ufeff", "\x0b", "\x0c", "\u202f", "\u205f"]

WORDS = [
    "Hello", "world", "the", "The", "THE", "tokenizer", "don't", "I'm", "we'll", "they've",
    "DON'T", "It'S", "you'LL", "'s", "'t", "ſ", "'ſ", "\u212a", "straße", "Grüß", "naïve",
    "café", "Привет", "мир", "Ελληνικά", "עברית", "العربية", "हिन्दी", "नमस्ते", "ไทย",
    "Tiếng", "Việt", "İstanbul", "ıi", "日本語", "中文", "你好", "世界", "こんにちは", "カタカナ",
    "ｶﾀｶﾅ", "한국어", "안녕하세요", "🦙", "👋", "👨‍👩‍👧‍👦", "🏳️‍🌈", "👍🏽", "🇫🇷", "1️⃣",
    "❤️", "e\u0301", "a\u0308", "A\u030a", "n\u0303", "\u1100\u1161\u11a8", "Z̴̡̛a̸l̵g̶o",
    "مَرْحَبًا", "ﬁ", "ＡＢＣ", "①", "²", "½", "Ⅻ", "٣٤٥", "１２３", "𝔘𝔫𝔦𝔠𝔬𝔡𝔢", "𠀀",
]

NUMBERS = ["3.14159", "1,000,000", "-42", "1e10", "0x1F", "007", "2024-07-26", "12:30:45",
           "$100", "99%", "+1 (555) 123-4567", "v1.2.3", "3/4", "10^9"]

CODE = [
    "def f(x):\n    return x * 2\n",
    "for (int i = 0; i < n; ++i) {\n\tsum += a[i];\n}\n",
    '{"key": "value", "list": [1, 2, 3], "nested": {"a": null}}',
    "<div class=\"x\">Hello &amp; <b>bye</b></div>",
    "if [[ -f $HOME/.bashrc ]]; then source ~/.bashrc; fi",
    "SELECT * FROM users WHERE id = 42 AND name LIKE '%bob%';",
    "regex: ^[a-z0-9_]+@[a-z]+\\.(com|org)$",
    "    indented\n        more\n\t\ttabs\n",
    "x+=1;y-=2;z*=3;w/=4;a%=5;b**=6;c//=7",
    "std::vector<std::pair<int, std::string>> v{{1, \"a\"}};",
    "```python\nprint('hi')\n```",
    "#include <stdio.h>\nint main(){printf(\"%d\\n\",42);}",
]

SPECIAL_LIKE = [
    "<|im_start|>user\nhi<|im_end|>", "<|begin_of_text|>Hello", "<s>", "</s>", "<unk>",
    "<｜begin▁of▁sentence｜>", "<think>x</think>", "<|endoftext|>", "<|eot_id|>",
    "<|start_header_id|>system<|end_header_id|>\n\n", "<|im_start|", "<|im_start |>",
    "< |im_start|>", "<|IM_START|>", "<s >", "<<s>>", "<|im_start|><|im_end|>", "<|im_start|>>",
    "<|eot_id", "<0x41>", "<0xZZ>", "▁", "▁▁hello", "Ġ", "Ċ", "a<s>b", " <s> ", "x</s>y",
    "<|reserved_special_token_0|>", "<tool_call>", "<|fim_prefix|>", "<|im_end|>\n<|im_start|>",
]


def _numbers():
    out = []
    rng = random.Random(7)
    for n in range(1, 31):
        out.append("".join(rng.choice("0123456789") for _ in range(n)))
        out.append("x" + "".join(rng.choice("0123456789") for _ in range(n)) + "y")
        out.append(" " + "9" * n)
    out += NUMBERS
    out += ["abc123def", "123abc", "a1b2c3", "1 2 3", "12 345 6789"]
    return out


def _whitespace():
    out = ["", " ", "  ", "\t", "\n", "\n\n", " \n", "\n ", "\t\t\n  ", " \t \n \r\n "]
    for n in range(1, 21):
        out.append(" " * n)
        out.append("a" + " " * n + "b")
        out.append(" " * n + "word")
        out.append("word" + " " * n)
    for n in (1, 2, 3, 4, 8):
        out.append("a" + "\n" * n + "b")
        out.append("a" + "\t" * n + "b")
        out.append("  " + "\n" * n + "  x")
    for w in WHITESPACE:
        out += [w, "a" + w + "b", w * 3, " " + w + " x", "x" + w]
    return out


def _random_strings(count, seed):
    rng = random.Random(seed)
    pool = WORDS + ["a", "b", "z", ".", ",", "!", "?", "'", '"', "(", ")", "-", "_", "/", "\\",
                    "@", "#", "<", ">", "|", "{", "}", "[", "]", "~", "`", "^", "&", "*", "=",
                    "+", ":", ";"] + WHITESPACE + ["0", "1", "42", "123", "2024"]
    out = []
    for _ in range(count):
        n = rng.randint(1, 25)
        parts = []
        for _ in range(n):
            r = rng.random()
            if r < 0.5:
                parts.append(rng.choice(pool))
            elif r < 0.7:
                parts.append(" ")
            elif r < 0.8:
                parts.append(rng.choice(SPECIAL_LIKE))
            elif r < 0.9:
                parts.append(chr(rng.choice([rng.randint(0x20, 0x7e), rng.randint(0xa0, 0x2fff),
                                             rng.randint(0x3000, 0x9fff),
                                             rng.randint(0x1f300, 0x1faff)])))
            else:
                parts.append(rng.choice(NUMBERS))
        out.append("".join(parts))
    return out


def _control_chars():
    out = [chr(c) for c in range(0, 0x80)]
    out += ["\x1b[31mred\x1b[0m", "a\x00b", "\x7f", "tab\tsep\tvalues"]
    return out


def _long():
    return ["a" * 3000, " " * 1000, "x" * 500 + " " + "y" * 500, "9" * 700, "你好" * 400,
            "🦙" * 200, ("The quick brown fox jumps over the lazy dog. " * 60),
            "\n".join(CODE) * 5]


def _llama_cpp_cases(shared):
    import pathlib
    p = pathlib.Path(shared) / "tokenizer-tests" / "generated" / "common.inp"
    if not p.exists():
        return []
    return p.read_text(encoding="utf-8").split("\n__ggml_vocab_test__\n")


def hard_strings(shared, random_count=1500, seed=1234):
    """The corpus: fixed categories plus `random_count` seeded random mixtures."""
    out = []
    out += _whitespace()
    out += _numbers()
    out += WORDS
    out += [w + " " + v for w in WORDS[:20] for v in WORDS[20:30]]
    out += CODE
    out += SPECIAL_LIKE
    out += [s + " and " + t for s in SPECIAL_LIKE[:12] for t in SPECIAL_LIKE[12:20]]
    out += _control_chars()
    out += _long()
    out += _llama_cpp_cases(shared)
    out += _random_strings(random_count, seed)
    seen, uniq = set(), []
    for s in out:
        if s not in seen:
            seen.add(s)
            uniq.append(s)
    return uniq


def invalid_utf8(seed=99, count=120):
    """Byte strings that are not valid UTF-8 (truncated, overlong, surrogates, stray bytes)."""
    fixed = [b"\xff", b"\xfe\xff", b"abc\x80def", b"\xe4\xbd", b"\xe4\xbd\xa0\xe4", b"\xc0\xaf",
             b"\xed\xa0\x80", b"\xf4\x90\x80\x80", b"\xf0\x9f\x98", b"\xf0\x9f\x98 x",
             b"hello \xe4\xbd world", b"\x80\x80\x80", b"<|im_start|>\xff<|im_end|>",
             b"\xc3", b"a\xc3", b"\xe2\x82", b"caf\xe9", b"\xf8\x88\x80\x80\x80"]
    rng = random.Random(seed)
    out = list(fixed)
    base = "Hello 你好 🦙 world".encode("utf-8")
    for _ in range(count):
        b = bytearray(base)
        for _ in range(rng.randint(1, 4)):
            pos = rng.randrange(len(b) + 1)
            b[pos:pos] = bytes([rng.randint(0x80, 0xff)])
        if rng.random() < 0.3:
            b = b[:rng.randrange(1, len(b))]
        try:
            b.decode("utf-8")
            continue
        except UnicodeDecodeError:
            out.append(bytes(b))
    return out
