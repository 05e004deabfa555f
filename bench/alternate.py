#!/usr/bin/env python3
"""Compares builds of one Google Benchmark program, run alternately (docs/benchmarks.md).

    python3 bench/alternate.py [--rounds N] [--filter REGEX] OLD NEW [MORE...]

Each round runs every binary once (5 repetitions of 5 ms per benchmark, the order reversed every
other round, so that a spell of load on a shared machine falls on all of them), and keeps, for each
benchmark and each phase counter ("inputs us", "record us", "gradient us"), the fastest CPU time
seen. The table gives those minima in each benchmark's own time unit (the counters in
microseconds) and, for two binaries, NEW / OLD.
"""
import argparse
import collections
import json
import math
import subprocess
import sys

COUNTERS = ("inputs us", "record us", "gradient us")


def run_once(binary, pattern):
    """One run of `binary`: {name: cpu time} for each repetition's fastest, counters included."""
    out = subprocess.run(
        [binary, f"--benchmark_filter={pattern}", "--benchmark_repetitions=5",
         "--benchmark_min_time=0.005", "--benchmark_format=json"],
        capture_output=True, text=True, check=True).stdout
    # The scalar benchmark prints its summary after the JSON document.
    doc = json.loads(out[out.index("{"):out.rindex("}") + 1])
    best = {}
    for b in doc["benchmarks"]:
        if b.get("run_type") != "iteration":
            continue
        name = b["run_name"]
        best[name] = min(best.get(name, math.inf), b["cpu_time"])
        for counter in COUNTERS:
            if counter in b:
                key = f"{name} {counter}"
                best[key] = min(best.get(key, math.inf), b[counter])
    return best


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("binaries", nargs="+", help="two or more builds of one benchmark program")
    parser.add_argument("--rounds", type=int, default=12)
    parser.add_argument("--filter", default=".", help="--benchmark_filter for every run")
    args = parser.parse_args()
    if len(args.binaries) < 2:
        parser.error("give at least two binaries")

    best = {b: collections.defaultdict(lambda: math.inf) for b in args.binaries}
    for r in range(args.rounds):
        order = args.binaries if r % 2 == 0 else list(reversed(args.binaries))
        for binary in order:
            for name, t in run_once(binary, args.filter).items():
                best[binary][name] = min(best[binary][name], t)
        print(f"round {r + 1}/{args.rounds}", file=sys.stderr)

    names = sorted(set().union(*(best[b].keys() for b in args.binaries)))
    width = max(len(n) for n in names)
    header = "".join(f"{f'[{i}]':>11}" for i in range(len(args.binaries)))
    two = len(args.binaries) == 2
    print(f"{'':{width}}{header}" + ("   [1]/[0]" if two else ""))
    for name in names:
        row = "".join(f"{best[b][name]:11.2f}" for b in args.binaries)
        ratio = ""
        if two:
            old, new = (best[b][name] for b in args.binaries)
            ratio = f"{new / old:10.3f}" if old > 0 else ""
        print(f"{name:{width}}{row}{ratio}")
    for i, b in enumerate(args.binaries):
        print(f"[{i}] {b}")


if __name__ == "__main__":
    main()
