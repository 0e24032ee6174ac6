#!/usr/bin/env python3
"""Mirrors the files git tracks in a clone into a build directory at a fixed path,
rewriting only the files whose content changed since the last mirror.

    python3 scripts/mirror.py CLONE DEST

Why: cargo decides whether a workspace crate is up to date from its path and the
modification times of its sources. A fresh clone has a new path or new times on every
file, so each CI run in one would rebuild every Sluice crate and relink every test
binary (minutes), even with a warm target directory. Built in DEST instead, unchanged
files keep the times of the run that wrote them and only changed crates rebuild.

DEST/.mirror-manifest records the blob id (from `git ls-files -s`) of every file
mirrored; files no longer tracked are deleted. Untracked files in DEST (build outputs
such as engine/ui/node_modules) are left alone. A file whose manifest entry is missing,
or that differs from the manifest on disk, is rewritten, so a damaged mirror heals.
"""

import json
import os
import shutil
import subprocess
import sys


def tracked(clone):
    """(mode, blob id, path) of every file git tracks in the clone."""
    out = subprocess.run(
        ["git", "-C", clone, "ls-files", "-s", "-z"], check=True, capture_output=True
    ).stdout.decode()
    files = []
    for entry in out.split("\0"):
        if not entry:
            continue
        meta, path = entry.split("\t", 1)
        mode, blob, _stage = meta.split()
        files.append((mode, blob, path))
    return files


def blob_id(path):
    """git's blob id of a file's content, to tell a damaged mirror file."""
    with open(path, "rb") as f:
        data = f.read()
    out = subprocess.run(
        ["git", "hash-object", "--stdin"], input=data, check=True, capture_output=True
    ).stdout
    return out.decode().strip()


def main():
    if len(sys.argv) != 3:
        sys.exit("usage: mirror.py CLONE DEST")
    clone, dest = (os.path.abspath(p) for p in sys.argv[1:])
    os.makedirs(dest, exist_ok=True)
    manifest_path = os.path.join(dest, ".mirror-manifest")
    try:
        with open(manifest_path) as f:
            old = json.load(f)
    except (OSError, ValueError):
        old = {}
    new = {}
    written = 0
    for mode, blob, path in tracked(clone):
        src, dst = os.path.join(clone, path), os.path.join(dest, path)
        key = mode + " " + blob
        if old.get(path) == key and os.path.lexists(dst):
            new[path] = key
            continue
        if os.path.lexists(dst) and not os.path.islink(dst) and mode != "120000" and os.path.isfile(dst):
            # A file left by a mirror that stopped before writing its manifest.
            if blob_id(dst) == blob:
                os.chmod(dst, os.stat(src).st_mode & 0o7777)
                new[path] = key
                continue
        os.makedirs(os.path.dirname(dst), exist_ok=True)
        if os.path.lexists(dst) or os.path.isdir(dst):
            if os.path.isdir(dst) and not os.path.islink(dst):
                shutil.rmtree(dst)
            else:
                os.remove(dst)
        if mode == "120000":
            os.symlink(os.readlink(src), dst)
        else:
            shutil.copyfile(src, dst)
            os.chmod(dst, os.stat(src).st_mode & 0o7777)
        new[path] = key
        written += 1
    removed = 0
    for path in old:
        if path not in new:
            p = os.path.join(dest, path)
            if os.path.lexists(p) and not os.path.isdir(p):
                os.remove(p)
                removed += 1
    tmp = manifest_path + ".tmp"
    with open(tmp, "w") as f:
        json.dump(new, f)
    os.replace(tmp, manifest_path)
    print(f"mirror: {len(new)} files in {dest}: {written} written, {removed} removed")


if __name__ == "__main__":
    main()
