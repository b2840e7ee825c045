"""topobook.study.chapter6: the runs, the patch and the split of the notebook loss that the
three pages of chapter 6 share, on hand-made inputs."""

import json

import numpy as np
import pytest
import torch

from topobook.losses.topological import topological_loss
from topobook.study import chapter6
from topobook.training.run import predict
from topobook.training.unet import UNet


def _write_run(results, name, seed, **config):
    folder = results / name / f"seed{seed}"
    folder.mkdir(parents=True)
    (folder / "metrics.json").write_text(json.dumps({"config": {"seed": seed, **config}}))
    return folder


def test_runs_by_name_sorts_by_seed_and_names_missing_folders(tmp_path):
    _write_run(tmp_path, "baseline", 1)
    _write_run(tmp_path, "baseline", 0)
    _write_run(tmp_path, "cldice", 0)
    by_run = chapter6.runs_by_name(tmp_path, ["baseline", "cldice", "baseline"])
    assert list(by_run) == ["baseline", "cldice"]
    assert [r["config"]["seed"] for r in by_run["baseline"]] == [0, 1]
    assert by_run["cldice"][0]["run"] == "cldice"
    with pytest.raises(FileNotFoundError, match=r"betti_matching.*execute the training pages"):
        chapter6.runs_by_name(tmp_path, ["baseline", "betti_matching"])


def test_patch_window_by_hand_and_outside_the_image():
    image = np.arange(30).reshape(5, 6)
    window = chapter6.patch_window([1, 2], 3, image.shape)
    assert window == (slice(1, 4), slice(2, 5))
    assert image[window].tolist() == [[8, 9, 10], [14, 15, 16], [20, 21, 22]]
    assert image[chapter6.patch_window((2, 3), 3, image.shape)].shape == (3, 3)  # to the edge
    with pytest.raises(ValueError, match=r"leaves the image of shape \(5, 6\)"):
        chapter6.patch_window((3, 0), 3, image.shape)
    with pytest.raises(ValueError, match="leaves the image"):
        chapter6.patch_window((-1, 0), 2, image.shape)
    with pytest.raises(ValueError, match="at least 1"):
        chapter6.patch_window((0, 0), 0, image.shape)


def test_patch_prediction_uses_the_selected_weights_or_says_none_exist(tmp_path):
    rng = np.random.default_rng(0)
    images = rng.random((1, 16, 16)).astype(np.float32)
    truth = np.zeros((8, 8))
    truth[2:6, 2:6] = 1
    window = (slice(4, 12), slice(8, 16))
    folder = _write_run(tmp_path, "baseline", 3, width=2, depth=1, norm="group")
    run = chapter6.runs_by_name(tmp_path, ["baseline"])["baseline"][0]

    stand_in, source = chapter6.patch_prediction(run, images, window, truth)
    assert source.startswith("NO WEIGHTS in ") and "model.pt" in source
    assert np.array_equal(stand_in, chapter6.stand_in_prediction(truth))
    assert stand_in.shape == (8, 8) and 0.1 <= stand_in.min() < stand_in.max() <= 0.9
    assert stand_in[3, 3] > stand_in[0, 0]  # brighter inside the cell

    torch.manual_seed(0)
    model = UNet(base_width=2, depth=1, norm="group")
    torch.save(model.state_dict(), folder / "model.pt")
    prediction, source = chapter6.patch_prediction(run, images, window, truth)
    assert source == "baseline, seed 3 (selected weights)"
    assert prediction.dtype == np.float64 and prediction.shape == (8, 8)
    np.testing.assert_allclose(prediction, predict(model, images)[0][window], rtol=1e-6)


def _sorted_value_term(f, g):
    """2 * sum over the pixel ranks but the top one of (f_(i) - g_(i))^2, in numpy."""
    fs, gs = np.sort(f.ravel())[:-1], np.sort(g.ravel())[:-1]
    return 2 * float(np.sum((fs - gs) ** 2))


def test_notebook_loss_parts_add_up_and_the_control_is_the_sorted_value_term():
    rng = np.random.default_rng(1)
    truth = np.ones((7, 7))
    truth[3, :] = 0  # two cells and a membrane line
    truth[:, 4] = 0
    likelihood = np.clip(0.7 * truth + 0.3 * rng.random((7, 7)), 0, 1)
    parts = chapter6.notebook_loss_parts(likelihood, truth)
    assert list(parts.index) == list(chapter6.NOTEBOOK_LOSS_PARTS)
    f, g = torch.tensor(likelihood), torch.tensor(truth)
    total = topological_loss(f, g, **chapter6.NOTEBOOK_LOSS).item()
    assert parts["value"].sum() == pytest.approx(total, rel=1e-9)
    assert parts["share of the notebook loss"].sum() == pytest.approx(1.0)
    assert parts.loc["sorted-value term (the control)", "value"] == pytest.approx(
        _sorted_value_term(likelihood, truth), rel=1e-12)
    positive_h1 = topological_loss(f, g, matching="birth", complex="freudenthal", dims=(1,))
    assert parts.loc["H1 bars of positive length", "value"] == pytest.approx(positive_h1.item())
    assert parts.loc["what the zero-length H1 bars add", "value"] > 0  # bars one per edge


def test_notebook_loss_parts_of_a_perfect_prediction_are_zero():
    truth = np.zeros((5, 5))
    truth[1:4, 1:4] = 1
    parts = chapter6.notebook_loss_parts(truth, truth)
    assert parts["value"].abs().max() == pytest.approx(0.0, abs=1e-12)
    assert parts["share of the notebook loss"].isna().all()  # no loss to share out
