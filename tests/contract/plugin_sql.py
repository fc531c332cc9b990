#!/usr/bin/env python3
"""The schema contract, checked in a plugin's source: every relation or set-returning function
that the SQL of plugins/<name>/*.c reads or writes (after FROM, JOIN, INTO, UPDATE) is one of
the objects docs/plugins.md lists in "The schema contract", one of the plugin's own tables or
views (plugins/<name>/migrations/*.sql), or a name the same statement defines (a CTE).

    plugin_sql.py SOURCE_DIR PLUGIN...

Prints each name outside the contract with the file and line of its statement; exits 1 if
there is one. SQL is found as C string literals: adjacent literals are joined into one
statement, the way the compiler joins them."""
import os
import re
import sys

# Set-returning functions of PostgreSQL itself that a statement may read rows from.
BUILTIN = {"unnest", "generate_series", "jsonb_to_recordset", "jsonb_array_elements",
           "jsonb_each", "json_to_recordset", "regexp_matches", "string_to_table"}


def contract_names(docs):
    """The first column's `name`s of the contract table in docs/plugins.md (a name may be
    written with its arguments: `f(a text) -> ...`; `view v (...)` and `table t (...)` name v
    and t)."""
    text = open(docs, encoding="utf-8").read()
    section = text.split("## The schema contract", 1)[1].split("\n## ", 1)[0]
    names = set()
    for row in section.splitlines():
        if not row.startswith(("| `", "| view `", "| table `")):
            continue
        first = row.split("|")[1]
        for code in re.findall(r"`([^`]*)`", first):
            m = re.match(r"\s*([a-z_][a-z0-9_]*)", code)
            if m:
                names.add(m.group(1))
    return names


def own_names(plugin_dir):
    names = set()
    mig = os.path.join(plugin_dir, "migrations")
    for f in sorted(os.listdir(mig)) if os.path.isdir(mig) else []:
        sql = open(os.path.join(mig, f), encoding="utf-8").read()
        names |= set(re.findall(
            r"CREATE\s+(?:OR\s+REPLACE\s+)?(?:TABLE|VIEW|FUNCTION)\s+(?:IF\s+NOT\s+EXISTS\s+)?"
            r"([a-z_][a-z0-9_]*)", sql, re.I))
    return names


def statements(path):
    """(line, text) of each run of adjacent C string literals in the file."""
    src = open(path, encoding="utf-8").read()
    src = re.sub(r"/\*.*?\*/", lambda m: "\n" * m.group(0).count("\n"), src, flags=re.S)
    out, cur, start, line = [], [], 0, 1
    for m in re.finditer(r'"((?:[^"\\\n]|\\.)*)"|\b([A-Z][A-Z0-9_]*)\b|([^"\s])|(\n)', src):
        if m.group(4):
            line += 1
            continue
        if m.group(2) is not None:  # a macro between literals (" RB_APP_TS "): part of the run
            if cur:
                cur.append("0")
            continue
        if m.group(3) is not None:  # something else: the run ends
            if cur:
                out.append((start, " ".join(cur)))
                cur = []
            continue
        if not cur:
            start = line
        cur.append(m.group(1))
    if cur:
        out.append((start, " ".join(cur)))
    return out


WORD = r"([a-z_][a-z0-9_]*)"


def referenced(sql):
    """Names a statement reads or writes, less its CTEs."""
    if not re.search(r"\b(SELECT|INSERT|UPDATE|DELETE|WITH)\b", sql):
        return set()
    sql = re.sub(r"extract\s*\(\s*\w+\s+from\b", "extract(", sql, flags=re.I)
    ctes = set(re.findall(r"\b" + WORD + r"\s+AS\s*(?:MATERIALIZED\s*)?\(", sql, re.I))
    names = set()
    for m in re.finditer(r"\b(?:FROM|JOIN|INTO|UPDATE)\s+(?:ONLY\s+)?" + WORD, sql, re.I):
        name = m.group(1).lower()
        if name in ("set", "select", "lateral", "nowait", "skip"):
            continue
        names.add(name)
    return names - {c.lower() for c in ctes} - BUILTIN


def main():
    src_dir, plugins = sys.argv[1], sys.argv[2:]
    allowed = contract_names(os.path.join(src_dir, "docs", "plugins.md"))
    bad = 0
    for plugin in plugins:
        pdir = os.path.join(src_dir, "plugins", plugin)
        mine = allowed | own_names(pdir)
        files = sorted(f for f in os.listdir(pdir) if f.endswith(".c"))
        seen = 0
        for f in files:
            for line, sql in statements(os.path.join(pdir, f)):
                names = referenced(sql)
                seen += bool(names)
                for name in sorted(names - mine):
                    print("plugins/%s/%s:%d: %s is not in the schema contract "
                          "(docs/plugins.md) nor one of the plugin's own tables"
                          % (plugin, f, line, name))
                    bad += 1
        print("%s: %d statements read, %s" % (plugin, seen,
                                              "all through the contract" if not bad else
                                              "%d names outside it" % bad))
    sys.exit(1 if bad else 0)


if __name__ == "__main__":
    main()
