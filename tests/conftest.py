import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
# One thread per process for torch's and the BLAS's pools: the suite already runs a process per
# core (pytest-xdist), and the small book's build beside it trains in 2 more and executes 2 pages
# at once; pools of one thread per core each would oversubscribe the cores and spin. Set before
# any test module imports torch (which reads them once); a variable already set is kept.
for _variable in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS"):
    os.environ.setdefault(_variable, "1")
# The oracles module lives beside the tests.
sys.path.insert(0, str(Path(__file__).parent))


# The test modules that read the built book (the built_book fixture). Under pytest-xdist
# (`make test`: `-n auto`) they run on one worker, which builds the book once, while the other
# workers take the unit tests one by one.
BOOK_MODULES = ("tests/test_book.py", "tests/test_browser.py")


@pytest.hookimpl(optionalhook=True)
def pytest_xdist_make_scheduler(config, log):
    """xdist's scheduler, with the book's modules as one unit of work and every other test a unit
    of its own. xdist's own ``--dist loadgroup`` does not group under pytest 9 (it renames the
    node id through an attribute pytest 9 no longer reads: measured, both workers built the
    book), hence this scheduler; :func:`built_book` also holds a lock, so that the book is built
    once even if a test of another module asks for it."""
    from xdist.scheduler import LoadScopeScheduling

    class BookOnOneWorker(LoadScopeScheduling):
        def _split_scope(self, nodeid: str) -> str:
            return "book" if nodeid.split("::", 1)[0].endswith(BOOK_MODULES) else nodeid

    return BookOnOneWorker(config, log)


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
    from filelock import FileLock

    # Under xdist each worker has its own session: the first worker to ask builds the book in
    # the folder the workers share (the parent of its basetemp); the others wait on the lock
    # and read the same book.
    shared = tmp_path_factory.getbasetemp()
    if os.environ.get("PYTEST_XDIST_WORKER"):
        shared = shared.parent
    out, done, failed = shared / "book", shared / "book.built", shared / "book.failed"
    with FileLock(str(shared / "book.lock")):
        if failed.exists():
            pytest.fail("the small book's build failed in another xdist worker: see its output")
        if not done.exists():
            out.mkdir(exist_ok=True)
            try:
                _build_small_book(out, LocalCluster)
            except BaseException:
                failed.touch()
                raise
            done.touch()
    return out


def _build_small_book(out: Path, LocalCluster) -> None:
    """``book/build.py --profile ci`` into ``out``, its runs trained through a local Dask
    cluster."""
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
