"""Training runs as independent jobs: every core of this machine, or an existing Dask cluster.

A job is one training run, ``(out_dir, TrainConfig)``, executed by
:func:`topobook.training.run.run_job` with one PyTorch thread. Runs never share state and each is
fixed by its own seed, so the numbers do not depend on how many workers there are or in which order
they finish (tested).

* ``scheduler=None``: a local pool of ``workers`` processes (default: one per core, or one per
  GPU where CUDA is available, each worker pinned to its GPU).
* ``scheduler="tcp://host:8786"``: the same jobs submitted to an existing Dask distributed
  cluster (``dask.distributed``); its workers need this package installed and the results folder
  on a shared file system. A ``dask_jobqueue.SLURMCluster`` or a ``LocalCluster`` gives such an
  address.

:func:`run_jobs` shows one progress bar for all of them: epochs done out of all epochs, with the
elapsed time and an estimate of the time left, read from the ``status.json`` each run writes
after every epoch; and a line per finished run. Finished runs are skipped and interrupted ones
resume from their last epoch, whichever worker picks them up.
"""

from __future__ import annotations

import concurrent.futures as cf
import json
import multiprocessing
import os
from collections.abc import Sequence
from pathlib import Path

from tqdm import tqdm

from topobook.training.config import TrainConfig
from topobook.training.run import finished_result, run_job

SCHEDULER_VARIABLE = "TOPOBOOK_SCHEDULER"  # environment variable naming a Dask scheduler


def default_workers() -> int:
    """One worker per GPU where CUDA is available, else one per core this process may use."""
    if _cuda_count():
        return _cuda_count()
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()


def _pin_gpu(gpu_ids) -> None:
    # runs in each new worker before any CUDA call: that worker sees one GPU only
    os.environ["CUDA_VISIBLE_DEVICES"] = str(gpu_ids.get())


def _epochs_done(out_dir: Path, config: TrainConfig) -> int:
    try:
        return min(json.loads((out_dir / "status.json").read_text())["epoch"], config.epochs)
    except (OSError, ValueError, KeyError):
        return 0


def _label(out_dir: Path) -> str:
    return f"{out_dir.parent.name}/{out_dir.name}"


def run_jobs(
    jobs: Sequence[tuple[Path, TrainConfig]],
    workers: int | None = None,
    scheduler: str | None = None,
    progress: bool = True,
    poll_seconds: float = 2.0,
) -> dict[str, dict]:
    """Run every unfinished job; returns ``{out_dir: summary}`` for the jobs run now.

    ``jobs``: ``(out_dir, config)`` pairs (distinct ``out_dir``). ``workers``: local processes
    (default :func:`default_workers`); ignored with ``scheduler``, the address of a Dask
    scheduler (default: the environment variable ``TOPOBOOK_SCHEDULER``, if set).
    """
    jobs = [(Path(d), c) for d, c in jobs]
    if len({d for d, _ in jobs}) != len(jobs):
        raise ValueError("two jobs write to the same folder")
    scheduler = scheduler or os.environ.get(SCHEDULER_VARIABLE) or None
    pending = [(d, c) for d, c in jobs if finished_result(c, d) is None]
    if not pending:
        if progress:
            print(f"all {len(jobs)} runs are finished: nothing to train")
        return {}
    total = sum(c.epochs for _, c in jobs)
    bar = tqdm(
        total=total,
        initial=total - sum(c.epochs for _, c in pending),
        unit="epoch",
        desc=f"training {len(pending)} of {len(jobs)} runs",
        disable=not progress,
        mininterval=poll_seconds,
        dynamic_ncols=True,
    )
    client = executor = None
    if scheduler:
        from distributed import Client

        client = Client(scheduler)
        executor = client.get_executor(pure=False)
        where = f"Dask cluster {scheduler} ({len(client.scheduler_info()['workers'])} workers)"
    else:
        workers = workers or default_workers()
        if workers < 1:
            raise ValueError(f"workers must be >= 1, got {workers}")
        context = multiprocessing.get_context("spawn")  # no state inherited from this process
        options = {}
        n_gpus = _cuda_count()
        if n_gpus:
            gpu_ids = context.Queue()
            for i in range(workers):
                gpu_ids.put(i % n_gpus)
            options = {"initializer": _pin_gpu, "initargs": (gpu_ids,)}
        executor = cf.ProcessPoolExecutor(workers, mp_context=context, **options)
        where = f"{workers} local worker processes"
    bar.write(f"training {len(pending)} runs on {where}")
    summaries = {}
    try:
        futures = {
            executor.submit(run_job, c, str(d)): (d, c)
            # trunks before their branches (a branch then finds its trunk saved), longest first
            for d, c in sorted(pending, key=lambda job: (job[1].branch_epoch > 0, -job[1].epochs))
        }
        running = set(futures)
        counted = {d: _epochs_done(d, c) for d, c in pending}
        while running:
            done, running = cf.wait(running, timeout=poll_seconds, return_when=cf.FIRST_COMPLETED)
            for future in done:
                out_dir, config = futures[future]
                summary = future.result()  # a failed run stops the build with its error
                summaries[str(out_dir)] = summary
                bar.write(
                    f"finished {_label(out_dir)} ({config.strategy}) in "
                    f"{summary['seconds'] / 60:.1f} min"
                )
            for out_dir, config in pending:
                now = (
                    config.epochs
                    if str(out_dir) in summaries
                    else _epochs_done(out_dir, config)
                )
                if now > counted[out_dir]:
                    bar.update(now - counted[out_dir])
                    counted[out_dir] = now
            bar.refresh()
    finally:
        if client is not None:
            executor.shutdown(wait=False)
            client.close()
        else:
            executor.shutdown(wait=True, cancel_futures=True)
        bar.close()
    return summaries


def _cuda_count() -> int:
    import torch

    return torch.cuda.device_count() if torch.cuda.is_available() else 0

