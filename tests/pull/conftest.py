import os
import pathlib

import pytest

ROOT = pathlib.Path(__file__).resolve().parents[2]


@pytest.fixture(scope="session")
def kinfer_bin() -> pathlib.Path:
    path = pathlib.Path(os.environ.get("KINFER_BIN", ROOT / "build/release/src/kinfer"))
    if not path.exists():
        pytest.fail(f"{path} not built: run cmake --build --preset release first")
    return path
