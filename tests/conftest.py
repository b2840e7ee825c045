import os
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
    test session); returns the output folder (executed notebooks in src/, HTML in _build/html).

    The training runs go through the Dask path: a LocalCluster of 2 single-threaded worker
    processes on this machine stands in for a real cluster, and build.py is given its address.
    """
    reuse = os.environ.get("TOPOBOOK_BUILT_BOOK")  # developer loop: a book built before with
    if reuse:  # `python book/build.py --profile ci --out DIR`; CI never sets it
        return Path(reuse).resolve()
    from distributed import LocalCluster

    out = tmp_path_factory.mktemp("book")
    with LocalCluster(
        n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None
    ) as cluster:
        subprocess.run(
            [
                sys.executable,
                str(ROOT / "book" / "build.py"),
                "--profile",
                "ci",
                "--out",
                str(out),
                "--results",  # a fresh folder: every run is trained, none reused
                str(out / "results"),
                "--scheduler",
                cluster.scheduler_address,
            ],
            check=True,
        )
    return out
