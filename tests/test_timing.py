"""topobook.study.timing.training_step_ms: what it returns and what it refuses (no timing
asserts)."""

import math

import pytest
import torch

from topobook.datasets.synthetic import synthetic_em
from topobook.losses.topological import TOPO_LOSSES
from topobook.study.timing import LOSS_STEP_SETTINGS, training_step_ms

TINY = dict(repeats=1, warmup=0, width=2, depth=1, patch_size=16)


@pytest.fixture(scope="module")
def em():
    return synthetic_em(n_images=2, size=32, n_cells=6, seed=0)


def test_one_median_per_loss_in_order(em):
    settings = {
        "bce": {"loss": "none"},
        "cldice": {"loss": "cldice", "lam": 0.5, "iterations": 2},
        "topo": {"loss": "topo", "lam": 1.0, "complex": "vertex"},
    }
    result = training_step_ms(settings, images=em[0], masks=em[1], **TINY)
    assert list(result) == list(settings)
    assert all(math.isfinite(v) and v > 0 for v in result.values())


def test_default_settings_cover_every_loss_of_the_book(em):
    assert {s["loss"] for s in LOSS_STEP_SETTINGS.values()} == set(TOPO_LOSSES)
    result = training_step_ms(images=em[0], masks=em[1], **TINY)
    assert list(result) == list(LOSS_STEP_SETTINGS)


def test_thread_count_is_restored(em):
    before = torch.get_num_threads()
    training_step_ms({"bce": {"loss": "none"}}, threads=1, images=em[0], masks=em[1], **TINY)
    assert torch.get_num_threads() == before


@pytest.mark.parametrize(
    "settings, error, message",
    [
        ({}, ValueError, "non-empty"),
        ({"x": {"lam": 1.0}}, ValueError, "'loss' key"),
        ({"x": {"loss": "dice", "lam": 1.0}}, ValueError, "loss must be one of"),
        ({"x": {"loss": "cldice", "lam": 0.0}}, ValueError, "lam must be > 0"),
        ({"x": {"loss": "cldice", "lam": 1.0, "iters": 3}}, TypeError, "iters"),
        ({"x": {"loss": "none", "matching": "birth"}}, TypeError, "no keyword"),
    ],
)
def test_bad_settings_raise_before_timing(em, settings, error, message):
    with pytest.raises(error, match=message):
        training_step_ms(settings, images=em[0], masks=em[1], **TINY)


@pytest.mark.parametrize(
    "kwargs, message",
    [
        (dict(repeats=0), "repeats"),
        (dict(warmup=-1), "warmup"),
        (dict(threads=0), "threads"),
        (dict(repeats=2.5), "repeats"),
        (dict(batch=0), "batch"),
        (dict(clock="gpu"), "clock"),
    ],
)
def test_bad_counts_raise(em, kwargs, message):
    args = {**TINY, **kwargs}
    with pytest.raises(ValueError, match=message):
        training_step_ms({"bce": {"loss": "none"}}, images=em[0], masks=em[1], **args)


def test_images_without_masks_raise(em):
    with pytest.raises(ValueError, match="both images and masks"):
        training_step_ms({"bce": {"loss": "none"}}, images=em[0], **TINY)


def test_a_batch_of_crops_with_group_norm_and_every_clock(em):
    # the stable recipe's step: several crops, group normalisation; the process clock counts
    # the time of every thread (the gudhi backend's threads included)
    settings = {"bce": {"loss": "none"}, "topo": {"loss": "topo", "lam": 1.0, "reduction": "mean"}}
    for clock in ("wall", "cpu", "process"):
        result = training_step_ms(
            settings, images=em[0], masks=em[1], batch=3, norm="group", clock=clock, **TINY
        )
        assert list(result) == list(settings)
        assert all(math.isfinite(v) and v > 0 for v in result.values())


def test_batch_term_ms_reports_each_case():
    from topobook.study.timing import batch_term_ms

    rows = batch_term_ms(batch=3, size=12, repeats=1, threads=(1,))
    assert list(rows) == ["serial", "one call, 1 thread(s)"]
    for row in rows.values():
        assert set(row) == {"wall", "cpu"} and all(math.isfinite(v) and v > 0 for v in row.values())
