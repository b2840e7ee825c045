"""The machine a run was computed on, recorded with every training run.

Training numbers are bit-reproducible only on one machine: the same commit, data, seed and
pinned torch give other numbers on another CPU, because torch picks its floating-point kernels
by the instruction set it finds (``torch.backends.cpu.get_cpu_capability()``: ``"AVX2"``,
``"AVX512"``, ...) and the order of a reduction changes the last bits, which training then
amplifies. Every run's ``metrics.json`` therefore says where it was computed
(:func:`machine_record`), and a page that reads many runs can say how many machines they came
from (:func:`machine_key`).
"""

from __future__ import annotations

import os
import platform
from pathlib import Path

# Environment variables that set the thread pools of torch, OpenMP, MKL, OpenBLAS and numba.
THREAD_VARIABLES = ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS",
                    "NUMBA_NUM_THREADS")


def cpu_model(cpuinfo: str | Path = "/proc/cpuinfo") -> str:
    """The CPU's model name (the first ``model name`` line of ``/proc/cpuinfo`` on Linux; else
    :func:`platform.processor`, else ``"unknown"``)."""
    path = Path(cpuinfo)
    if path.exists():
        for line in path.read_text(errors="replace").splitlines():
            key, _, value = line.partition(":")
            if key.strip() == "model name" and value.strip():
                return value.strip()
    return platform.processor() or "unknown"


def cpu_identity(cpuinfo: str | Path = "/proc/cpuinfo") -> dict:
    """What the model name may hide on a virtual machine (it can read just "AMD EPYC"): the
    first processor's ``cpu family``, ``model`` and ``stepping`` from ``/proc/cpuinfo``, and
    ``flags_sha256``, the first 12 hex digits of the SHA-256 of its sorted flags (AVX-512 and
    bf16 among them). Empty where ``/proc/cpuinfo`` does not exist."""
    import hashlib

    path = Path(cpuinfo)
    if not path.exists():
        return {}
    found: dict = {}
    for line in path.read_text(errors="replace").splitlines():
        key, _, value = line.partition(":")
        key = key.strip()
        if not key and found:  # the end of the first processor's block
            break
        if key in ("cpu family", "model", "stepping") and key not in found:
            found[key] = value.strip()
        elif key == "flags" and "flags_sha256" not in found:
            flags = " ".join(sorted(value.split()))
            found["flags_sha256"] = hashlib.sha256(flags.encode()).hexdigest()[:12]
    return {k.replace(" ", "_"): v for k, v in found.items()}


def machine_record() -> dict:
    """Where the calling process computes: ``cpu_model``, ``cpu`` (:func:`cpu_identity`: family,
    model, stepping and a hash of the flags), ``cpu_capability`` (the instruction
    set torch's CPU kernels were chosen for), ``machine`` (``x86_64``, ``aarch64``), ``host``
    (the host name), ``cores`` (logical CPUs), the ``python``, ``torch`` and ``numpy``
    versions, ``torch_threads`` and ``torch_interop_threads`` (the intra- and inter-op pools
    as set for this run) and ``thread_variables`` (those of :data:`THREAD_VARIABLES` that are
    set). Call it in the process that trains, after its thread count is set."""
    import numpy as np
    import torch

    return {
        "cpu_model": cpu_model(),
        "cpu": cpu_identity(),
        "cpu_capability": torch.backends.cpu.get_cpu_capability(),
        "machine": platform.machine(),
        "host": platform.node(),
        "cores": os.cpu_count(),
        "python": platform.python_version(),
        "torch": torch.__version__,
        "numpy": np.__version__,
        "torch_threads": torch.get_num_threads(),
        "torch_interop_threads": torch.get_num_interop_threads(),
        "thread_variables": {k: os.environ[k] for k in THREAD_VARIABLES if k in os.environ},
    }


def machine_key(record: dict | None) -> tuple:
    """What tells two machines apart in a :func:`machine_record`: host, CPU model, family,
    model, stepping and flags, instruction set and the torch and numpy builds (runs with equal
    keys can be bit-identical; runs with different keys in general are not). Two virtual
    machines of one kind can share all of these: the count is then a lower bound. ``None`` (a
    run recorded before machines were): ``("not recorded",)``."""
    if not record:
        return ("not recorded",)
    cpu = tuple(sorted((record.get("cpu") or {}).items()))
    return (*(record.get(k) for k in ("host", "cpu_model", "cpu_capability", "torch", "numpy")),
            cpu)
