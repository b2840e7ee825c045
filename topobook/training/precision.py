"""The arithmetic precision of a training run: float32, or bfloat16 autocast where it is native.

A run's ``precision`` (:class:`topobook.training.config.TrainConfig`) is one of
:data:`PRECISIONS`:

* ``"fp32"`` (the default, and the precision of every run registered before this field existed):
  every forward pass in float32, no autocast; the numbers are those of the code before.
* ``"bf16"``: the forward passes under ``torch.autocast`` with ``dtype=torch.bfloat16``
  (convolutions and matrix products in bfloat16, reductions and normalisations kept in float32
  by autocast's own op lists); the weights, gradients and Adam's moments stay float32. The
  network's output is cast to float32 before any loss, probability or persistence computation
  (:func:`as_float32`), so the losses, the sigmoid and everything downstream run in float32.
* ``"auto"``: ``"bf16"`` where the device does bfloat16 natively (:func:`native_bf16`), else
  ``"fp32"``. :class:`~topobook.training.config.TrainConfig` resolves it when a config is made,
  so a run's recorded configuration names the precision it trained with (with a Dask cluster,
  the machine that makes the configs decides; a worker without native bfloat16 refuses a
  ``"bf16"`` run with a ``ValueError`` rather than emulate it).

**Where it applies** (:mod:`topobook.training.run`): every forward pass of a run, in training,
in the validation loss of each epoch and in the predictions of the evaluation (so a bf16 run's
evaluation is faster too); the diagrams recorded at ``diagram_epochs`` during training are
computed from float32 predictions. A configuration at ``"fp32"`` has exactly the identity it had
before the field existed (:meth:`~topobook.training.config.TrainConfig.identity` leaves the
default out), so finished runs are reused and a registered study's runs keep float32: to move a
study to bfloat16 is a new registration, not an option of its runs.

**Native only.** On a CPU without bfloat16 instructions, PyTorch emulates bfloat16 by conversions
to and from float32: slower than float32 and less accurate, so it is never chosen there.
``resolve_precision("auto")`` then gives ``"fp32"``, and an explicit ``"bf16"`` is a
``ValueError`` at training time (a configuration that names ``"bf16"`` can still be made, so that
the results of a bf16 study can be planned and read on any machine). On the machines of this
project with AVX-512 BF16, bf16 autocast cut a U-Net training step 1.5 to 1.7-fold
(``benchmarks/train_throughput.py`` measures it beside float32).

**Detection** (:func:`native_bf16`): for the CPU, the x86 features ``avx512_bf16`` (AVX-512 BF16,
e.g. Intel Cooper Lake and later, AMD Zen 4 and later) or ``amx_bf16`` (Intel AMX, Sapphire Rapids
and later), or the AArch64 ``bf16`` extension (Arm v8.6-A BF16: BFDOT / BFMMLA), as reported by
``torch.cpu.get_capabilities()`` (PyTorch's cpuinfo); where that function is missing, the flags
``avx512_bf16`` / ``amx_bf16`` of ``/proc/cpuinfo`` (Linux). Not
``torch.backends.cpu.get_cpu_capability()``: it names only the vector width PyTorch dispatches to
(``"AVX2"``, ``"AVX512"``), and plain AVX-512 has no bfloat16 arithmetic. Nor oneDNN's own check
(``torch.ops.mkldnn._is_mkldnn_bf16_supported()``), which is also true on AVX-512 CPUs that
emulate bfloat16. For CUDA, ``torch.cuda.is_bf16_supported(including_emulation=False)``
(compute capability 8.0, Ampere, and later).
"""

from __future__ import annotations

import contextlib
from functools import cache
from pathlib import Path

import torch

PRECISIONS = ("fp32", "bf16", "auto")
# CPU features (names of torch.cpu.get_capabilities()) that do bfloat16 arithmetic natively
NATIVE_BF16_FEATURES = ("avx512_bf16", "amx_bf16", "bf16")
_CPUINFO_FLAGS = ("avx512_bf16", "amx_bf16")  # the same features in /proc/cpuinfo's flags


def _check_precision(precision: str) -> str:
    if precision not in PRECISIONS:
        raise ValueError(f"precision must be one of {PRECISIONS}, got {precision!r}")
    return precision


def _device_type(device: torch.device | str) -> str:
    return torch.device(device).type


@cache
def _cpu_native_bf16() -> bool:
    capabilities = getattr(torch.cpu, "get_capabilities", None)
    if capabilities is not None:
        found = capabilities()
        return any(bool(found.get(name, False)) for name in NATIVE_BF16_FEATURES)
    try:  # an older PyTorch: the kernel's flags
        text = Path("/proc/cpuinfo").read_text()
    except OSError:
        return False
    flags = next((line.split(":", 1)[1].split() for line in text.splitlines()
                  if line.startswith("flags")), [])
    return any(flag in flags for flag in _CPUINFO_FLAGS)


def native_bf16(device: torch.device | str = "cpu") -> bool:
    """Whether ``device`` (``"cpu"`` by default, or ``"cuda"``) does bfloat16 arithmetic in
    hardware (module docstring: the CPU features read, and why not the others). Any other device
    type: ``False``."""
    kind = _device_type(device)
    if kind == "cpu":
        return _cpu_native_bf16()
    if kind == "cuda":
        return bool(torch.cuda.is_available()
                    and torch.cuda.is_bf16_supported(including_emulation=False))
    return False


def resolve_precision(requested: str, device: torch.device | str = "cpu") -> str:
    """The precision a run computes in: ``"fp32"`` or ``"bf16"``.

    ``requested``: one of :data:`PRECISIONS`. ``"auto"`` gives ``"bf16"`` where ``device`` does
    bfloat16 natively (:func:`native_bf16`), else ``"fp32"``; ``"fp32"`` is always allowed;
    ``"bf16"`` where it is not native raises ``ValueError`` (emulated bfloat16 would be slower
    than float32 and less accurate)."""
    _check_precision(requested)
    if requested == "fp32":
        return "fp32"
    native = native_bf16(device)
    if requested == "auto":
        return "bf16" if native else "fp32"
    if not native:
        kind = _device_type(device)
        raise ValueError(
            f"precision='bf16' was asked for, but this {kind} has no native bfloat16 arithmetic "
            "(CPU: AVX-512 BF16 or AMX; CUDA: compute capability 8.0 or later), where PyTorch "
            "would emulate it, slower than float32: train with precision='fp32', or 'auto' to "
            "use bfloat16 only where it is native, or run on a machine that has it"
        )
    return "bf16"


def autocast(
    precision: str, device: torch.device | str = "cpu"
) -> contextlib.AbstractContextManager:
    """The context of a run's forward passes: ``torch.autocast(device_type, dtype=torch.bfloat16)``
    for ``precision="bf16"`` (checked native by :func:`resolve_precision`: a ``ValueError``
    where it is not), a context that does nothing for ``"fp32"`` (no autocast at all, so float32
    runs compute exactly what they computed before this module). ``"auto"`` is resolved first.
    Wrap the forward pass only; call :func:`as_float32` on its output before the loss."""
    if resolve_precision(precision, device) == "fp32":
        return contextlib.nullcontext()
    return torch.autocast(_device_type(device), dtype=torch.bfloat16)


def as_float32(output: torch.Tensor) -> torch.Tensor:
    """The network's output as float32 (the same tensor when it already is: no copy, so float32
    runs are unchanged); under bf16 autocast the output is bfloat16, and the losses, sigmoid and
    persistence must see float32. The cast is differentiable."""
    return output if output.dtype == torch.float32 else output.float()
