import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
# The oracles module lives beside the tests.
sys.path.insert(0, str(Path(__file__).parent))


@pytest.fixture(scope="session")
def built_book(tmp_path_factory):
    """Every page executed with the CI parameters and the HTML book built from them (once per
    test session); returns the output folder (executed notebooks in src/, HTML in _build/html)."""
    out = tmp_path_factory.mktemp("book")
    subprocess.run(
        [sys.executable, str(ROOT / "book" / "build.py"), "--profile", "ci", "--out", str(out)],
        check=True,
    )
    return out
