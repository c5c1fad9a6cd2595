#!/usr/bin/env python3
"""Turn one PostgreSQL regression SQL file into a sweep file for
scripts/plan_sweep/run.sh: every statement, in order, first given to
public.migrate_plan() (in a dollar quote) and then run itself, so that the
objects later statements name exist.  psql meta-commands and COPY ... FROM
stdin data are left out.  The split is approximate (quotes, dollar quotes,
comments and parentheses are respected; a statement split wrongly is only
a syntax error for migrate_plan and for the server).

usage: split.py IN.sql OUT.sql [FUNCTION]
FUNCTION (default public.migrate_plan) is what each statement is given to:
run.sh passes a SECURITY DEFINER wrapper owned by a plain role to have the
analysis run with that role's rights.
"""
import re
import sys

TAG = "$smsweep$"


def without_meta(text):
    kept, in_copy = [], False
    for line in text.split("\n"):
        if in_copy:
            in_copy = line.strip() != "\\."
            continue
        if line.lstrip().startswith("\\"):
            continue
        kept.append(line)
        if re.search(r"from\s+stdin", line, re.I):
            in_copy = True
    return "\n".join(kept)


def statements(text):
    out, start, depth, i, n = [], 0, 0, 0, len(text)
    while i < n:
        c = text[i]
        if c == "'":
            j = i + 1
            while j < n:
                if text[j] == "'" and j + 1 < n and text[j + 1] == "'":
                    j += 2
                    continue
                if text[j] == "'":
                    break
                j += 1
            i = j + 1
            continue
        if c == '"':
            j = text.find('"', i + 1)
            i = (j if j >= 0 else n) + 1
            continue
        if text.startswith("--", i):
            j = text.find("\n", i)
            i = j if j >= 0 else n
            continue
        if text.startswith("/*", i):
            j = text.find("*/", i)
            i = (j if j >= 0 else n) + 2
            continue
        if c == "$":
            m = re.match(r"\$([A-Za-z_][A-Za-z_0-9]*)?\$", text[i:])
            if m:
                tag = m.group(0)
                j = text.find(tag, i + len(tag))
                i = (j if j >= 0 else n) + len(tag)
                continue
        if c == "(":
            depth += 1
        elif c == ")":
            depth = max(0, depth - 1)
        elif c == ";" and depth == 0:
            out.append(text[start:i + 1].strip())
            start = i + 1
        i += 1
    return [s for s in out if s and s != ";"]


def main():
    src, dst = sys.argv[1], sys.argv[2]
    fn = sys.argv[3] if len(sys.argv) > 3 else "public.migrate_plan"
    if not re.fullmatch(r"[a-z_][a-z0-9_]*\.[a-z_][a-z0-9_]*", fn):
        sys.exit("FUNCTION must be schema.name in lower case")
    with open(src, errors="replace") as f:
        text = without_meta(f.read())
    with open(dst, "w") as o:
        for s in statements(text):
            if TAG in s:
                continue
            o.write("SELECT count(*) FROM %s(%s%s%s);\n" % (fn, TAG, s, TAG))
            o.write(s + "\n")


if __name__ == "__main__":
    main()
