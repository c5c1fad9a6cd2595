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
import csv
PLAINFAIL = {}
for p in ps:
    f = os.path.join(res, p + "-events.csv")
    PLAINFAIL[p] = set()
    if os.path.exists(f):
        for r in csv.DictReader(open(f)):
            if r["target"] == "plain" and r["outcome"] == "failed":
                PLAINFAIL[p].add((r["phase"], r["seq"]))
for p in ps:
    for f in S[p]["failures"]:
        f["plain_too"] = (f["phase"], f["seq"]) in PLAINFAIL[p]
    S[p]["_p"] = p


def failrow(s, ph):
    fs = [f for f in s["failures"] if f["phase"] == ph]
    if not fs:
        return "0"
    own = [f for f in fs if not f["plain_too"]]
    return "%d: %d where plain psql succeeded (%s), %d where plain psql failed too" % (
        len(fs), len(own), fmt(Counter(f["sqlstate"] for f in own)), len(fs) - len(own))


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
        ("%s: other migrate_apply failures" % ph, lambda s, ph=ph: failrow(s, ph)),
        ("%s: policy warnings in applied migrations (by rule)" % ph, lambda s, ph=ph: fmt(s.get("warnings", {}).get(ph))),
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
    ("rollback: other failures", lambda s: failrow(s, "rollback")),
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
    if any(not f["plain_too"] for f in s["failures"]):
        print("### %s: failures where plain psql succeeded" % p)
        print()
    groups = Counter()
    example = {}
    for f in s["failures"]:
        if f["plain_too"]:
            continue
        msg = re.sub(r'"[^"]*"', '"…"', f["message"])
        msg = re.sub(r"\d+", "N", msg)
        k = (f["phase"], f["what"], f["sqlstate"], msg)
        groups[k] += 1
        example.setdefault(k, f)
    for k, n in sorted(groups.items(), key=lambda kv: (kv[0][0], -kv[1])):
        e = example[k]
        print("- %s, %s, %s ×%d: %s (first: %s %s)" % (k[0], k[1], k[2], n, e["message"][:300], e["seq"], e["version"]))
    print()
    pf = s["plain_failures"]
    if pf:
        print("### %s: plain psql failures (the project's own files; the safe_migrate side failed alike)" % p)
        print()
        for ph in ("up1", "rollback", "up2"):
            x = [f for f in pf if f["phase"] == ph]
            if x:
                print("- %s: %d, first %s %s: %s %s" % (ph, len(x), x[0]["seq"], x[0]["version"], x[0]["sqlstate"], x[0]["message"][:200]))
        print()
