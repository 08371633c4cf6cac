#!/usr/bin/env python3
"""Generate eval/tests/fixtures/pyrandom.json from real CPython `random` (run with Python 3.11).

The Rust port in eval/src/pyrandom.rs is checked against these values by eval/tests/pyrandom.rs;
CI does not need Python. Usage: python3 eval/tests/gen_pyrandom_fixture.py
"""
import json
import os
import random
import struct
import sys


def f64_bits(x):
    return struct.unpack("<Q", struct.pack("<d", x))[0]


def main():
    seeds = [0, 1, 42, 1234, 2**32 - 1, 2**32 + 5, 2**64 + 12345, -7]
    out = {"python": sys.version.split()[0], "seeds": []}
    for seed in seeds:
        r = random.Random(seed)
        entry = {"seed": str(seed)}
        entry["u32"] = [r.getrandbits(32) for _ in range(8)]
        entry["getrandbits"] = [[k, r.getrandbits(k)] for k in [1, 5, 31, 32, 33, 53, 63, 64, 0, 17]]
        entry["random_bits"] = [f64_bits(r.random()) for _ in range(8)]
        entry["randbelow"] = [[n, r._randbelow(n)] for n in [1, 2, 3, 7, 10, 100, 1000, 2**31, 2**32 + 1, 10042]]
        xs = list(range(30))
        r.shuffle(xs)
        entry["shuffle30"] = xs
        samples = []
        for n, k in [(1, 1), (5, 0), (5, 5), (10, 3), (21, 5), (22, 5), (30, 6), (85, 6), (86, 6),
                     (100, 10), (1172, 26), (1172, 25), (500, 5), (10042, 11), (2376, 6), (277, 26),
                     (278, 26), (85, 11), (86, 11), (300, 300)]:
            samples.append([n, k, r.sample(range(n), k)])
        entry["samples"] = samples
        out["seeds"].append(entry)

    # lm-eval style streams: one Random(1234) shared across docs, one sample per doc.
    streams = []
    for n, k, docs in [(10042, 11, 40), (1172, 26, 30), (1267, 6, 30), (40, 6, 30), (20, 3, 30)]:
        r = random.Random(1234)
        streams.append({"n": n, "k": k, "draws": [r.sample(range(n), k) for _ in range(docs)]})
    out["streams_1234"] = streams

    path = os.path.join(os.path.dirname(os.path.abspath(__file__)), "fixtures", "pyrandom.json")
    with open(path, "w") as f:
        json.dump(out, f, separators=(",", ":"))
        f.write("\n")
    print("wrote", path)


if __name__ == "__main__":
    main()
