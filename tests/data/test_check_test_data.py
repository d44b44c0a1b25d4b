"""scripts/check_test_data.py against the real test data and against a copy of it with one file
missing and one changed: it must name both, say where the missing one comes from, and fail."""
import os
import shutil
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
SCRIPT = REPO / "scripts" / "check_test_data.py"
SHARED = Path(os.environ.get("KINFER_SHARED_DIR") or REPO.parent / "shared")
MANIFEST = REPO / "tests" / "data" / "shared-manifest.tsv"


def check(*args):
    return subprocess.run([sys.executable, str(SCRIPT), *map(str, args)], capture_output=True,
                          text=True, timeout=120)


def entries():
    rows = [l.split("\t") for l in MANIFEST.read_text().splitlines()
            if l.strip() and not l.startswith("#")]
    return {r[0]: r for r in rows}


def test_manifest_rows_are_well_formed():
    rows = entries()
    assert len(rows) > 50
    for path, row in rows.items():
        assert len(row) == 5, path
        assert int(row[1]) > 0 and len(row[2]) == 64, path
        assert row[3] and row[4], f"{path}: origin and license"
        assert not path.startswith("/") and ".." not in path


def test_the_real_folder_is_complete():
    r = check("--quiet", SHARED)
    assert r.returncode == 0, r.stdout + r.stderr
    assert f"{len(entries())} of {len(entries())} files present and verified" in r.stdout


def test_a_folder_missing_files_is_reported_exactly(tmp_path):
    rows = entries()
    for rel in rows:
        (tmp_path / rel).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(SHARED / rel, tmp_path / rel)
    gone = "models/stories260K/stories260K.gguf"
    changed = "chat-templates/expected.json"
    (tmp_path / gone).unlink()
    with open(tmp_path / changed, "ab") as f:
        f.write(b" ")
    (tmp_path / "extra-file.txt").write_text("not in the manifest: ignored")
    r = check("--quiet", tmp_path)
    assert r.returncode == 1
    assert f"MISSING  {gone} ({rows[gone][1]} bytes, sha256 {rows[gone][2]})" in r.stdout
    assert f"from: {rows[gone][3]}" in r.stdout
    assert f"DIFFERS  {changed}: {int(rows[changed][1]) + 1} bytes" in r.stdout
    assert f"{len(rows) - 2} of {len(rows)} files present and verified" in r.stdout
    assert "1 missing, 1 different" in r.stdout
    assert "extra-file" not in r.stdout


def test_no_folder_at_all(tmp_path):
    r = check(tmp_path / "nope")
    assert r.returncode == 1 and "is not a folder" in r.stderr
