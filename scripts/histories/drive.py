#!/usr/bin/env python3
"""Run one project's migration history through safe_migrate and through plain
psql, side by side, and record every outcome.  Called by run.sh.

    drive.py --project P --corpus DIR/P --results RESULTS --host SOCKDIR --port N --bindir BIN

Two databases: h4hist_<P>_sm (CREATE EXTENSION safe_migrate, default policy
enforce) and h4hist_<P>_plain (no extension).  Phases:

  up1       every migration in order: migrate_test(script), then
            migrate_apply(script, version, name) with the file as a dbmate
            script (-- migrate:up <up file> -- migrate:down <down file>);
            plain: psql -1 -f up (autocommit files without -1).
  rollback  newest first, one migrate_rollback() per migration; plain: the
            down files in reverse order.
  up2       as up1 again (same scripts as the ones applied in up1).

After each phase the schemas (pg_dump -s, normalised) are compared.

Policy: a migrate_apply refused by the policy (SM002) is recorded with its
rule, then applied again with "-- safe_migrate:allow <rule> <reason>" lines
added for the refused rules (repeated while new rules come up); the script
with those lines is the one re-applied in up2.  A migrate_rollback refused
by the policy is recorded, then retried under SET safe_migrate.policy = warn
in the caller's session, and if that is refused too (the runner does not see
the caller's setting), under ALTER DATABASE ... SET safe_migrate.policy =
warn (reset right after).  Any other failure is recorded with its error, and
the experiment goes on by running the file with plain psql in the
safe_migrate database (policy off for that session), so that later
migrations still meet the schema they expect.
"""
import argparse, csv, difflib, json, os, re, subprocess, sys, time

US = "\x1f"


class PG:
    def __init__(self, bindir, host, port):
        self.bindir, self.host, self.port = bindir, host, port
        self.tmp = None

    def psql(self, db, sql, single=False, policy_off=False, timeout=600):
        path = self.tmp
        with open(path, "w") as f:
            f.write(sql)
        cmd = [os.path.join(self.bindir, "psql"), "-X", "-q", "-At", "-F", US,
               "-v", "ON_ERROR_STOP=1", "-v", "VERBOSITY=verbose",
               "-h", self.host, "-p", str(self.port), "-U", "postgres", "-d", db, "-f", path]
        if single:
            cmd.insert(1, "-1")
        env = dict(os.environ)
        env.pop("PGOPTIONS", None)
        if policy_off:
            env["PGOPTIONS"] = "-c safe_migrate.policy=off"
        try:
            p = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env,
                               timeout=timeout)
        except subprocess.TimeoutExpired:
            return 124, "", "ERROR:  TIMEOUT: psql did not finish in %ds" % timeout
        return p.returncode, p.stdout.decode("utf-8", "replace"), p.stderr.decode("utf-8", "replace")

    def dump(self, db):
        p = subprocess.run([os.path.join(self.bindir, "pg_dump"), "-s", "-h", self.host,
                            "-p", str(self.port), "-U", "postgres", db],
                           stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        if p.returncode != 0:
            return None, p.stderr.decode()
        return p.stdout.decode("utf-8", "replace"), ""


def lit(text):
    """A dollar-quoted literal that cannot clash with the text."""
    n = 0
    while True:
        tag = "$h4q%d$" % n
        if tag not in text:
            return tag + text + tag
        n += 1


def q(text):
    return "'" + text.replace("'", "''") + "'"


def parse_error(err):
    """(sqlstate, message, detail) of the first ERROR in psql's stderr (VERBOSITY verbose)."""
    m = re.search(r"ERROR:\s+([0-9A-Z]{5}): (.*)", err)
    if not m:
        m2 = re.search(r"(ERROR|FATAL|psql):\s*(.*)", err)
        return ("?????", (m2.group(2) if m2 else err.strip()[:300]) or "(no message)", "")
    d = re.search(r"\nDETAIL:\s+(.*)", err[m.end():])
    return m.group(1), m.group(2).strip(), d.group(1).strip() if d else ""


def rule_of(msg):
    m = re.match(r'rule "([a-z0-9-]+)"', msg)
    return m.group(1) if m else None


def empty_sql(text):
    """popx's test for an empty migration: only blank lines and -- comments."""
    return all(not l.strip() or l.strip().startswith("--") for l in text.splitlines())


def norm_dump(text, keep_time=False):
    out = []
    for line in text.splitlines():
        s = line.rstrip()
        if not s or s.startswith("--") or s.startswith("SET ") or s.startswith("\\restrict") \
                or s.startswith("\\unrestrict") or s.startswith("SELECT pg_catalog.set_config"):
            continue
        if re.match(r"(CREATE EXTENSION IF NOT EXISTS|COMMENT ON EXTENSION) safe_migrate\b", s):
            continue
        # a migration that writes now() or 'now' into a view definition bakes
        # in the time it ran: that differs between any two runs
        if not keep_time:
            s = re.sub(r"'\d{4}-\d\d-\d\d \d\d:\d\d:\d\d(\.\d+)?([+-]\d\d(:\d\d)?)?'::timestamp",
                       "'<time of the run>'::timestamp", s)
        out.append(s)
    return out


class Run:
    def __init__(self, a):
        self.a = a
        self.pg = PG(a.bindir, a.host, a.port)
        self.p = a.project
        self.sm = "h4hist_%s_sm" % self.p
        self.plain = "h4hist_%s_plain" % self.p
        self.probe = "h4hist_%s_probe" % self.p
        self.probed = set()
        os.makedirs(a.results, exist_ok=True)
        self.pg.tmp = os.path.join(a.results, ".%s.sql" % self.p)
        self.events = open(os.path.join(a.results, "%s-events.csv" % self.p), "w", newline="")
        self.ev = csv.writer(self.events)
        self.ev.writerow(["project", "phase", "seq", "version", "target", "action", "outcome",
                          "sqlstate", "rule", "message", "detail"])
        self.tests = open(os.path.join(a.results, "%s-migrate_test.csv" % self.p), "w", newline="")
        self.tw = csv.writer(self.tests)
        self.tw.writerow(["project", "phase", "seq", "version", "verdict", "steps"])
        self.log = open(os.path.join(a.results, "%s.log" % self.p), "w")
        self.migs = []
        for line in open(os.path.join(a.corpus, "index.tsv")):
            f = line.rstrip("\n").split("\t")
            seq, ver, name, ac, has_down = f[0], f[1], f[2], f[3] == "1", f[4] == "1"
            dac = len(f) > 7 and f[7] == "1"
            up = open(os.path.join(a.corpus, seq + ".up.sql"), encoding="utf-8").read()
            down = open(os.path.join(a.corpus, seq + ".down.sql"), encoding="utf-8").read()
            self.migs.append(dict(seq=seq, version=ver, name=name, autocommit=ac, has_down=has_down,
                                  down_autocommit=dac, up=up, down=down, allow=[], allow_down=[], via=None))
        if a.limit:
            self.migs = self.migs[:a.limit]
        self.s = dict(applied={}, refused={}, failures=[], tests={}, rollback={}, schema={},
                      plain_failures=[], fallback={}, migrations=len(self.migs), rollback_policy={}, probe={}, warnings={})

    # -- bookkeeping ---------------------------------------------------------
    def event(self, phase, m, target, action, outcome, sqlstate="", rule="", msg="", detail=""):
        self.ev.writerow([self.p, phase, m["seq"] if m else "", m["version"] if m else "", target,
                          action, outcome, sqlstate, rule, msg[:2000], detail[:1000]])
        self.events.flush()

    def bump(self, key, phase, what, n=1):
        d = self.s[key].setdefault(phase, {})
        d[what] = d.get(what, 0) + n

    def say(self, *args):
        print(*args, file=self.log)
        self.log.flush()

    # -- databases -----------------------------------------------------------
    def setup(self):
        for db in (self.sm, self.plain):
            rc, out, err = self.pg.psql("postgres", "DROP DATABASE IF EXISTS %s;\nCREATE DATABASE %s;\n" % (db, db))
            if rc:
                sys.exit("setup of %s failed: %s" % (db, err))
        rc, out, err = self.pg.psql(self.sm, "CREATE EXTENSION safe_migrate;\n")
        if rc:
            sys.exit("CREATE EXTENSION failed: %s" % err)
        setup = os.path.join(os.path.dirname(os.path.abspath(__file__)), "setup", self.p + ".sql")
        if os.path.exists(setup):
            sql = open(setup).read()
            for db in (self.sm, self.plain):
                rc, out, err = self.pg.psql(db, sql, policy_off=(db == self.sm))
                if rc:
                    sys.exit("project setup %s failed on %s: %s" % (setup, db, err))

    def script(self, m):
        up = m["up"] if m["up"].endswith("\n") or not m["up"] else m["up"] + "\n"
        down = m["down"]
        if self.a.empty_noop:
            # work around empty sections (issue 11 item 8): a no-op statement
            if empty_sql(up):
                up += "SELECT 'h4: empty up section';\n"
            if m["has_down"] and empty_sql(down):
                down += "\nSELECT 'h4: empty down section';\n"
        allow = "".join("-- safe_migrate:allow %s h4 history experiment: refused rule re-applied with an override\n" % r
                        for r in m["allow"])
        s = "-- migrate:up\n" + allow + up
        if m["has_down"]:
            s += "-- migrate:down\n" + "".join(
                "-- safe_migrate:allow %s h4 history experiment: down refused in migrate_test, run with an override\n" % r
                for r in m["allow_down"]) + down
        return s

    # -- safe_migrate side ---------------------------------------------------
    def migrate_test(self, phase, m, script):
        rc, out, err = self.pg.psql(self.sm, "SELECT step, ok, coalesce(array_to_string(differences, ' | '), '') FROM migrate_test(%s);\n" % lit(script))
        if rc:
            st, msg, det = parse_error(err)
            r = rule_of(msg)
            if st == "SM002":
                verdict = "refused by policy"
            elif "no down script" in msg:
                verdict = "error: no down script (%s)" % st
            elif st == "0A000" or "transaction block" in msg:
                verdict = "error: not testable in a transaction (%s)" % st
            else:
                verdict = "error %s" % st
            steps = "%s: %s%s" % (st, msg, (" / " + det) if det else "")
            if rc not in (1, 3) or "server closed the connection" in err or "terminated abnormally" in err:
                verdict = "CRASH/connection lost"
                self.say("!!! migrate_test crash?", m["version"], err)
        else:
            rows = [l.split(US) for l in out.splitlines() if l]
            bad = [r for r in rows if len(r) > 1 and r[1] != "t"]
            if not rows:
                verdict = "no rows"
            elif not bad:
                verdict = "ok"
            else:
                kinds = []
                for r in bad:
                    d = r[2] if len(r) > 2 else ""
                    if r[0] == "down" and "down failed" in d:
                        mr = re.search(r'down failed: rule "([a-z0-9-]+)"', d)
                        kinds.append("down refused by policy (%s)" % mr.group(1) if mr else "down failed")
                    elif r[0] == "down":
                        kinds.append("down does not restore")
                    elif r[0] == "up again" and "not run: down failed" in d:
                        continue
                    elif r[0] == "up again" and "up failed" in d:
                        kinds.append("up again failed")
                    elif r[0] == "up again":
                        kinds.append("up again differs")
                    else:
                        kinds.append(r[0] + " not ok")
                verdict = ", ".join(kinds)
            steps = " || ".join("%s=%s: %s" % (r[0], r[1] if len(r) > 1 else "?",
                                               (r[2] if len(r) > 2 else "")[:600 if r[0] == "up" else 30000]) for r in rows)
        self.tw.writerow([self.p, phase, m["seq"], m["version"], verdict, steps[:60000]])
        self.tests.flush()
        self.bump("tests", phase, verdict)
        return verdict

    def down_allows(self, phase, m, verdict):
        """migrate_test's down refused by the policy: count it, add an allow
        line for that rule to the down section, test again."""
        n = 0
        while verdict.startswith("down refused by policy (") and n < 10:
            r = re.match(r"down refused by policy \(([a-z0-9-]+)\)", verdict).group(1)
            if r in m["allow_down"]:
                break
            n += 1
            self.event(phase, m, "sm", "migrate_test", "down refused by policy", "SM002", r)
            self.bump("refused", phase + " migrate_test down", r)
            m["allow_down"].append(r)
            verdict = self.migrate_test(phase + " (with allow)", m, self.script(m))
            m["verdict"] = verdict
        return verdict

    def apply_sm(self, phase, m):
        tries = 0
        tested_after_allow = False
        verdict = None
        m["verdict"] = None
        if not self.a.no_test:
            verdict = self.migrate_test(phase, m, self.script(m))
            m["verdict"] = verdict
            verdict = self.down_allows(phase, m, verdict)
        while True:
            tries += 1
            script = self.script(m)
            sql = "SELECT status, statements, coalesce(array_to_string(warnings, ' | '), '') FROM migrate_apply(%s, %s, %s);\n" % (
                lit(script), q(m["version"]), q(m["name"]))
            t0 = time.time()
            rc, out, err = self.pg.psql(self.sm, sql)
            if rc == 0:
                row = out.strip().split(US)
                status = row[0]
                self.event(phase, m, "sm", "migrate_apply", status, msg="statements=%s warnings=%s" % (
                    row[1] if len(row) > 1 else "", row[2] if len(row) > 2 else ""))
                self.bump("applied", phase, status)
                for w in re.findall(r'rule "([a-z0-9-]+)"', row[2] if len(row) > 2 else ""):
                    self.bump("warnings", phase, w)
                if status != "applied":
                    self.say("unexpected status", phase, m["version"], out)
                    self.s["failures"].append(dict(phase=phase, seq=m["seq"], version=m["version"],
                                                   what="migrate_apply status %s" % status, sqlstate="", message=out.strip()))
                    return False
                m["via"] = "sm"
                return True
            st, msg, det = parse_error(err)
            if rc not in (1, 3) or "server closed the connection" in err or "terminated abnormally" in err:
                self.say("!!! CRASH?", phase, m["version"], err)
                st = "CRASH " + st
            r = rule_of(msg)
            if st == "SM002" and r and r not in m["allow"] and tries < 12:
                self.event(phase, m, "sm", "migrate_apply", "refused by policy", st, r, msg, det)
                self.bump("refused", phase, r)
                m["allow"].append(r)
                if verdict == "refused by policy" and not self.a.no_test:
                    # test the script that will be applied
                    verdict = self.migrate_test(phase + " (with allow)", m, self.script(m))
                    m["verdict"] = verdict
                    verdict = self.down_allows(phase, m, verdict)
                continue
            self.event(phase, m, "sm", "migrate_apply", "failed", st, r or "", msg, det)
            self.s["failures"].append(dict(phase=phase, seq=m["seq"], version=m["version"], what="migrate_apply",
                                           sqlstate=st, message=msg, detail=det))
            self.say("FAIL", phase, m["seq"], m["version"], st, msg, det)
            # keep the experiment going: the file with plain psql, policy off
            rc2, out2, err2 = self.pg.psql(self.sm, m["up"], single=not m["autocommit"], policy_off=True)
            if rc2:
                st2, msg2, det2 = parse_error(err2)
                self.event(phase, m, "sm", "fallback psql up", "failed", st2, "", msg2, det2)
                self.bump("fallback", phase, "psql up failed too")
            else:
                self.event(phase, m, "sm", "fallback psql up", "ok")
                self.bump("fallback", phase, "psql up")
            m["via"] = "psql"
            return False

    def rollback_sm(self, phase, m):
        if m["via"] != "sm":
            rc, out, err = self.pg.psql(self.sm, m["down"], single=not m["down_autocommit"], policy_off=True)
            what = "psql down (not applied by safe_migrate)"
            if rc:
                st, msg, det = parse_error(err)
                self.event(phase, m, "sm", "fallback psql down", "failed", st, "", msg, det)
                self.bump("rollback", phase, what + ": failed")
            else:
                self.event(phase, m, "sm", "fallback psql down", "ok")
                self.bump("rollback", phase, what)
            m["via"] = None
            return
        mode = "enforce"
        prefix = {"enforce": "", "session warn": "SET safe_migrate.policy = warn;\n",
                  "database warn": ""}
        while True:
            if mode == "database warn":
                self.pg.psql("postgres", "ALTER DATABASE %s SET safe_migrate.policy = warn;\n" % self.sm)
            sql = prefix[mode] + "SELECT version, status, statements FROM migrate_rollback();\n"
            rc, out, err = self.pg.psql(self.sm, sql)
            if mode == "database warn":
                self.pg.psql("postgres", "ALTER DATABASE %s RESET safe_migrate.policy;\n" % self.sm)
            if rc == 0:
                rows = [l.split(US) for l in out.splitlines() if l]
                got = [r[0] for r in rows]
                if got != [m["version"]]:
                    self.say("rollback undid", got, "expected", m["version"])
                    self.s["failures"].append(dict(phase=phase, seq=m["seq"], version=m["version"],
                                                   what="migrate_rollback undid %s" % got, sqlstate="", message=out.strip()))
                status = rows[0][1] if rows and len(rows[0]) > 1 else "?"
                self.event(phase, m, "sm", "migrate_rollback", status + (" (policy %s)" % mode if mode != "enforce" else ""),
                           msg=out.strip())
                self.bump("rollback", phase, "%s%s" % (status, " after policy refusal, under %s" % mode if mode != "enforce" else ""))
                m["via"] = None
                return
            st, msg, det = parse_error(err)
            if rc not in (1, 3) or "server closed the connection" in err or "terminated abnormally" in err:
                self.say("!!! CRASH?", phase, m["version"], err)
                st = "CRASH " + st
            r = rule_of(msg)
            if st == "SM002" and mode != "database warn":
                self.event(phase, m, "sm", "migrate_rollback", "refused by policy (%s)" % mode, st, r or "", msg, det)
                self.bump("refused", phase, (r or "?") + (" (under session warn)" if mode == "session warn" else ""))
                mode = "session warn" if mode == "enforce" else "database warn"
                continue
            self.event(phase, m, "sm", "migrate_rollback", "failed", st, r or "", msg, det)
            self.s["failures"].append(dict(phase=phase, seq=m["seq"], version=m["version"], what="migrate_rollback",
                                           sqlstate=st, message=msg, detail=det))
            self.say("ROLLBACK FAIL", m["seq"], m["version"], st, msg, det)
            self.bump("rollback", phase, "failed")
            # Nothing can take it out of the history; stop rolling back with
            # safe_migrate and undo the rest (this one included) with psql.
            rc2, out2, err2 = self.pg.psql(self.sm, m["down"], single=not m["down_autocommit"], policy_off=True)
            if rc2:
                st2, msg2, det2 = parse_error(err2)
                self.event(phase, m, "sm", "fallback psql down", "failed", st2, "", msg2, det2)
            else:
                self.event(phase, m, "sm", "fallback psql down", "ok")
            m["via"] = "stuck"
            self.stuck = True
            return

    # -- an independent check of migrate_test: up, down in a scratch database --
    def probe_down(self, m, verdict):
        """A copy of the plain database as it is before this migration
        (CREATE DATABASE ... TEMPLATE): dump, up, down, dump, compare."""
        rc0, _, err0 = self.pg.psql("postgres", "DROP DATABASE IF EXISTS %s;\nCREATE DATABASE %s TEMPLATE %s;\n"
                                    % (self.probe, self.probe, self.plain))
        if rc0:
            self.tw.writerow([self.p, "probe", m["seq"], m["version"], "probe: could not copy the plain database", err0[:500]])
            return
        before, e = self.pg.dump(self.probe)
        rc1, _, err1 = self.pg.psql(self.probe, m["up"], single=not m["autocommit"])
        if rc1:
            self.probe_pending = False
            self.tw.writerow([self.p, "probe", m["seq"], m["version"], "probe: up failed", parse_error(err1)[1]])
            return
        rc2, _, err2 = self.pg.psql(self.probe, m["down"], single=not m["down_autocommit"])
        if rc2:
            res = "probe: down failed (%s %s)" % parse_error(err2)[:2]
            detail = ""
        else:
            after_down, e = self.pg.dump(self.probe)
            nb, na = norm_dump(before), norm_dump(after_down)
            if nb == na and norm_dump(before, True) != norm_dump(after_down, True):
                # only a time baked into a view by now() differs: the
                # catalogs really differ, as migrate_test says
                res = "probe: down does NOT restore the pg_dump schema (only a baked-in now() differs)"
                detail = ""
            elif nb == na:
                res = "probe: down restores the pg_dump schema"
                detail = ""
            else:
                res = "probe: down does NOT restore the pg_dump schema"
                detail = "\n".join(list(difflib.unified_diff(nb, na, "before up", "after up+down", lineterm="", n=1))[:400])
        self.tw.writerow([self.p, "probe", m["seq"], m["version"], res + " [migrate_test: %s]" % verdict, detail[:60000]])
        pr = res.split(";")[0].replace("probe: ", "")
        pr = "down failed" if pr.startswith("down failed") else pr
        pr = "down does NOT restore" if pr.startswith("down does NOT restore") else pr
        self.bump("probe", "up1", pr.replace(" the pg_dump schema", ""))
        # does migrate_test's verdict on the down step agree with pg_dump?
        if verdict.startswith("refused by policy") or verdict.startswith("error") or verdict.startswith("CRASH"):
            agree = "no down verdict (%s)" % verdict
        else:
            mt_fail = "down failed" in verdict
            mt_diff = "down does not restore" in verdict
            mt_ok = not mt_fail and not mt_diff
            if pr == "down failed":
                agree = "agree" if mt_fail else "DISAGREE: pg_dump check says down fails, migrate_test says %s" % verdict
            elif pr.startswith("down restores"):
                agree = "agree" if mt_ok else "DISAGREE: pg_dump says down restores, migrate_test says %s" % verdict
            else:
                agree = "agree" if mt_diff else "DISAGREE: pg_dump says down does not restore, migrate_test says %s" % verdict
        self.bump("probe", "agreement", agree)
        if agree.startswith("DISAGREE"):
            self.say("VERDICT DISAGREES", m["seq"], m["version"], agree)
        self.probed.add(m["seq"])

    # -- plain side ------------------------------------------------------------
    def plain_run(self, phase, m, direction):
        text = m[direction]
        ac = m["autocommit"] if direction == "up" else m["down_autocommit"]
        rc, out, err = self.pg.psql(self.plain, text, single=not ac)
        if rc:
            st, msg, det = parse_error(err)
            self.event(phase, m, "plain", "psql " + direction, "failed", st, "", msg, det)
            self.s["plain_failures"].append(dict(phase=phase, seq=m["seq"], version=m["version"], sqlstate=st, message=msg))
            self.say("PLAIN FAIL", phase, m["seq"], m["version"], direction, st, msg)
            return False
        self.event(phase, m, "plain", "psql " + direction, "ok")
        return True

    # -- comparison ------------------------------------------------------------
    def compare(self, phase):
        a, e1 = self.pg.dump(self.sm)
        b, e2 = self.pg.dump(self.plain)
        if a is None or b is None:
            self.s["schema"][phase] = "pg_dump failed: " + (e1 or e2)
            return
        na, nb = norm_dump(a), norm_dump(b)
        with open(os.path.join(self.a.results, "%s-%s-sm.sql" % (self.p, phase)), "w") as f:
            f.write(a)
        with open(os.path.join(self.a.results, "%s-%s-plain.sql" % (self.p, phase)), "w") as f:
            f.write(b)
        if na == nb:
            self.s["schema"][phase] = "identical (%d lines)" % len(na)
        else:
            diff = list(difflib.unified_diff(nb, na, "plain", "safe_migrate", lineterm="", n=2))
            with open(os.path.join(self.a.results, "%s-%s.diff" % (self.p, phase)), "w") as f:
                f.write("\n".join(diff) + "\n")
            self.s["schema"][phase] = "DIFFERENT (%d diff lines, see %s-%s.diff)" % (len(diff), self.p, phase)

    def main(self):
        t0 = time.time()
        self.stuck = False
        self.setup()
        for phase in ("up1", "rollback", "up2"):
            tp = time.time()
            if phase == "rollback":
                for m in reversed(self.migs):
                    if not self.plain_run(phase, m, "down"):
                        # The project's own down chain is broken here: plain
                        # psql cannot roll back further either.  Stop both
                        # sides at this point (up2 re-applies what was undone).
                        self.s["chain_broken"] = "%s %s (%s), %d of %d rolled back" % (
                            m["seq"], m["version"], self.s["plain_failures"][-1]["message"],
                            sum(1 for x in self.migs if x["via"] is None), len(self.migs))
                        break
                    if self.stuck and m["via"] == "sm":
                        # an earlier rollback failed: the history cannot move on
                        rc, out, err = self.pg.psql(self.sm, m["down"], single=not m["down_autocommit"], policy_off=True)
                        self.bump("rollback", phase, "not attempted (an earlier rollback failed); psql down")
                        m["via"] = "stuck"
                        continue
                    self.rollback_sm(phase, m)
            else:
                for m in self.migs:
                    if phase == "up2" and m["via"] in ("sm", "psql"):
                        continue            # never rolled back (broken down chain)
                    if m["via"] == "stuck":
                        # still marked applied in the history: would be a no-op
                        rc, out, err = self.pg.psql(self.sm, m["up"], single=not m["autocommit"], policy_off=True)
                        self.bump("fallback", phase, "psql up (history still says applied)")
                    else:
                        self.apply_sm(phase, m)
                    v = m.get("verdict")
                    if phase == "up1" and self.a.probe != "none" and v is not None and \
                            (v != "ok" or self.a.probe == "all"):
                        self.probe_down(m, v)
                    self.plain_run(phase, m, "up")
            self.compare(phase)
            self.s.setdefault("seconds", {})[phase] = round(time.time() - tp, 1)
            self.say("phase", phase, "done in", round(time.time() - tp, 1), "s")
        self.pg.psql("postgres", "DROP DATABASE IF EXISTS %s;\n" % self.probe)
        rc, out, err = self.pg.psql(self.sm, "SELECT status, count(*) FROM safe_migrate.history GROUP BY 1 ORDER BY 1;\n")
        self.s["history"] = out.strip().replace(US, "=").replace("\n", ", ")
        self.s["seconds"]["total"] = round(time.time() - t0, 1)
        with open(os.path.join(self.a.results, "%s-summary.json" % self.p), "w") as f:
            json.dump(self.s, f, indent=1)
        self.events.close()
        self.tests.close()


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--project", required=True)
    ap.add_argument("--corpus", required=True)
    ap.add_argument("--results", required=True)
    ap.add_argument("--host", required=True)
    ap.add_argument("--port", required=True)
    ap.add_argument("--bindir", required=True)
    ap.add_argument("--limit", type=int, default=0)
    ap.add_argument("--no-test", action="store_true")
    ap.add_argument("--empty-noop", action="store_true",
                    help="give empty up/down sections a no-op SELECT (work around issue 11 item 8)")
    ap.add_argument("--probe", choices=("none", "flagged", "all"), default="flagged",
                    help="check migrate_test's down verdicts with pg_dump in a scratch database")
    Run(ap.parse_args()).main()


main()
