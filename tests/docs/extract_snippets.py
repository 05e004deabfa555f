#!/usr/bin/env python3
"""Extracts the documentation's example programs for the docs.* tests.

Usage: extract_snippets.py OUT_DIR FILE.md...

A snippet is a ```cpp block that defines main(), followed (after one blank line) by a ```text
block: the program's source and the output it prints, as the docs show them. For each, this writes
OUT_DIR/<stem>_<n>.cpp and OUT_DIR/<stem>_<n>.expected (n counts the snippets of that file from 1),
and OUT_DIR/snippets.txt lists the names, one a line. Lines of the expected output the docs mark as
machine-dependent are not compared: an HTML comment `<!-- output line K varies -->` (1-based) on
the line after the text block. Files are rewritten only when their contents change (each program's
first line names its docs line, so an edit rebuilds the programs below it in that file). A
```cpp block with a main() but no output block after it is an error.
"""
import os
import re
import sys

PAIR = re.compile(r"```cpp\n(?P<code>.*?)```\n\n```text\n(?P<out>.*?)```\n(?P<note>(?:<!-- output line \d+ varies -->\n)*)",
                  re.S)
VARIES = re.compile(r"<!-- output line (\d+) varies -->")


def write_if_changed(path, text):
    try:
        with open(path, encoding="utf-8") as f:
            if f.read() == text:
                return
    except FileNotFoundError:
        pass
    with open(path, "w", encoding="utf-8") as f:
        f.write(text)


def main():
    if len(sys.argv) < 3:
        sys.exit("usage: extract_snippets.py OUT_DIR FILE.md...")
    out_dir = sys.argv[1]
    os.makedirs(out_dir, exist_ok=True)
    names = []
    for md in sys.argv[2:]:
        stem = os.path.splitext(os.path.basename(md))[0]
        with open(md, encoding="utf-8") as f:
            text = f.read()
        n = 0
        for m in PAIR.finditer(text):
            if "int main(" not in m.group("code"):
                continue
            n += 1
            name = f"{stem}_{n}"
            line = text.count("\n", 0, m.start()) + 1
            varies = sorted({int(k) for k in VARIES.findall(m.group("note"))})
            header = f"// {md}:{line} (extracted by tests/docs/extract_snippets.py; edit the docs, not this)\n"
            write_if_changed(os.path.join(out_dir, name + ".cpp"), header + m.group("code"))
            # First line of the .expected file: the output lines not compared (may be empty).
            expected = " ".join(str(k) for k in varies) + "\n" + m.group("out")
            write_if_changed(os.path.join(out_dir, name + ".expected"), expected)
            names.append(name)
        if n == 0:
            sys.exit(f"extract_snippets.py: {md} has no example program (```cpp with main, then ```text)")
        # Every program in the file must have been paired with its output: one whose output block
        # is missing or malformed would otherwise drop out of the tests unnoticed.
        programs = sum(1 for block in re.findall(r"```cpp\n(.*?)```", text, re.S) if "main(" in block)
        if programs != n:
            sys.exit(f"extract_snippets.py: {md} has {programs} programs with a main() but {n} of them are "
                     "followed by their output (a blank line, then ```text); give each its output")
    write_if_changed(os.path.join(out_dir, "snippets.txt"), "".join(x + "\n" for x in names))


if __name__ == "__main__":
    main()
