#!/usr/bin/env python3
"""Markdown summary of a histories run: summarize.py RESULTS project..."""
import json, os, re, sys
from collections import Counter

res, projects = sys.argv[1], sys.argv[2:]
S = {}
for p in projects:
    f = os.path.join(res, p + "-summary.json")
    if os.path.exists(f):
        S[p] = json.load(open(f))
ps = [p for p in projects if p in S]


def fmt(d):
    if not d:
        return "0"
    return ", ".join("%s: %d" % (k, v) for k, v in sorted(d.items(), key=lambda kv: (-kv[1], kv[0])))


def total(d):
    return sum(d.values()) if d else 0


rows = [
    ("migrations (up/down pairs)", lambda s: str(s["migrations"])),
]
for ph in ("up1", "up2"):
    rows += [
        ("%s: applied by migrate_apply" % ph, lambda s, ph=ph: str(s["applied"].get(ph, {}).get("applied", 0))),
        ("%s: refusals by the policy (by rule; each then applied with an allow line)" % ph,
         lambda s, ph=ph: "%d (%s)" % (total(s["refused"].get(ph)), fmt(s["refused"].get(ph))) if total(s["refused"].get(ph)) else "0"),
        ("%s: other migrate_apply failures" % ph,
         lambda s, ph=ph: "%d (%s)" % (len([f for f in s["failures"] if f["phase"] == ph]),
                                       fmt(Counter(f["sqlstate"] for f in s["failures"] if f["phase"] == ph)))
         if [f for f in s["failures"] if f["phase"] == ph] else "0"),
        ("%s: migrate_test verdicts" % ph, lambda s, ph=ph: fmt(s["tests"].get(ph))),
        ("%s: migrate_test down refused by the policy (by rule; then an allow line in the down section)" % ph,
         lambda s, ph=ph: "%d (%s)" % (total(s["refused"].get(ph + " migrate_test down")), fmt(s["refused"].get(ph + " migrate_test down")))
         if total(s["refused"].get(ph + " migrate_test down")) else "0"),
        ("%s: migrate_test verdicts on the script with allow lines" % ph,
         lambda s, ph=ph: fmt(s["tests"].get(ph + " (with allow)"))),
    ]
rows += [
    ("up1: pg_dump check of migrate_test's down verdicts (up, down in a scratch db) / verdict",
     lambda s: fmt(s.get("probe", {}).get("up1"))),
    ("up1: does migrate_test's down verdict agree with the pg_dump check", lambda s: fmt(s.get("probe", {}).get("agreement"))),
    ("rollback: refusals by the policy (by rule)",
     lambda s: "%d (%s)" % (total(s["refused"].get("rollback")), fmt(s["refused"].get("rollback"))) if total(s["refused"].get("rollback")) else "0"),
    ("rollback: results", lambda s: fmt(s["rollback"].get("rollback"))),
    ("rollback: the project's own down chain breaks (plain psql fails too) at", lambda s: s.get("chain_broken", "no (all rolled back)")),
    ("rollback: other failures",
     lambda s: "%d (%s)" % (len([f for f in s["failures"] if f["phase"] == "rollback"]),
                            fmt(Counter(f["sqlstate"] for f in s["failures"] if f["phase"] == "rollback")))
     if [f for f in s["failures"] if f["phase"] == "rollback"] else "0"),
    ("files run with psql in the safe_migrate db to continue", lambda s: fmt({"%s %s" % (ph, k): v for ph, d in s["fallback"].items() for k, v in d.items()})),
    ("plain psql failures (corpus problems)", lambda s: str(len(s["plain_failures"]))),
    ("schema identical after up1", lambda s: s["schema"].get("up1", "?")),
    ("schema identical after rollback", lambda s: s["schema"].get("rollback", "?")),
    ("schema identical after up2", lambda s: s["schema"].get("up2", "?")),
    ("history at the end", lambda s: s.get("history", "")),
    ("seconds (up1/rollback/up2/total)", lambda s: "/".join(str(s.get("seconds", {}).get(k, "?")) for k in ("up1", "rollback", "up2", "total"))),
]
print("| | " + " | ".join(ps) + " |")
print("|---|" + "---|" * len(ps))
for name, f in rows:
    print("| %s | %s |" % (name, " | ".join(f(S[p]).replace("|", "\\|") for p in ps)))
print()
for p in ps:
    s = S[p]
    if not s["failures"] and not s["plain_failures"]:
        continue
    print("### %s: failures" % p)
    print()
    groups = Counter()
    example = {}
    for f in s["failures"]:
        msg = re.sub(r'"[^"]*"', '"…"', f["message"])
        msg = re.sub(r"\d+", "N", msg)
        k = (f["phase"], f["what"], f["sqlstate"], msg)
        groups[k] += 1
        example.setdefault(k, f)
    for k, n in sorted(groups.items(), key=lambda kv: (kv[0][0], -kv[1])):
        e = example[k]
        print("- %s, %s, %s ×%d: %s (first: %s %s)" % (k[0], k[1], k[2], n, e["message"][:300], e["seq"], e["version"]))
    for f in s["plain_failures"]:
        print("- plain psql %s %s %s: %s %s" % (f["phase"], f["seq"], f["version"], f["sqlstate"], f["message"][:200]))
    print()
