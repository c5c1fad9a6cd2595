#!/usr/bin/env python3
"""Export the PostgreSQL migration history of the projects in manifest.tsv
from git repositories into a corpus directory (not part of this repository).

    export.py --manifest manifest.tsv --out /work/corpus --git-dir lemmy=/path/to/lemmy.git ...
    export.py ... --repos-root DIR   (finds DIR/<owner>+<name>/repo, DIR/<owner>/<name>, DIR/<name>)

For each project it writes OUT/<project>/NNNN.up.sql and NNNN.down.sql (in
the order the project's own runner applies them) and OUT/<project>/index.tsv:
seq, version, name, autocommit (0/1), has_down (0/1), up source, down source,
down autocommit (0/1).

Layouts:
  diesel  <dir>/<version>_<name>/up.sql + down.sql (version: the part before
          the first '_', dashes removed), applied in version order, each in
          a transaction.
  popx    Ory's popx: <version>_<name>[.<dialect>][.autocommit].(up|down).sql;
          for each version the postgres file wins over the dialect-less one,
          other dialects are ignored; autocommit files run outside a
          transaction; empty files (only blanks and comments) count as applied.
"""
import argparse, os, re, subprocess, sys

def git(gitdir, *args):
    return subprocess.run(["git", "--git-dir", gitdir] + list(args), check=True,
                          stdout=subprocess.PIPE).stdout

def ls(gitdir, commit, path):
    out = git(gitdir, "ls-tree", "-r", "--name-only", commit + ":" + path)
    return [l for l in out.decode().splitlines() if l]

def show(gitdir, commit, path):
    return git(gitdir, "show", commit + ":" + path)

def diesel(gitdir, commit, path):
    dirs = {}
    for f in ls(gitdir, commit, path):
        d, _, base = f.rpartition("/")
        if base in ("up.sql", "down.sql") and "/" not in d:
            dirs.setdefault(d, {})[base[:-4]] = path + "/" + f
    out = []
    for d in sorted(dirs, key=lambda d: (d.split("_", 1)[0].replace("-", ""), d)):
        ver = d.split("_", 1)[0].replace("-", "")
        name = d.split("_", 1)[1] if "_" in d else d
        out.append(dict(version=ver, name=name, autocommit=False,
                        up=dirs[d].get("up"), down=dirs[d].get("down")))
    return out

POPX = re.compile(r"^(\d+)_([^.]+)(\.[a-z0-9]+)?(\.autocommit)?\.(up|down)\.(sql)$")

def popx(gitdir, commit, path):
    by = {}
    for f in ls(gitdir, commit, path):
        if "/" in f:
            continue
        m = POPX.match(f)
        if not m:
            continue
        ver, name, dialect, ac, direction, _ = m.groups()
        autocommit = bool(ac)
        if dialect == ".autocommit":
            dialect, autocommit = None, True
        dialect = dialect[1:] if dialect else "all"
        if dialect in ("postgresql", "pg"):
            dialect = "postgres"
        if dialect not in ("all", "postgres"):
            continue
        spec = 1 if dialect == "postgres" else 0
        key = (ver, direction)
        prev = by.get(key)
        if prev is None or spec >= prev[0]:
            by[key] = (spec, name, autocommit, path + "/" + f)
    out = []
    for ver in sorted(set(v for v, _ in by)):
        up, down = by.get((ver, "up")), by.get((ver, "down"))
        ref = up or down
        out.append(dict(version=ver, name=ref[1], autocommit=bool(up and up[2]),
                        up=up and up[3], down=down and down[3],
                        down_autocommit=bool(down and down[2])))
    return out

def find_gitdir(root, repo):
    owner, name = repo.split("/")
    for c in (os.path.join(root, owner + "+" + name, "repo"), os.path.join(root, owner, name),
              os.path.join(root, name), os.path.join(root, name, ".git")):
        if os.path.isdir(c):
            return c
    return None

def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--manifest", required=True)
    ap.add_argument("--out", required=True)
    ap.add_argument("--repos-root")
    ap.add_argument("--git-dir", action="append", default=[], help="project=path")
    ap.add_argument("--project", action="append", default=[])
    a = ap.parse_args()
    explicit = dict(x.split("=", 1) for x in a.git_dir)
    for line in open(a.manifest):
        if line.startswith("#") or not line.strip():
            continue
        project, repo, commit, path, layout = line.rstrip("\n").split("\t")
        if a.project and project not in a.project:
            continue
        gitdir = explicit.get(project) or (a.repos_root and find_gitdir(a.repos_root, repo))
        if not gitdir:
            sys.exit("export.py: no git directory for %s (%s); clone https://github.com/%s"
                     % (project, repo, repo))
        migs = (diesel if layout == "diesel" else popx)(gitdir, commit, path)
        d = os.path.join(a.out, project)
        os.makedirs(d, exist_ok=True)
        with open(os.path.join(d, "index.tsv"), "w") as idx:
            for i, m in enumerate(migs, 1):
                seq = "%04d" % i
                for direction in ("up", "down"):
                    src = m[direction]
                    data = show(gitdir, commit, src) if src else b""
                    with open(os.path.join(d, "%s.%s.sql" % (seq, direction)), "wb") as f:
                        f.write(data)
                idx.write("\t".join([seq, m["version"], m["name"], "1" if m["autocommit"] else "0",
                                     "1" if m["down"] else "0", m["up"] or "", m["down"] or "",
                                     "1" if m.get("down_autocommit") else "0"]) + "\n")
        with open(os.path.join(d, "SOURCE"), "w") as f:
            f.write("\t".join([repo, commit, path, layout]) + "\n")
        print("%s: %d migrations from %s@%s:%s -> %s" % (project, len(migs), repo, commit[:12], path, d))

main()
