"""Shared fixtures for the compatibility tests: where the kinfer binary and ../shared data are,
and a summary of how many strings/renders each test compared (printed at the end of the run)."""

import os
import pathlib

import pytest

ROOT = pathlib.Path(__file__).resolve().parents[2]
COUNTS = {}


def kinfer_binary():
    return os.environ.get("KINFER_BINARY") or str(ROOT / "build" / "release" / "src" / "kinfer")


def shared_dir():
    return pathlib.Path(os.environ.get("KINFER_SHARED_DIR") or (ROOT.parent / "shared"))


def record(name, count):
    COUNTS[name] = COUNTS.get(name, 0) + count


@pytest.fixture(scope="session")
def kinfer():
    path = kinfer_binary()
    if not os.access(path, os.X_OK):
        pytest.fail(f"kinfer binary not found at {path}: build it (cmake --build --preset release) "
                    "or set KINFER_BINARY")
    return path


@pytest.fixture(scope="session")
def shared():
    d = shared_dir()
    if not d.is_dir():
        pytest.fail(f"shared test data not found at {d}: set KINFER_SHARED_DIR")
    return d


def pytest_terminal_summary(terminalreporter):
    if COUNTS:
        terminalreporter.write_sep("-", "compared")
        for name, n in sorted(COUNTS.items()):
            terminalreporter.write_line(f"{name}: {n}")
