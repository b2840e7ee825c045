"""TopoMortar: the loader (files, splits, checks) and the authors' metrics (topomortar_metrics)."""

import shutil
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from scipy import ndimage

from topobook.datasets import datafiles, topomortar
from topobook.metrics.topomortar_metrics import (
    BOOK_SCORE_KEYS,
    SCORE_KEYS,
    mortar_betti_numbers,
    topomortar_book_scores,
    topomortar_scores,
)

SHARED = Path(__file__).resolve().parents[2] / "shared" / "data" / "topomortar"
COMMIT = "f709b3c72f4f24f68239281292f854918707f95f"


@pytest.fixture(scope="module")
def test_set():
    return topomortar.load_topomortar("test")


# ---------------------------------------------------------------------------------------------
# the data


def test_registry_holds_the_shared_checksums_and_urls_are_pinned():
    registry = topomortar.topomortar_registry()
    pngs = {k: v for k, v in registry.items() if k.endswith(".png")}
    assert len(pngs) == 240  # 120 images and 120 labels
    assert sum(k.startswith("published_results/") for k in registry) == 160  # 2 x 8 x 10
    if (SHARED / "SHA256SUMS").is_file():
        shared = {
            name.removeprefix("./"): digest
            for digest, name in (line.split() for line in (SHARED / "SHA256SUMS").read_text()
                                 .splitlines())
        }
        assert pngs == shared
    base = f"https://raw.githubusercontent.com/jmlipman/TopoMortar/{COMMIT}/"
    url = topomortar.TOPOMORTAR_SOURCE.url
    assert url("train/images/001.png") == base + "dataset/train/images/001.png"
    small = topomortar.TOPOMORTAR_SOURCE.url("splits_small.yaml")
    assert small == base + "dataset/splits_small.yaml"
    assert (
        topomortar.TOPOMORTAR_SOURCE.url("published_results/supervised/accurate/large/TopoLoss/3.csv")
        == base + "results/supervised/accurate/large/TopoLoss/3.csv"
    )
    pooch_fetcher = datafiles.fetcher(topomortar.TOPOMORTAR_SOURCE)  # what a download would use
    for name, digest in registry.items():  # every URL well formed, every hash given (no download)
        address = pooch_fetcher.get_url(name)
        assert address == url(name)
        assert address.startswith(base) and " " not in address
        assert "//" not in address.removeprefix("https://")
        assert address.endswith(name.replace("published_results/", "results/"))
        assert pooch_fetcher.registry[name] == f"sha256:{digest}"


def test_load_conventions(test_set):
    images, masks, ids = test_set
    assert ids == tuple(f"{i:03d}" for i in range(71, 121))
    assert images.shape == (50, 3, 512, 512) and images.dtype == np.float32
    assert 0.0 <= images.min() and images.max() <= 1.0
    assert masks.shape == (50, 512, 512) and masks.dtype == np.uint8
    assert set(np.unique(masks)) == {0, 1}
    # 1 = mortar, the minority, thin network between bricks
    assert 0.15 < masks.mean() < 0.45
    # RGB, channels first: red bricks are redder than blue, and the channels differ
    red, blue = images[:, 0], images[:, 2]
    assert red[masks == 0].mean() > blue[masks == 0].mean()
    # the mask is the label file's 255 pixels
    label = np.asarray(Image.open(topomortar.topomortar_file("test/accurate/071.png")))
    assert np.array_equal(masks[0], (label == 255).astype(np.uint8))


def test_splits_sizes_and_ids():
    large = {s: topomortar.topomortar_ids(s, "large") for s in ("train", "val", "test")}
    small = {s: topomortar.topomortar_ids(s, "small") for s in ("train", "val", "test")}
    assert [len(large[s]) for s in ("train", "val", "test")] == [50, 20, 50]
    assert [len(small[s]) for s in ("train", "val", "test")] == [10, 20, 50]
    assert sorted(large["train"]) == [f"{i:03d}" for i in range(1, 51)]
    assert sorted(large["val"]) == [f"{i:03d}" for i in range(51, 71)]
    assert large["test"] == tuple(f"{i:03d}" for i in range(71, 121))
    assert large["train"][:3] == ("036", "048", "009")  # the authors' file order
    assert set(small["train"]) < set(large["train"])
    assert small["val"] == large["val"] and small["test"] == large["test"]
    loaded = topomortar.load_topomortar("train", size="small")
    assert loaded.ids == small["train"] and loaded.images.shape[0] == 10
    with pytest.raises(ValueError, match="split must be one of"):
        topomortar.topomortar_ids("test_ood")
    yaml = pytest.importorskip("yaml")  # the split files are read without it; check against it
    for size, filename in (("large", "splits.yaml"), ("small", "splits_small.yaml")):
        reference = yaml.safe_load(topomortar.topomortar_file(filename).read_text())[1]
        read = topomortar._split_paths(size)
        assert {k: list(v) for k, v in read.items()} == reference
    with pytest.raises(ValueError, match="size must be one of"):
        topomortar.topomortar_ids("train", "medium")


def test_out_of_distribution_images_are_refused_clearly():
    with pytest.raises(ValueError, match=r"200 is an out-of-distribution test image .*colors"):
        topomortar.load_topomortar(split=None, ids=["200"])
    with pytest.raises(ValueError, match="not a TopoMortar image id"):
        topomortar.load_topomortar(split=None, ids=["999"])
    with pytest.raises(ValueError, match="either a split or ids"):
        topomortar.load_topomortar("test", ids=["071"])
    one = topomortar.load_topomortar(split=None, ids=["051", "071"])
    assert one.ids == ("051", "071") and one.masks.shape == (2, 512, 512)


def _copy_layout(tmp_path, names):
    for name in names:
        target = tmp_path / name
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(topomortar.topomortar_file(name), target)


def test_environment_variable_wins_and_corruption_is_named(tmp_path, monkeypatch):
    names = ["dataset_types.txt", "splits.yaml", "test/images/071.png", "test/accurate/071.png"]
    _copy_layout(tmp_path, names)
    monkeypatch.setenv("TOPOBOOK_TOPOMORTAR", str(tmp_path))
    assert topomortar.topomortar_file("test/accurate/071.png") == tmp_path / "test/accurate/071.png"
    target = tmp_path / "test/accurate/071.png"
    target.write_bytes(target.read_bytes()[:-10] + b"corrupted!")
    corrupted = r"test/accurate/071\.png is corrupted.*Delete"
    with pytest.raises(datafiles.DataFileError, match=corrupted):
        topomortar.load_topomortar(split=None, ids=["071"])
    with pytest.raises(datafiles.DataFileError, match=r"TOPOMORTAR=.* has no file test/images/072"):
        topomortar.topomortar_file("test/images/072.png")
    with pytest.raises(KeyError, match="not a file of TopoMortar"):
        topomortar.topomortar_file("test/images/200.png")


def test_download_path_uses_pinned_urls_and_hashes(tmp_path, monkeypatch):
    """Without a local copy the loader asks pooch, with the pinned URL and the sha256."""
    import pooch

    monkeypatch.delenv("TOPOBOOK_TOPOMORTAR", raising=False)
    monkeypatch.setattr(datafiles, "SHARED_ROOT", tmp_path / "absent")
    name = "val/images/051.png"
    with pytest.raises(datafiles.DataFileError, match="not available locally"):
        topomortar.topomortar_file(name, download=False)
    seen = {}

    class FakeFetcher:
        def fetch(self, fname, progressbar):
            seen["name"] = fname
            raise ValueError("SHA256 hash of downloaded file does not match")

    def fake_create(**kwargs):
        seen.update(kwargs)
        return FakeFetcher()

    monkeypatch.setattr(pooch, "create", fake_create)
    missing = r"TopoMortar file val/images/051.png does not"
    with pytest.raises(datafiles.DataFileError, match=missing):
        topomortar.topomortar_file(name)
    assert seen["name"] == name
    assert seen["urls"][name].endswith(f"TopoMortar/{COMMIT}/dataset/val/images/051.png")
    assert seen["registry"][name] == "sha256:" + topomortar.topomortar_registry()[name]
    assert str(seen["path"]).endswith("topomortar")


def test_published_results_are_tidy():
    results = topomortar.load_published_results("large")
    assert list(results.columns) == [
        "training_set", "loss", "seed", "id", "in_distribution", *SCORE_KEYS, "hd95"
    ]
    assert sorted(results["loss"].unique()) == sorted(topomortar.PUBLISHED_LOSSES)
    assert len(topomortar.PUBLISHED_LOSSES) == 8
    counts = results.groupby(["loss", "seed"]).size()
    assert len(counts) == 80 and (counts == 50).all()  # 8 losses x 10 seeds, 50 images each
    assert set(results["id"]) == {f"{i:03d}" for i in range(71, 121)}
    assert results["in_distribution"].all() and len(results) == 4000
    # a value read from the file, by hand: CEDiceLoss seed 1, image 071 (see its first row)
    row = results[(results.loss == "CEDiceLoss") & (results.seed == 1) & (results.id == "071")]
    first = (SHARED / "published_results/supervised/accurate/large/CEDiceLoss/1.csv")
    if first.is_file():
        header, values = first.read_text().splitlines()[:2]
        raw = dict(zip(header.split(","), values.split(","), strict=True))
        assert row["betti1_error"].item() == int(raw["Betti1Error_mortar"])
        assert row["dice"].item() == pytest.approx(float(raw["Dice_mortar"]))
    everything = topomortar.load_published_results("small", in_distribution=False)
    assert len(everything) == 80 * 350 and (~everything["in_distribution"]).sum() == 80 * 300
    with pytest.raises(ValueError, match="size"):
        topomortar.load_published_results("huge")


# ---------------------------------------------------------------------------------------------
# the authors' metrics: hand examples


def _ring(size=12):
    mask = np.zeros((size, size), np.uint8)
    mask[2:10, 2:10] = 1
    mask[4:8, 4:8] = 0
    return mask


def test_betti_numbers_by_hand():
    assert mortar_betti_numbers(_ring()) == (1, 1)  # one mortar ring around one brick
    two = np.zeros((8, 8), np.uint8)
    two[1:3, 1:3] = 1
    two[5:7, 5:7] = 1
    assert mortar_betti_numbers(two) == (2, 0)
    diagonal = np.zeros((4, 4), np.uint8)
    diagonal[1, 1] = diagonal[2, 2] = 1
    assert mortar_betti_numbers(diagonal) == (1, 0)  # mortar is 8-connected
    holes = np.ones((5, 5), np.uint8)
    holes[1, 1] = holes[2, 2] = 0
    assert mortar_betti_numbers(holes) == (1, 2)  # bricks are 4-connected
    assert mortar_betti_numbers(np.ones((5, 5), np.uint8)) == (1, 0)
    # the authors' quirk: no mortar at all still gives one component (the whole image at level 1)
    assert mortar_betti_numbers(np.zeros((5, 5), np.uint8)) == (1, 0)


def test_scores_hand_examples():
    ring = _ring()
    perfect = topomortar_scores(ring, ring)
    assert tuple(perfect) == SCORE_KEYS
    assert perfect == {
        "betti0_error": 0, "betti1_error": 0, "betti0_error_local": 0.0,
        "betti1_error_local": 0.0, "cldice": 1.0, "dice": 1.0,
    }
    broken = ring.copy()
    broken[2:4, 6] = 0  # cut the ring (2 pixels wide): the brick opens into the outside
    s = topomortar_scores(broken, ring)
    assert (s["betti0_error"], s["betti1_error"]) == (0, 1)
    assert s["betti0_error_local"] == 0.0 and s["betti1_error_local"] == 1.0  # one window here
    # Dice by hand: |ring| = 64 - 16 = 48, |broken| = 46, all of broken inside the ring
    assert s["dice"] == 2 * 46 / (48 + 46)
    two = broken.copy()
    two[6, 8:10] = 0  # cut the right side too: two pieces of mortar
    assert topomortar_scores(two, ring)["betti0_error"] == 1
    empty = np.zeros_like(ring)
    both_empty = topomortar_scores(empty, empty)
    assert both_empty["dice"] == 0.0 and np.isnan(both_empty["cldice"])  # medpy 0, numpy 0/0
    assert both_empty["betti0_error"] == 0
    nothing = topomortar_scores(empty, ring)
    assert nothing["betti0_error"] == 0 and nothing["betti1_error"] == 1  # b0 = 1 on both sides
    assert nothing["dice"] == 0.0 and np.isnan(nothing["cldice"])
    full = np.ones_like(ring)
    s = topomortar_scores(full, ring)
    assert (s["betti0_error"], s["betti1_error"]) == (0, 1)
    assert s["dice"] == pytest.approx(2 * 48 / (48 + 144))
    # the truth's skeleton lies in the full mask (tprec 1); the full mask's skeleton, a point or
    # a short line in the middle, lies in the brick: tsens 0, so clDice = 0
    assert s["cldice"] == 0.0


def test_cldice_by_hand_against_skimage():
    from skimage.morphology import skeletonize

    rng = np.random.default_rng(1)
    truth = (ndimage.gaussian_filter(rng.random((64, 64)), 2) > 0.5).astype(np.uint8)
    pred = (ndimage.gaussian_filter(rng.random((64, 64)), 2) > 0.5).astype(np.uint8) | truth
    skel_t, skel_p = skeletonize(truth.astype(bool)), skeletonize(pred.astype(bool))
    a = (pred * skel_t).sum() / skel_t.sum()
    b = (truth * skel_p).sum() / skel_p.sum()
    assert topomortar_scores(pred, truth)["cldice"] == pytest.approx(2 * a * b / (a + b), abs=0)
    assert a == 1.0  # pred covers truth, so their "tprec" is exactly 1 here


def test_local_windows_are_the_128_grid():
    truth = np.zeros((256, 384), np.uint8)  # 2 x 3 windows
    truth[::16] = 1
    truth[:, ::16] = 1  # a grid of mortar: 7 x 7 bricks enclosed in each window
    pred = truth.copy()
    pred[0:128, 128:256] = 0  # window (0, 1) loses all its mortar
    s = topomortar_scores(pred, truth)
    b_window = mortar_betti_numbers(truth[0:128, 128:256])
    # only that window differs; its prediction has b0 = 1 (no mortar), b1 = 0
    assert s["betti0_error_local"] == pytest.approx(abs(b_window[0] - 1) / 6)
    assert s["betti1_error_local"] == pytest.approx(b_window[1] / 6)
    odd = topomortar_scores(pred[:200, :300], truth[:200, :300])  # windows cut at the edges
    assert np.isfinite(odd["betti1_error_local"])


def test_orientation_changes_only_cldice():
    rng = np.random.default_rng(0)
    truth = (ndimage.gaussian_filter(rng.random((256, 256)), 3) > 0.5).astype(np.uint8)
    pred = truth.copy()
    pred[rng.random(pred.shape) < 0.02] ^= 1
    plain, monai = topomortar_scores(pred, truth), topomortar_scores(pred, truth, True)
    assert monai == topomortar_scores(pred.T, truth.T)
    for key in SCORE_KEYS:
        if key != "cldice":
            assert plain[key] == monai[key]
    assert plain["cldice"] != monai["cldice"]  # Zhang's thinning is not transpose-equivariant


def test_bad_input():
    ring = _ring()
    with pytest.raises(ValueError, match="255"):
        topomortar_scores(ring * 255, ring)
    with pytest.raises(ValueError, match="binary"):
        topomortar_scores(ring * 0.5, ring)
    with pytest.raises(ValueError, match="NaN"):
        topomortar_scores(np.full(ring.shape, np.nan), ring)
    with pytest.raises(ValueError, match="same shape"):
        topomortar_scores(ring[:-1], ring)
    with pytest.raises(ValueError, match="2-D"):
        topomortar_scores(ring[None], ring[None])


# ---------------------------------------------------------------------------------------------
# the authors' metrics on the real labels


def test_betti_numbers_reproduce_the_authors_table(test_set):
    """betti_numbers.csv, computed by the authors: Betti-0 and Betti-1 of all 50 test labels."""
    published = topomortar.published_betti_numbers()
    assert len(published) == 350
    pairs = list(zip(test_set.ids, test_set.masks, strict=True))
    theirs = {i: published[i][:2] for i in test_set.ids}
    assert all(published[i][2] == 0 for i in test_set.ids)
    # all 50 by labelling and by union-find, two counts independent of each other ...
    assert {i: mortar_betti_numbers(m, "labels") for i, m in pairs} == theirs
    assert {i: mortar_betti_numbers(m, "unionfind") for i, m in pairs} == theirs
    # ... and every fifth by gudhi's cubical persistence, the authors' own count (the slowest,
    # 512 x 512 each; test_betti_by_labels_equals_gudhi compares the three on random masks)
    sample = pairs[::5]
    assert {i: mortar_betti_numbers(m) for i, m in sample} == {i: theirs[i] for i, _ in sample}


def test_betti_by_labels_equals_gudhi():
    rng = np.random.default_rng(0)
    for i in range(200):
        h, w = (int(v) for v in rng.integers(1, 40, 2))
        if i % 2:
            mask = (rng.random((h, w)) < rng.random()).astype(np.uint8)
        else:
            smooth = ndimage.gaussian_filter(rng.random((h, w)), 1)
            mask = (smooth > rng.uniform(0.3, 0.7)).astype(np.uint8)
        gudhi = mortar_betti_numbers(mask)
        assert gudhi == mortar_betti_numbers(mask, "labels"), (h, w, i)
        assert gudhi == mortar_betti_numbers(mask, "unionfind"), (h, w, i)
    truth = ndimage.gaussian_filter(rng.random((300, 260)), 3) > 0.5
    pred = truth ^ (rng.random(truth.shape) < 0.02)
    assert topomortar_scores(pred, truth) == topomortar_scores(pred, truth, betti="labels")
    assert topomortar_scores(pred, truth) == topomortar_scores(pred, truth, betti="unionfind")
    with pytest.raises(ValueError, match="betti method"):
        topomortar_scores(pred, truth, betti="ripser")


def test_betti_by_unionfind_on_real_windows_and_predictions(test_set):
    """The evaluation's counter (union-find) against labelling (scipy.ndimage.label), an
    independent count, on every 128 x 128 window (strided views, as the local errors take them)
    of the 50 test labels and of predictions made from them (mortar thickened, thinned, with
    speckle: many small components and holes), and against gudhi on a sample of them (8 masks)."""
    rng = np.random.default_rng(5)
    checked_with_gudhi = 0
    for k, truth in enumerate(test_set.masks):
        thick = ndimage.binary_dilation(truth, iterations=int(rng.integers(1, 3)))
        thin = ndimage.binary_erosion(truth)
        speckle = truth ^ (rng.random(truth.shape) < 0.01)
        for mask in (truth, thick.astype(np.uint8), thin.astype(np.uint8), speckle):
            mask = mask.astype(np.uint8)
            assert mortar_betti_numbers(mask, "unionfind") == mortar_betti_numbers(mask, "labels")
            for y in range(0, 512, 128):
                for x in range(0, 512, 128):
                    window = mask[y : y + 128, x : x + 128]
                    uf = mortar_betti_numbers(window, "unionfind")
                    assert uf == mortar_betti_numbers(window, "labels"), (k, y, x)
            if k % 25 == 0:
                assert mortar_betti_numbers(mask, "unionfind") == mortar_betti_numbers(mask)
                checked_with_gudhi += 1
    assert checked_with_gudhi == 8


def test_evaluation_scores_are_unchanged_by_the_unionfind_count(test_set):
    """evaluate_predictions (union-find counts) gives the numbers of the authors' gudhi counts."""
    rng = np.random.default_rng(6)
    truth = test_set.masks[:2]
    smooth = np.stack([ndimage.gaussian_filter(1.0 - t, 2.0) for t in truth])
    brick = np.clip(smooth + 0.2 * rng.standard_normal(smooth.shape), 0, 1).astype(np.float32)
    scored = topomortar.evaluate_predictions(brick, truth, book_scores=False)
    for i in range(2):
        pred = topomortar.mortar_prediction(brick[i])
        expected = topomortar_scores(pred, truth[i], monai_axes=True, betti="gudhi")
        assert {key: scored[key][i] for key in SCORE_KEYS} == pytest.approx(
            expected, nan_ok=True, rel=0, abs=0)


def test_evaluate_takes_the_validation_mortar_from_the_targets():
    """evaluate() scores the validation images against 1 - the training targets it is given:
    the same numbers as against the mortar read from the label files."""
    from topobook.training.config import TrainConfig

    config = TrainConfig(dataset="topomortar", train_slices=(1,), val_slices=(51, 52),
                         eval_slices=(71,))
    (_, _), (_, val_bricks) = topomortar.load_training_data(config)
    _, val_mortar = topomortar.load_images(config.val_slices)
    _, test_mortar = topomortar.load_images(config.eval_slices)
    rng = np.random.default_rng(7)
    val_p = np.clip(val_bricks + 0.4 * rng.standard_normal(val_bricks.shape), 0, 1)
    test_p = np.clip(1.0 - test_mortar + 0.4 * rng.standard_normal(test_mortar.shape), 0, 1)
    result = topomortar.evaluate(config, test_p.astype(np.float32), test_mortar,
                                 val_p.astype(np.float32), val_bricks)
    expected = topomortar.mean_scores(
        topomortar.evaluate_predictions(val_p, val_mortar, book_scores=False))
    assert result["val_mean"] == pytest.approx(expected, nan_ok=True, rel=0, abs=0)


def test_real_label_scores(test_set):
    truth = test_set.masks[0]
    assert topomortar_scores(truth, truth)["betti1_error_local"] == 0.0
    pred = ndimage.binary_dilation(truth, iterations=2).astype(np.uint8)  # thicker mortar
    s = topomortar_scores(pred, truth, betti="labels")  # the same numbers as gudhi's (tested)
    assert s["betti1_error"] > 0  # small bricks vanish
    assert 0.5 < s["dice"] < 1 and 0.5 < s["cldice"] <= 1


# ---------------------------------------------------------------------------------------------
# the book's own scores


def test_book_scores():
    from topobook.metrics.isbi_challenge import isbi_scores
    from topobook.topology.betti_matching import betti_matching_error

    ring = _ring()
    perfect = topomortar_book_scores(ring, ring)
    assert tuple(perfect) == BOOK_SCORE_KEYS
    assert perfect["betti_matching_error"] == 0 and perfect["v_rand"] == pytest.approx(1.0)
    two_bricks = np.ones((12, 20), np.uint8)
    two_bricks[2:10, 2:9] = 0
    two_bricks[2:10, 11:18] = 0
    merged = two_bricks.copy()
    merged[4:6, 9:11] = 0  # a gap in the mortar joins the two bricks
    s = topomortar_book_scores(merged, two_bricks)
    # bricks as foreground: two brick components in the truth, one in the prediction
    assert s["betti_matching_error_0"] == 1 and s["betti_matching_error"] == 1
    assert s["betti_matching_error"] == betti_matching_error(1 - merged, 1 - two_bricks)[
        "betti_matching_error"]
    assert s["v_rand"] < 1
    assert s["v_rand"] == isbi_scores((1 - merged).astype(float), 1 - two_bricks)["v_rand"]


def test_published_values_agree_with_the_conventions():
    """Their predictions are not published, so their values cannot be recomputed; what can be
    checked is that the published numbers have the form our reading of their code implies."""
    results = topomortar.load_published_results("large", in_distribution=False)
    for key in ("betti0_error_local", "betti1_error_local"):  # means over 16 windows
        sixteenths = results[key].to_numpy() * 16
        assert np.array_equal(sixteenths, np.round(sixteenths))
    for key in ("betti0_error", "betti1_error"):
        assert results[key].dtype.kind == "i" and (results[key] >= 0).all()
    # no overlap (Dice 0) makes both of their skeleton ratios 0, and 0 / 0 is NaN: the rows
    # with Dice 0 (all out-of-distribution images) have clDice NaN, as our function gives
    disjoint = results[results["dice"] == 0]
    assert len(disjoint) > 0 and disjoint["cldice"].isna().all()
    assert not disjoint["in_distribution"].any()
    ring = _ring()
    outside = np.zeros_like(ring)
    outside[0, :] = 1
    s = topomortar_scores(outside, ring)
    assert s["dice"] == 0.0 and np.isnan(s["cldice"])
