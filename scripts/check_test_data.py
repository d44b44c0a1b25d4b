#!/usr/bin/env python3
"""Checks a test-data folder (what the tests read from ../shared) against the manifest
tests/data/shared-manifest.tsv: every file present, with the manifest's size and sha256. Says
exactly what is missing or different, and where each missing file comes from, so that someone
outside can assemble the same folder.

  scripts/check_test_data.py                 # $KINFER_SHARED_DIR, else ../shared
  scripts/check_test_data.py /data/shared    # another folder
  scripts/check_test_data.py --quiet DIR     # only problems and the summary line

Exit status 0 when every file is there and right, 1 otherwise. Files the manifest does not
list are ignored (the folder may hold more than the tests read).
"""
import argparse
import hashlib
import os
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
MANIFEST = REPO / "tests" / "data" / "shared-manifest.tsv"


def read_manifest(path):
    entries = []
    for n, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        if not line.strip() or line.startswith("#"):
            continue
        cols = line.split("\t")
        if len(cols) != 5:
            sys.exit(f"{path}:{n}: expected 5 tab-separated columns (path, bytes, sha256, origin, "
                     f"license), got {len(cols)}")
        rel, size, sha, origin, license_ = cols
        entries.append({"path": rel, "bytes": int(size), "sha256": sha, "origin": origin,
                        "license": license_})
    return entries


def sha256(path):
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def default_dir():
    env = os.environ.get("KINFER_SHARED_DIR")
    return Path(env) if env else REPO.parent / "shared"


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("dir", nargs="?", type=Path, default=None, help="the data folder")
    ap.add_argument("--manifest", type=Path, default=MANIFEST)
    ap.add_argument("--quiet", action="store_true", help="print only problems and the summary")
    args = ap.parse_args()
    root = args.dir or default_dir()
    entries = read_manifest(args.manifest)
    if not root.is_dir():
        print(f"test data: {root} is not a folder; it should hold the {len(entries)} files of "
              f"{args.manifest.relative_to(REPO) if args.manifest.is_relative_to(REPO) else args.manifest}"
              " (set KINFER_SHARED_DIR or pass the folder)", file=sys.stderr)
        return 1
    missing, different, ok = [], [], 0
    for e in entries:
        p = root / e["path"]
        if not p.is_file():
            missing.append(e)
            continue
        size = p.stat().st_size
        if size != e["bytes"]:
            different.append((e, f"{size} bytes, expected {e['bytes']}"))
            continue
        digest = sha256(p)
        if digest != e["sha256"]:
            different.append((e, f"sha256 {digest}, expected {e['sha256']}"))
            continue
        ok += 1
        if not args.quiet:
            print(f"ok       {e['path']}")
    for e in missing:
        print(f"MISSING  {e['path']} ({e['bytes']} bytes, sha256 {e['sha256']})\n"
              f"         from: {e['origin']}\n         license: {e['license']}")
    for e, why in different:
        print(f"DIFFERS  {e['path']}: {why}\n         from: {e['origin']}")
    total = len(entries)
    size = sum(e["bytes"] for e in entries)
    print(f"test data {root}: {ok} of {total} files present and verified ({size / 2**20:.1f} MiB "
          f"in all); {len(missing)} missing, {len(different)} different")
    return 0 if ok == total else 1


if __name__ == "__main__":
    sys.exit(main())
