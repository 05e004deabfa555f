#!/usr/bin/env python3
"""Runs one documentation example program and compares what it prints with what the docs show.

Usage: compare_output.py PROGRAM EXPECTED

EXPECTED was written by extract_snippets.py: its first line lists the output lines (1-based) that
the docs mark as machine-dependent, which are not compared; every other line must match exactly.
"""
import subprocess
import sys


def main():
    program, expected_path = sys.argv[1], sys.argv[2]
    with open(expected_path, encoding="utf-8") as f:
        varies_line, _, want = f.read().partition("\n")
    varies = {int(k) for k in varies_line.split()}
    run = subprocess.run([program], capture_output=True, text=True, timeout=300)
    got = run.stdout + run.stderr
    if run.returncode != 0:
        sys.exit(f"{program} exited with {run.returncode}:\n{got}")
    want_lines, got_lines = want.split("\n"), got.split("\n")
    problems = []
    if len(want_lines) != len(got_lines):
        problems.append(f"the docs show {len(want_lines) - 1} lines, the program printed {len(got_lines) - 1}")
    else:
        for i, (w, g) in enumerate(zip(want_lines, got_lines), start=1):
            if i not in varies and w != g:
                problems.append(f"line {i}:\n  docs:    {w}\n  printed: {g}")
    if problems:
        sys.exit(f"{program}: the output differs from the docs ({expected_path}):\n" + "\n".join(problems) +
                 f"\n--- printed ---\n{got}")
    print(f"{program}: the output is the docs' ({len(want_lines) - 1} lines" +
          (f", line(s) {sorted(varies)} not compared" if varies else "") + ")")


if __name__ == "__main__":
    main()
