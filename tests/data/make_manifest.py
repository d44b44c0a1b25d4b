#!/usr/bin/env python3
"""Writes tests/data/shared-manifest.tsv: the rows of ../shared/DATA.md (path, bytes, sha256,
source, license) for the files the tests read, listed one per line in READ_LIST.

How READ_LIST was made (tests/data/README.md): a copy of ../shared with every file's access
time set in the past, each stage that reads test data run against it (KINFER_SHARED_DIR), and
the files whose access time moved listed. Rerun both when tests start reading other files.

  python3 tests/data/make_manifest.py READ_LIST [--data-md ../shared/DATA.md]
"""
import argparse
import hashlib
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
OUT = REPO / "tests" / "data" / "shared-manifest.tsv"
HEADER = """\
# Every file the tests read from the test-data folder (../shared beside the checkout, or
# $KINFER_SHARED_DIR): its path there, size, sha256, public origin and license, from
# ../shared/DATA.md. scripts/check_test_data.py checks a folder against this list and says what
# is missing; tests/data/README.md says how the list was made.
# path\tbytes\tsha256\torigin\tlicense
"""


def data_md_rows(path):
    rows = {}
    for line in path.read_text(encoding="utf-8").splitlines():
        if not line.startswith("| ") or line.startswith("| path ") or line.startswith("| ---"):
            continue
        cells = [c.strip().replace("\\|", "|") for c in line.strip().strip("|").split(" | ")]
        if len(cells) < 5:
            continue
        rows[cells[0]] = cells[:5]
    return rows


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("read_list", type=Path)
    ap.add_argument("--data-md", type=Path, default=REPO.parent / "shared" / "DATA.md")
    args = ap.parse_args()
    rows = data_md_rows(args.data_md)
    shared = args.data_md.parent
    out = [HEADER]
    problems = []
    for rel in sorted(set(args.read_list.read_text().split())):
        if rel not in rows:
            problems.append(f"{rel}: read by the tests but not described in {args.data_md}")
            continue
        path, size, sha, source, license_ = rows[rel]
        actual = shared / rel
        if actual.is_file() and hashlib.sha256(actual.read_bytes()).hexdigest() != sha:
            problems.append(f"{rel}: DATA.md's sha256 differs from the file's")
        out.append("\t".join([path, size, sha, source, license_]) + "\n")
    if problems:
        sys.exit("\n".join(problems))
    OUT.write_text("".join(out), encoding="utf-8")
    print(f"{OUT}: {len(out) - 1} files")


if __name__ == "__main__":
    main()
