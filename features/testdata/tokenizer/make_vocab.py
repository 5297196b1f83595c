#!/usr/bin/env python3
"""Writes vocab.txt, the small BERT vocabulary the tokenizer tests use.

bert-base-uncased's vocab.txt cannot be downloaded here, so this fixture keeps
its layout where it is well known and fills the rest with placeholders:

  * ids 0-103 and 104-998 are as in bert-base-uncased: [PAD]=0, [unused0..98],
    [UNK]=100, [CLS]=101, [SEP]=102, [MASK]=103, [unused99..993];
  * ids 999-1066 are bert-base-uncased's printable ASCII characters in order
    ("!"=999 ... "a"=1037 ... "~"=1066; no capitals, the vocabulary is uncased);
  * a few common words sit at their bert-base-uncased ids (the=1996, is=2003,
    this=2023, my=2026, world=2088, dog=3899, hello=7592: "hello, world!" is
    [101, 7592, 1010, 2088, 999, 102] in bert-base-uncased);
  * every other token of TOKENS below is a real-looking WordPiece token chosen for
    the tests, at an arbitrary free id; the segmentations the tests assert are the
    ones this vocabulary implies, derived from Hugging Face's algorithm;
  * the remaining lines are placeholders "[fixtureN]" (never produced by the
    basic tokenizer, which splits "[" off as punctuation).

The four WebShop tokens are not in the file: NewTokenizer appends them, as
Hugging Face's add_tokens appends them after bert-base-uncased's 30522 tokens.

Run: python3 make_vocab.py > vocab.txt
"""

PINNED = {
    "the": 1996, "of": 1997, "and": 1998, "in": 1999, "to": 2000, "is": 2003,
    "for": 2005, "with": 2007, "##s": 2015, "you": 2017, "this": 2023, "my": 2026,
    "world": 2088, "dog": 3899, "hello": 7592,
}

TOKENS = """
中 国 人 日 本 语 好 α β γ δ ε ο σ ς ι κ π и к а н о с т ø ß æ € £ © ° – — … ’ “ ” · • × ᄒ ##ᅡ ##ᆫ
##a ##b ##c ##d ##e ##f ##g ##h ##i ##k ##l ##m ##n ##o ##p ##r ##t ##u ##x ##y ##z ##0 ##5 ##9
un ##aff ##able don creme br ##ule nai ##ve cafe resume uber deja vu
i need want a an looking buy now back search next prev page results total price lower than dollars
size color black white blue red green dark brown light gray grey pink small medium large x ##l xl
men women shoes shoe shirt shirts running hair extension extensions long clip inch inches natural
beauty personal care description features reviews attributes rating instruction web ##shop shop
pack count oz ounce fl free gluten sugar organic cotton leather water ##proof proof wireless
head ##phones phone case cover stand desk table chair bed room living decor wall art lamp led
10 19 20 22 25 99 100 ##ing ##ed ##er ##ly ##est n na cl ##ick ##ed button clicked
""".split()


def main():
    lines = {0: "[PAD]", 100: "[UNK]", 101: "[CLS]", 102: "[SEP]", 103: "[MASK]"}
    for i in range(1, 100):
        lines[i] = "[unused%d]" % (i - 1)
    for i in range(104, 999):
        lines[i] = "[unused%d]" % (i - 5)
    ascii_chars = [chr(c) for c in range(33, 127) if not "A" <= chr(c) <= "Z"]
    for i, c in enumerate(ascii_chars):
        lines[999 + i] = c
    assert lines[1037] == "a" and lines[1010] == "," and lines[1066] == "~"
    for tok, i in PINNED.items():
        assert i not in lines
        lines[i] = tok
    seen = set(lines.values())
    free = 1067
    for tok in TOKENS:
        if tok in seen:
            continue
        seen.add(tok)
        while free in lines:
            free += 1
        lines[free] = tok
    n = max(lines) + 1
    out = [lines.get(i, "[fixture%d]" % i) for i in range(n)]
    assert len(set(out)) == len(out)
    print("\n".join(out))


if __name__ == "__main__":
    main()
