"""Branched runs (topobook.training.trunk): a branch is its baseline until its term starts, and
gives the same numbers whether it trains its trunk or loads it."""

import dataclasses

import pytest
import torch
from test_train import TINY as TRAIN_TINY

from topobook.training.config import TrainConfig
from topobook.training.run import train
from topobook.training.trunk import (
    branch_cost,
    describe,
    epochs_to_save,
    trunk_identity,
    trunk_key,
)

# the training tests' tiny runs, one epoch longer so that a branch has an epoch of its own
TINY = {**TRAIN_TINY, "epochs": 3}
BRANCH = dict(strategy="topo_loss", lam=0.01, topo_start_epoch=2, **TINY)


def _weights(run_dir):
    return torch.load(run_dir / "model.pt")


def test_a_branch_gives_the_same_numbers_from_a_loaded_trunk_as_from_its_own(tmp_path):
    baseline = TrainConfig(trunk_epochs=(2,), **TINY)
    branch = TrainConfig(**BRANCH)
    alone = train(branch, tmp_path / "alone" / "topo" / "seed0", progress=False)
    assert alone["trunk"]["loaded"] is False and alone["trunk"]["epoch"] == 2

    shared = tmp_path / "shared"
    base = train(baseline, shared / "baseline" / "seed0", progress=False)
    assert base["trunk"] is None  # the baseline saves the trunk but is no branch
    assert [p.name for p in (shared / "_trunks").iterdir()] == [f"{trunk_key(branch, 2)}.pt"]
    loaded = train(branch, shared / "topo" / "seed0", progress=False)
    assert loaded["trunk"]["loaded"] is True

    assert loaded["history"] == alone["history"]
    assert loaded["mean"] == alone["mean"]
    for key, value in _weights(shared / "topo" / "seed0").items():
        assert torch.equal(value, _weights(tmp_path / "alone" / "topo" / "seed0")[key]), key
    # the shared epochs are the baseline's, term and all; the branch differs after them
    assert loaded["history"][:2] == base["history"][:2]
    assert all(h["train_topo"] == 0 and h["val_topo"] == 0 for h in loaded["history"][:2])
    assert loaded["history"][2]["train_topo"] > 0
    assert loaded["history"][2]["train_bce"] != base["history"][2]["train_bce"]


def test_a_trunk_of_another_configuration_is_not_loaded(tmp_path):
    other_seed = TrainConfig(seed=1, trunk_epochs=(2,), **TINY)
    train(other_seed, tmp_path / "baseline" / "seed1", progress=False)
    branch = train(TrainConfig(**BRANCH), tmp_path / "topo" / "seed0", progress=False)
    assert branch["trunk"]["loaded"] is False
    assert len(list((tmp_path / "_trunks").iterdir())) == 2  # seed 1's, and the branch's own


def test_trunk_identity_ignores_the_term_and_only_the_term():
    branch = TrainConfig(**BRANCH)
    assert trunk_identity(branch) == trunk_identity(TrainConfig(**TINY))
    for change in ({"lam": 0.1}, {"loss": "cldice"}, {"topo_start_epoch": 1}):
        assert trunk_identity(dataclasses.replace(branch, **change)) == trunk_identity(branch)
    for change in ({"seed": 1}, {"lr": 2e-3}, {"membrane_weight": 2.0}, {"epochs": 4}):
        assert trunk_identity(dataclasses.replace(branch, **change)) != trunk_identity(branch)
    two_channel = TrainConfig(strategy="topo_input", input_mode="modified", **TINY)
    both = TrainConfig(
        strategy="topo_loss+topo_input", input_mode="modified", lam=0.01, topo_start_epoch=1,
        **TINY,
    )
    assert trunk_identity(both) == trunk_identity(two_channel)
    assert trunk_identity(both) != trunk_identity(branch)


def test_which_runs_are_branches_and_what_they_save():
    assert TrainConfig(**BRANCH).branch_epoch == 2
    assert TrainConfig(**{**BRANCH, "topo_start_epoch": 0}).branch_epoch == 0  # from scratch
    assert TrainConfig(**{**BRANCH, "lam": 0.0}).branch_epoch == 0  # no term: a baseline
    # the authors' protocol selects on the loss with the term, so its trunk is its own
    authors = TrainConfig(protocol="authors", **{**BRANCH, "eval_slices": None, "val_slices": None})
    assert authors.selection == "val_total" and authors.branch_epoch == 0
    assert epochs_to_save(TrainConfig(**BRANCH)) == (2,)
    assert epochs_to_save(TrainConfig(trunk_epochs=(1, 2), **TINY)) == (1, 2)
    assert branch_cost(TrainConfig(**BRANCH)) == pytest.approx(1 / 3)
    assert "after epoch 2 of 3" in describe(TrainConfig(**BRANCH))
    assert TrainConfig(**TINY).identity() == TrainConfig(trunk_epochs=(2,), **TINY).identity()


@pytest.mark.parametrize(
    ("values", "match"),
    [
        ({"trunk_epochs": (3,)}, r"trunk_epochs must lie in \[1, epochs\)"),
        ({"trunk_epochs": (0,)}, r"trunk_epochs must lie"),
        ({**BRANCH, "trunk_epochs": (1, 2)}, None),
    ],
)
def test_trunk_epochs_are_checked(values, match):
    values = {**TINY, **values}
    if match is None:  # up to its branch epoch a branch is its trunk: allowed
        assert TrainConfig(**values).trunk_epochs == (1, 2)
        with pytest.raises(ValueError, match="ask the baseline run"):
            TrainConfig(**{**values, "topo_start_epoch": 1})
        return
    with pytest.raises(ValueError, match=match):
        TrainConfig(**values)
    with pytest.raises(ValueError, match="a trunk epoch must lie"):
        trunk_key(TrainConfig(**TINY), 3)


def test_a_study_run_carries_its_registration_in_its_identity():
    sha = "ab" * 32
    plain, registered = TrainConfig(**TINY), TrainConfig(registration_sha256=sha, **TINY)
    assert "registration_sha256" not in plain.identity()
    assert registered.identity()["registration_sha256"] == sha
    assert trunk_identity(registered) != trunk_identity(plain)  # a study's trunks are its own
    for bad in ("AB" * 32, "ab" * 31, "xyz"):
        with pytest.raises(ValueError, match="registration_sha256"):
            TrainConfig(registration_sha256=bad, **TINY)


def test_trunks_are_kept_in_the_results_folder_and_never_above_the_callers_folder(tmp_path):
    from topobook.training.trunk import TRUNK_FOLDER, default_trunk_dir

    results = tmp_path / "results"
    assert default_trunk_dir(results / "baseline" / "seed3") == results.resolve() / TRUNK_FOLDER
    # a folder outside the <results>/<run>/seed<k> layout: its trunks stay beside it
    assert default_trunk_dir(tmp_path / "my_run") == tmp_path.resolve() / TRUNK_FOLDER
    assert default_trunk_dir(tmp_path / "seedling") == tmp_path.resolve() / TRUNK_FOLDER


def test_own_train_seconds_leaves_out_a_loaded_trunk_only():
    from topobook.training.trunk import own_train_seconds

    assert own_train_seconds({"train_seconds": 100.0, "trunk": None}) == 100.0
    assert own_train_seconds(
        {"train_seconds": 100.0, "trunk": {"seconds": 70.0, "loaded": True}}) == 30.0
    assert own_train_seconds(
        {"train_seconds": 100.0, "trunk": {"seconds": 70.0, "loaded": False}}) == 100.0
