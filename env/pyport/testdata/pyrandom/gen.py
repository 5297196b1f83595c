#!/usr/bin/env python3
"""Reference values of CPython's random.Random for env/pyrandom.go.

    python3 env/testdata/pyrandom/gen.py          # rewrites cases.json
    python3 env/testdata/pyrandom/gen.py --shuffle N SEED
        # prints json of list(range(N)) after random.seed(SEED);
        # random.shuffle(...) (used by the Go test as a live check)
    python3 env/testdata/pyrandom/gen.py --live
        # prints one JSON object of live checks (see live())

Written for CPython 3.11 (random.sample's set/pool switch and
_randbelow_with_getrandbits as implemented there).
"""

import json
import os
import random
import sys

SEEDS = [233, 0, 1, 42, 2**32 + 5]
BITS = [1, 2, 5, 8, 16, 31, 32, 33, 48, 63, 64]
SHUFFLE_NS = [1, 2, 10, 57, 1000]
SAMPLES = [(4, 2), (4, 4), (4, 0), (10, 3), (10, 10), (21, 5), (22, 5),
           (26, 5), (27, 6), (100, 6), (100, 40), (1000, 10), (1000, 500),
           (12087, 20), (10**6, 50), (2**40, 8)]
BELOW = [1, 2, 3, 7, 10, 100, 1000, 2**31, 2**32 + 1, 2**53 + 3, 2**62 + 7]
CHOICE_NS = [1, 2, 3, 5, 12087]
RANDINTS = [(0, 0), (1, 6), (-5, 5), (0, 1), (0, 999), (10, 10**9)]
UNIFORMS = [(0.0, 1.0), (1.0, 100.0), (-3.5, 2.25), (10.0, 10.0), (5.0, -5.0)]


def seed_cases(seed):
    c = {"seed": seed}
    r = random.Random(seed)
    c["random"] = [r.random() for _ in range(20)]
    c["getrandbits"] = {}
    for k in BITS:
        r = random.Random(seed)
        c["getrandbits"][str(k)] = [r.getrandbits(k) for _ in range(20)]
    c["shuffle"] = {}
    for n in SHUFFLE_NS:
        r = random.Random(seed)
        x = list(range(n))
        r.shuffle(x)
        c["shuffle"][str(n)] = x
    c["sample"] = []
    for n, k in SAMPLES:
        r = random.Random(seed)
        first = r.sample(range(n), k)
        second = r.sample(range(n), k)
        c["sample"].append({"n": n, "k": k, "first": first, "second": second})
    c["randbelow"] = {}
    for n in BELOW:
        r = random.Random(seed)
        c["randbelow"][str(n)] = [r._randbelow(n) for _ in range(20)]
    c["choice"] = {}
    for n in CHOICE_NS:
        r = random.Random(seed)
        seq = list(range(n))
        c["choice"][str(n)] = [r.choice(seq) for _ in range(20)]
    c["randint"] = []
    for a, b in RANDINTS:
        r = random.Random(seed)
        c["randint"].append({"a": a, "b": b,
                             "values": [r.randint(a, b) for _ in range(20)]})
    c["uniform"] = []
    for a, b in UNIFORMS:
        r = random.Random(seed)
        c["uniform"].append({"a": a, "b": b,
                             "values": [r.uniform(a, b) for _ in range(20)]})
    # A mixed sequence of calls on one generator, as WebShop would interleave.
    r = random.Random(seed)
    mixed = []
    for i in range(30):
        op = i % 5
        if op == 0:
            mixed.append(r.random())
        elif op == 1:
            mixed.append(r.randint(1, 100))
        elif op == 2:
            mixed.append(r.choice(list(range(7))))
        elif op == 3:
            mixed.append(r.sample(range(50), 3))
        else:
            x = list(range(6))
            r.shuffle(x)
            mixed.append(x)
    c["mixed"] = mixed
    return c


def module_level_shuffle(n, seed):
    """WebShop's goal order: random.seed(233); random.shuffle(goals)."""
    x = list(range(n))
    random.seed(seed)
    random.shuffle(x)
    return x


def live():
    r = random.Random(233)
    return {
        "version": list(sys.version_info[:3]),
        "shuffle30": module_level_shuffle(30, 233),
        "random": [r.random() for _ in range(5)],
        "sample": random.Random(233).sample(range(12087), 10),
        "sample_big": random.Random(7).sample(range(10**9), 5),
    }


def main():
    if len(sys.argv) == 4 and sys.argv[1] == "--shuffle":
        print(json.dumps(module_level_shuffle(int(sys.argv[2]), int(sys.argv[3]))))
        return
    if len(sys.argv) == 2 and sys.argv[1] == "--live":
        print(json.dumps(live()))
        return
    if len(sys.argv) != 1:
        sys.exit(__doc__)
    out = {
        "python": list(sys.version_info[:3]),
        "seeds": [seed_cases(s) for s in SEEDS],
        "webshop_goal_shuffle_233_30": module_level_shuffle(30, 233),
        "webshop_goal_shuffle_233_12087": module_level_shuffle(12087, 233),
    }
    path = os.path.join(os.path.dirname(os.path.abspath(__file__)), "cases.json")
    with open(path, "w") as f:
        json.dump(out, f, separators=(",", ":"))
        f.write("\n")
    print("wrote", path)


if __name__ == "__main__":
    main()
