#!/usr/bin/env python3
"""Writes golden.jsonl: expected tokens for the Go tokenizer, from Python.

If the `transformers` package is importable, the expected tokens come from
Hugging Face's own slow BertTokenizer over vocab.txt (do_lower_case=True) with
the four WebShop tokens added via add_tokens(..., special_tokens=True).

Otherwise (as where this file was first run: no PyPI access), they come from
`reference_tokenize` below, a line-by-line port of the slow tokenizer's code path
(PreTrainedTokenizer.tokenize: lowercase pre-pass that spares the special tokens,
added-token split; BertTokenizer._tokenize; BasicTokenizer with its NFC step;
WordpieceTokenizer), written from the algorithm, not copied. It uses Python's own
unicodedata and str.lower, so it checks the Go port's Unicode handling
(categories, case mapping, NFD) independently of Go's tables. Random cases only
use code points assigned in Python's Unicode version, so that the two Unicode
versions agree on them.

Run: python3 hf_reference.py > golden.jsonl
"""
import json
import random
import re
import sys
import unicodedata

WEBSHOP = ["[button]", "[button_]", "[clicked button]", "[clicked button_]"]
SPECIAL = ["[UNK]", "[SEP]", "[PAD]", "[CLS]", "[MASK]"]


def load_vocab(path):
    vocab = {}
    with open(path, encoding="utf-8") as f:
        for i, tok in enumerate(f.readlines()):
            vocab[tok.rstrip("\n")] = i
    return vocab


def _is_whitespace(c):
    if c in (" ", "\t", "\n", "\r"):
        return True
    return unicodedata.category(c) == "Zs"


def _is_control(c):
    if c in ("\t", "\n", "\r"):
        return False
    return unicodedata.category(c).startswith("C")


def _is_punctuation(c):
    cp = ord(c)
    if 33 <= cp <= 47 or 58 <= cp <= 64 or 91 <= cp <= 96 or 123 <= cp <= 126:
        return True
    return unicodedata.category(c).startswith("P")


def _is_chinese_char(cp):
    return (0x4E00 <= cp <= 0x9FFF or 0x3400 <= cp <= 0x4DBF or 0x20000 <= cp <= 0x2A6DF
            or 0x2A700 <= cp <= 0x2B73F or 0x2B740 <= cp <= 0x2B81F or 0x2B820 <= cp <= 0x2CEAF
            or 0xF900 <= cp <= 0xFAFF or 0x2F800 <= cp <= 0x2FA1F)


def basic_tokenize(text, never_split):
    out = []
    for c in text:
        cp = ord(c)
        if cp == 0 or cp == 0xFFFD or _is_control(c):
            continue
        out.append(" " if _is_whitespace(c) else c)
    text = "".join(out)
    out = []
    for c in text:
        out.append(" %s " % c if _is_chinese_char(ord(c)) else c)
    text = unicodedata.normalize("NFC", "".join(out))
    split_tokens = []
    for token in text.strip().split():
        if token not in never_split:
            token = token.lower()
            token = "".join(c for c in unicodedata.normalize("NFD", token)
                            if unicodedata.category(c) != "Mn")
        if token in never_split:
            split_tokens.append(token)
            continue
        pieces, start_new = [], True
        for c in token:
            if _is_punctuation(c):
                pieces.append([c])
                start_new = True
            else:
                if start_new:
                    pieces.append([])
                start_new = False
                pieces[-1].append(c)
        split_tokens.extend("".join(p) for p in pieces)
    return " ".join(split_tokens).strip().split()


def wordpiece(token, vocab):
    chars = list(token)
    if len(chars) > 100:
        return ["[UNK]"]
    start, sub = 0, []
    while start < len(chars):
        end, cur = len(chars), None
        while start < end:
            s = "".join(chars[start:end])
            if start > 0:
                s = "##" + s
            if s in vocab:
                cur = s
                break
            end -= 1
        if cur is None:
            return ["[UNK]"]
        sub.append(cur)
        start = end
    return sub


def split_added(text, added):
    # Leftmost-longest, as HF's Trie.split for these tokens (each starts with "["
    # and holds no other "[", so matches cannot overlap).
    out, seg, i = [], 0, 0
    while i < len(text):
        best = None
        for tok in added:
            if text.startswith(tok, i) and (best is None or len(tok) > len(best)):
                best = tok
        if best is None:
            i += 1
            continue
        out.append(text[seg:i])
        out.append(best)
        i += len(best)
        seg = i
    out.append(text[seg:])
    return out


def reference_tokenize(text, vocab):
    pattern = "(" + "|".join(re.escape(t) for t in SPECIAL) + r")|(.+?)"
    text = re.sub(pattern, lambda m: m.groups()[0] or m.groups()[1].lower(), text)
    added = SPECIAL + WEBSHOP
    toks = []
    for part in split_added(text, added):
        if part in added:
            toks.append(part)
            continue
        for t in basic_tokenize(part, set(SPECIAL)):
            toks.extend(wordpiece(t, vocab))
    return toks


CASES = [
    "Hello, World!", "unaffable", "UNAFFABLE!!", "Héllo Crème Brûlée", "naïve café résumé Über déjà vu",
    "don't", "I'm looking for a shirt.", "中国人 日本语", "ab中cd", "hello\u3000world",
    "[button] Buy Now [button_]", "[clicked button] black [clicked button_]",
    "WebShop [SEP] Instruction: [SEP] i need a long clip-in hair extension",
    "[BUTTON] Back [Button_]", "[Clicked Button] x [CLICKED BUTTON_]", "[sep] [Sep] [SEP]",
    "x[SEP]y", "[button][button_]", "[clicked  button]", "[button", "[", "[]", "[[SEP]]",
    "[MASK] is [UNK] or [PAD] or [CLS]", "price: $19.99 - $25.00", "size: x-large (xl)",
    "a\x00b\ufffdc", "tab\there\nnew\rline", "soft\u00adhyphen zero\u200bwidth",
    "Ωmega ΟΔΟΣ ΣΣ", "İstanbul", "\u212akelvin [\u212aicked button]", "a\u1fefb",
    "ﬁne ½ ① ™ © €5 £10", "—dash… “quoted” ‘single’", "한국어", "\u0301\u0301", "e\u0301",
    "line\u2028sep para\u2029sep", "nbsp\u00a0here", "A" * 101, "a" * 100, "a" * 101, "a☃b",
    "", "   ", "\n\n", "!!!", "ABC'S", "hello   world", "ǅ ǲ ß ẞ", "ﾊﾝｶｸ ｶﾀｶﾅ", "ⅫⅩ",
]


def random_cases(n, seed):
    rnd = random.Random(seed)
    pools = [
        [chr(c) for c in range(0x20, 0x7F)] * 4,
        [chr(c) for c in range(0x00, 0x20)] + ["\x7f"],
        [chr(c) for c in range(0x80, 0x250)],
        [chr(c) for c in range(0x300, 0x370)],
        [chr(c) for c in range(0x370, 0x530)],
        [chr(c) for c in range(0x1E00, 0x2100)],
        [chr(c) for c in range(0x2100, 0x2C00)],
        [chr(c) for c in range(0x3000, 0x3100)],
        [chr(c) for c in range(0x4E00, 0x4E40)] + [chr(c) for c in range(0xF900, 0xF940)],
        [chr(c) for c in range(0xAC00, 0xAC40)] + [chr(c) for c in range(0x1100, 0x1200)],
        [chr(c) for c in range(0xFE00, 0x10000)],
        [chr(c) for c in range(0x1F300, 0x1F400)] + [chr(c) for c in range(0x1D100, 0x1D200)],
        [chr(c) for c in range(0x0590, 0x0700)] + [chr(c) for c in range(0x0900, 0x0A00)],
        [chr(c) for c in range(0xE000, 0xE010)] + [chr(c) for c in range(0x20000, 0x20010)],
        [" ", " ", "\n", "\t"] + WEBSHOP + SPECIAL + ["[", "]", "[BUTTON]", "hello", "unaffable"],
    ]
    pools = [[c for c in p if all(unicodedata.category(x) != "Cn" and unicodedata.category(x) != "Cs" for x in c)]
             for p in pools]
    out = []
    for _ in range(n):
        k = rnd.randint(1, 4)
        chosen = rnd.sample(pools, k) + [pools[0], pools[-1]]
        out.append("".join(rnd.choice(rnd.choice(chosen)) for _ in range(rnd.randint(0, 40))))
    return out


def main():
    vocab_path = sys.argv[1] if len(sys.argv) > 1 else "vocab.txt"
    vocab = load_vocab(vocab_path)
    try:
        from transformers import BertTokenizer
        hf = BertTokenizer(vocab_path, do_lower_case=True)
        hf.add_tokens(WEBSHOP, special_tokens=True)
        tokenize, source = hf.tokenize, "transformers.BertTokenizer"
    except ImportError:
        tokenize, source = (lambda t: reference_tokenize(t, vocab)), "hf_reference.reference_tokenize"
    print(json.dumps({"source": source, "unicode": unicodedata.unidata_version}, ensure_ascii=False))
    for text in CASES + random_cases(400, 20240611):
        print(json.dumps({"text": text, "tokens": tokenize(text)}, ensure_ascii=False))


if __name__ == "__main__":
    main()
