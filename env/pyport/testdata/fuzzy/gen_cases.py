#!/usr/bin/python3
"""Generate cases.json: reference values for env/fuzzy.go.

Run with Debian's Python and fuzzywuzzy 0.18:

    apt-get install -y python3-fuzzywuzzy
    /usr/bin/python3 env/testdata/fuzzy/gen_cases.py

Each case is {"a", "b", "token_set_ratio", "sequence_ratio"} where
token_set_ratio = fuzz.token_set_ratio(a, b) and
sequence_ratio = difflib.SequenceMatcher(None, a, b).ratio().

WebShop runs fuzzywuzzy without python-Levenshtein, so fuzz.ratio uses the
pure-Python difflib fallback. Debian's package pulls python3-levenshtein in as
a dependency, so the import of Levenshtein is blocked here to get the same
fallback.
"""

import difflib
import json
import os
import random
import sys
import warnings

sys.modules["Levenshtein"] = None  # force fuzzywuzzy's difflib fallback
warnings.simplefilter("ignore")
from fuzzywuzzy import fuzz  # noqa: E402

assert fuzz.SequenceMatcher is difflib.SequenceMatcher, fuzz.SequenceMatcher

HERE = os.path.dirname(os.path.abspath(__file__))
DATA = os.path.join(HERE, "..", "..", "..", "..", "shared", "webshop-data")
if not os.path.isdir(DATA):
    DATA = "/work/shared/webshop-data"

rng = random.Random(20240601)
pairs = []
seen = set()


def add(a, b):
    if (a, b) not in seen:
        seen.add((a, b))
        pairs.append((a, b))


# Attribute phrases mined from real products.
with open(os.path.join(DATA, "items_ins_v2_1000.json")) as f:
    items = json.load(f)
attrs = set()
for v in items.values():
    attrs.update(v.get("attributes", []))
    attrs.update(v.get("instruction_attributes", []))
attrs = sorted(attrs)

with open(os.path.join(DATA, "colors.txt")) as f:
    colors = [line.strip() for line in f if line.strip()]

# WebShop's reference example and plurals / near duplicates.
for a, b in [
    ("essential oil", "essential oils"),
    ("essential oils", "essential oil"),
    ("tea tree", "tea trees"),
    ("natural ingredients", "natural ingredient"),
    ("high quality", "quality high"),
    ("easy clean", "easy to clean"),
    ("long lasting", "long-lasting"),
    ("bpa free", "BPA-free"),
    ("non slip", "non-slip rubber sole"),
    ("machine wash", "machine washable"),
    ("hair extensions", "hair extension"),
    ("gluten free", "gluten-free"),
    ("gluten free", "dairy free"),
    ("sugar free", "free sugar"),
    ("stainless steel", "steel stainless"),
    ("rose gold", "gold rose gold"),
    ("dark brown", "brown dark"),
    ("dark brown", "brown"),
    ("light brown", "dark brown"),
    ("grey", "gray"),
    ("x-large", "X-Large"),
    ("x-large", "xx-large"),
    ("x-large", "large"),
    ("large", "x large"),
    ("pack of 12", "12 pack"),
    ("pack of 12", "pack of 2"),
    ("pack of 1", "1 count (pack of 1)"),
    ("8 ounce (pack of 2)", "8 ounce (pack of 12)"),
    ("3.4 fl oz", "3.4 Fl Oz (Pack of 1)"),
    ("size 7.5 wide", "7.5 wide"),
    ("7.5", "7"),
    ("queen", "queen size"),
    ("navy blue", "blue navy"),
    ("white", "white | black"),
    ("100x45x45cm", "100 x 45 x 45 cm"),
    ("12 count", "12-count"),
]:
    add(a, b)

# Random attribute pairs, and pairs sharing a word.
for _ in range(70):
    add(rng.choice(attrs), rng.choice(attrs))
by_word = {}
for a in attrs:
    for w in a.split():
        by_word.setdefault(w, []).append(a)
shared = sorted(w for w, v in by_word.items() if len(v) >= 2)
for _ in range(40):
    w = rng.choice(shared)
    a, b = rng.sample(by_word[w], 2)
    add(a, b)

# Attribute against itself with an edit: drop/duplicate/swap characters,
# change case, add punctuation, pluralize.
def mutate(s):
    op = rng.randrange(6)
    if op == 0 and len(s) > 1:
        i = rng.randrange(len(s))
        return s[:i] + s[i + 1:]
    if op == 1:
        i = rng.randrange(len(s))
        return s[:i] + s[i] + s[i:]
    if op == 2 and len(s) > 2:
        i = rng.randrange(len(s) - 1)
        return s[:i] + s[i + 1] + s[i] + s[i + 2:]
    if op == 3:
        return s.upper()
    if op == 4:
        return s.replace(" ", "-") + "!"
    return s + "s"


for _ in range(40):
    a = rng.choice(attrs)
    add(a, mutate(a))

# Colours against each other and against modified colours.
for _ in range(20):
    add(rng.choice(colors), rng.choice(colors))
for c in colors[:15]:
    add("dark " + c, c)
add("light grey", "grey")
add("multi", "multicolor")

# Empty, blank, punctuation, underscores, digits.
for a, b in [
    ("", ""),
    ("", "abc"),
    ("abc", ""),
    ("   ", "abc"),
    ("!!!", "!!!"),
    ("---", "abc"),
    ("abc", "abc"),
    ("ABC", "abc"),
    ("a_b", "a b"),
    ("a_b", "a_b"),
    ("_", "_"),
    ("a b c", "c b a"),
    ("a a a", "a"),
    ("  spaced   out  ", "spaced out"),
    ("tab\tseparated\nlines", "tab separated lines"),
    ("semi;colon,comma.period", "semi colon comma period"),
    ("12", "21"),
    ("0", "00"),
    ("a", "b"),
    ("ab", "ba"),
    ("abc", "xyz"),
]:
    add(a, b)

# Non-ASCII: fuzzywuzzy drops only U+0080..U+00FF; other characters are
# kept (or turned into spaces when not word characters) and lowercased.
for a, b in [
    ("café crème", "cafe creme"),
    ("café crème", "caf crme"),
    ("naïve", "naive"),
    ("Straße", "strasse"),
    ("ΟΔΟΣ", "οδος"),
    ("ΟΔΟΣ ΣΑ", "οδος σα"),
    ("Σ", "σ"),
    ("AΣ B", "aς b"),
    ("ΑΣ_Β", "ας_β"),
    ("ʰΣ", "ʰσ"),
    ("İstanbul", "istanbul"),
    ("İstanbul", "i̇stanbul"),
    ("日本語 テキスト", "日本語"),
    ("東京 tokyo", "tokyo"),
    ("😀 smile", "smile"),
    ("smile 😀😀", "smile"),
    ("Ｆｕｌｌｗｉｄｔｈ", "ｆｕｌｌｗｉｄｔｈ"),
    ("ǅemal", "ǆemal"),
    ("①② numbers", "numbers"),
    ("x² + y²", "x y"),
    ("Ⅻ roman", "ⅻ roman"),
    ("Łódź", "lodz"),
    ("Ωmega €5", "ωmega 5"),
    ("zero\u200bwidth", "zero width"),
    ("a\u0301b", "ab"),
    ("ÀÉÎÕÜ", ""),
    ("ÀÉÎÕÜ", "x"),
    ("москва", "МОСКВА"),
    ("ﬁne", "fine"),
]:
    add(a, b)

# Long strings (len(b) >= 200 triggers difflib's autojunk "popular" rule).
def long_phrase(n):
    words = []
    while len(" ".join(words)) < n:
        words.append(rng.choice(attrs))
    return " ".join(words)


for n in (150, 199, 200, 201, 250, 400, 600):
    a = long_phrase(n)
    add(a, long_phrase(n))
    add(a, mutate(a))
    add(rng.choice(attrs), a)
    add(a, rng.choice(attrs))
add("a" * 199, "a" * 199)
add("a" * 200, "a" * 199 + "b")
add("b" + "a" * 199, "a" * 200)
add("ab" * 150, "ba" * 150)
add("abc " * 60, "abd " * 60)
add("x" * 10 + "y" * 300, "y" * 300 + "x" * 10)
add(" ".join("w%d" % i for i in range(80)), " ".join("w%d" % i for i in range(79, -1, -1)))
add("é" * 250, "e" * 250)
add("ü " * 120 + "end", "end " + "ü " * 120)
add("日本" * 110, "本日" * 110)

# Exact .5 rounding cases for fuzz.ratio (Python round is half to even):
# single tokens with nothing in common except characters, so the result is
# round(100 * ratio(a, b)).
halves = {0: [], 1: []}
alphabet = "abcde"
tries = 0
while (len(halves[0]) < 6 or len(halves[1]) < 6) and tries < 200000:
    tries += 1
    a = "".join(rng.choice(alphabet) for _ in range(rng.randrange(2, 14)))
    b = "".join(rng.choice(alphabet) for _ in range(rng.randrange(2, 14)))
    if a == b:
        continue
    x = 100 * difflib.SequenceMatcher(None, a, b).ratio()
    if x - int(x) == 0.5:
        lst = halves[int(x) % 2]
        if len(lst) < 6:
            lst.append((a, b))
for lst in halves.values():
    for a, b in lst:
        add(a, b)
# Multi-token .5 case: shared "x" plus differing rests.
add("aaaaaaa", "bbbbbbba")
add("x aaaaaaa", "x bbbbbbba")

cases = []
for a, b in pairs:
    cases.append({
        "a": a,
        "b": b,
        "token_set_ratio": fuzz.token_set_ratio(a, b),
        "sequence_ratio": difflib.SequenceMatcher(None, a, b).ratio(),
    })

out = os.path.join(HERE, "cases.json")
with open(out, "w", encoding="utf-8") as f:
    json.dump(cases, f, ensure_ascii=False, indent=1)
    f.write("\n")
print("wrote %d cases to %s" % (len(cases), out))
