#!/usr/bin/env python3
"""Lists the C functions longer than a limit (default 120 lines) under the given folders
(default core/ and plugins/), longest first, as path:line: name (N lines). A function is
counted from the first line of its signature to its closing brace, by the layout the tree
keeps (clang-format): a definition's "{" and "}" stand alone at column 0. Exit 1 when any
function is over the limit, else 0.

    tools/long_functions.py [--max N] [DIR ...]"""
import os
import re
import sys

NAME_RX = re.compile(r"([A-Za-z_]\w*)\s*\(")


def functions(path):
    """(first line, name, length) of each function definition in the file."""
    with open(path, encoding="utf-8", errors="replace") as f:
        lines = f.read().split("\n")
    out = []
    i = 0
    while i < len(lines):
        if lines[i] != "{":
            i += 1
            continue
        # the signature: the lines above, back to a blank line or one ending a statement
        start = i - 1
        while start > 0 and lines[start - 1].strip() and not re.search(r"[;}]\s*$|\*/\s*$",
                                                                       lines[start - 1]) \
                and not lines[start - 1].startswith("#"):
            start -= 1
        sig = " ".join(lines[start:i])
        end = i + 1
        while end < len(lines) and lines[end] != "}":
            end += 1
        m = NAME_RX.search(sig)
        if m and "=" not in sig.split("(")[0]:
            out.append((start + 1, m.group(1), end - start + 1))
        i = end + 1
    return out


def main(argv):
    limit = 120
    if argv[:1] == ["--max"]:
        limit, argv = int(argv[1]), argv[2:]
    dirs = argv or ["core", "plugins"]
    over = []
    for d in dirs:
        for root, _, files in os.walk(d):
            for name in files:
                if name.endswith(".c"):
                    path = os.path.join(root, name)
                    over += [(n, path, ln, fn) for ln, fn, n in functions(path) if n > limit]
    for n, path, ln, fn in sorted(over, reverse=True):
        print("%s:%d: %s (%d lines)" % (path, ln, fn, n))
    return 1 if over else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
