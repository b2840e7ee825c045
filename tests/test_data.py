import hashlib
import shutil
from pathlib import Path

import numpy as np
import pytest
from scipy import ndimage

from topobook.datasets import datafiles, isbi2012, synthetic
from topobook.training import patches

SHARED = Path(__file__).resolve().parents[2] / "shared" / "data" / "isbi2012"


def test_registry_matches_shared_checksums():
    registry = isbi2012.isbi_registry()
    assert len(registry) == 90
    if (SHARED / "SHA256SUMS").is_file():
        shared = dict(
            line.split()[::-1] for line in (SHARED / "SHA256SUMS").read_text().splitlines()
        )
        assert registry == shared


def test_urls_point_at_the_pinned_upstream_names():
    assert isbi2012.isbi_url("train/images/07.png").endswith(
        "b45af4d458437d8281cc218a07fd4380818ece4a/data/membrane/train/image/7.png"
    )
    assert isbi2012.isbi_url("train/labels/00.png").endswith("/train/label/0.png")
    assert isbi2012.isbi_url("test/images/29.png").endswith("/data/membrane/test/29.png")


def test_load_isbi_conventions():
    images, masks = isbi2012.load_isbi([0, 29])
    assert images.shape == masks.shape == (2, 512, 512)
    assert images.dtype == np.float32 and 0.0 <= images.min() and images.max() <= 1.0
    assert masks.dtype == np.uint8 and set(np.unique(masks)) == {0, 1}
    # 1 = cell interior: cells are brighter than membranes, and membranes are the minority.
    assert images[masks == 1].mean() > images[masks == 0].mean()
    assert 0.1 < 1 - masks.mean() < 0.35
    test_images, none = isbi2012.load_isbi([3], split="test")
    assert test_images.shape == (1, 512, 512) and none is None


def test_split_is_contiguous_and_disjoint():
    split = isbi2012.train_eval_split()
    assert [split[f"{k}_images"].shape[0] for k in ("train", "val", "eval")] == [21, 3, 6]
    every = (
        isbi2012.DEFAULT_TRAIN_SLICES + isbi2012.DEFAULT_VAL_SLICES + isbi2012.DEFAULT_EVAL_SLICES
    )
    assert sorted(every) == list(range(30))  # disjoint and complete
    with pytest.raises(ValueError, match="overlap"):
        isbi2012.train_eval_split([0, 1, 2], [2, 3])
    with pytest.raises(ValueError, match="val and eval slices overlap"):
        isbi2012.train_eval_split([0], [2, 3], val_slices=[3])
    assert isbi2012.train_eval_split([0], [1], val_slices=())["val_images"] is None
    with pytest.raises(ValueError, match="0..29"):
        isbi2012.load_isbi([30])


def test_corrupted_file_is_named(tmp_path, monkeypatch):
    for sub in ("train/images", "train/labels", "test/images"):
        (tmp_path / sub).mkdir(parents=True)
    source = isbi2012.isbi_file("train/images/00.png")
    target = tmp_path / "train/images/00.png"
    shutil.copy(source, target)
    monkeypatch.setenv("TOPOBOOK_DATA", str(tmp_path))
    assert isbi2012.isbi_file("train/images/00.png") == target  # TOPOBOOK_DATA comes first
    target.write_bytes(target.read_bytes()[:-10] + b"corrupted!")
    with pytest.raises(datafiles.DataFileError, match=r"train/images/00\.png is corrupted"):
        isbi2012.load_isbi([0])
    with pytest.raises(datafiles.DataFileError, match=r"has no file train/labels/00\.png"):
        isbi2012.isbi_file("train/labels/00.png")


def test_every_shared_file_verifies():
    for name, digest in isbi2012.isbi_registry().items():
        assert (
            hashlib.sha256(isbi2012.isbi_file(name, download=False).read_bytes()).hexdigest()
            == digest
        )


def test_synthetic_em_is_seeded_and_labelled():
    images, masks = synthetic.synthetic_em(n_images=2, size=96, n_cells=15, seed=3)
    again, _ = synthetic.synthetic_em(n_images=2, size=96, n_cells=15, seed=3)
    other, _ = synthetic.synthetic_em(n_images=2, size=96, n_cells=15, seed=4)
    assert images.shape == masks.shape == (2, 96, 96)
    assert np.array_equal(images, again) and not np.array_equal(images, other)
    assert set(np.unique(masks)) == {0, 1}
    assert images[masks == 0].mean() < images[masks == 1].mean() - 0.2
    # Every Voronoi cell is one 4-connected interior region, separated by membrane.
    n_regions = ndimage.label(masks[0])[1]
    assert 10 <= n_regions <= 15


def test_patch_sampler_is_seeded_and_augments_consistently():
    images, masks = synthetic.synthetic_em(n_images=3, size=80, seed=0)
    a = patches.PatchSampler(images, masks, patch_size=32, seed=5)
    b = patches.PatchSampler(images, masks, patch_size=32, seed=5)
    for (ia, ma), (ib, mb) in zip(a.epoch(), b.epoch(), strict=True):
        assert ia.shape == ma.shape == (32, 32)
        assert np.array_equal(ia, ib) and np.array_equal(ma, mb)
    # The mask moves with the image: the membrane stays darker after any rotation or flip.
    for _ in range(20):
        image, mask = a.sample()
        if 0 < mask.mean() < 1:
            assert image[mask == 0].mean() < image[mask == 1].mean()
    with pytest.raises(ValueError, match="patch_size"):
        patches.PatchSampler(images, masks, patch_size=81)
    with pytest.raises(ValueError, match="same N, H, W"):
        patches.PatchSampler(images, masks[:2])
    # two input channels are cropped and transformed alike
    two = patches.PatchSampler(np.stack([images, 1 - images], axis=1), masks, patch_size=32, seed=5)
    for _ in range(10):
        image, mask = two.sample()
        assert image.shape == (2, 32, 32) and mask.shape == (32, 32)
        assert np.allclose(image[1], 1 - image[0])
    first = patches.PatchSampler(images, masks, patch_size=32, seed=5).sample()
    assert np.array_equal(patches.PatchSampler(np.stack([images, images], 1), masks, 32, seed=5)
                          .sample()[0][0], first[0])


def test_augment_covers_all_eight_symmetries():
    rng = np.random.default_rng(0)
    square = np.arange(9).reshape(3, 3)
    seen = {patches.augment(square, square, rng)[0].tobytes() for _ in range(200)}
    assert len(seen) == 8


def test_download_path_uses_pinned_urls_and_hashes(tmp_path, monkeypatch):
    """Without a local copy the loader asks pooch for the file, with our URLs and sha256."""
    import pooch

    monkeypatch.delenv("TOPOBOOK_DATA", raising=False)
    monkeypatch.setattr(datafiles, "SHARED_ROOT", tmp_path / "absent")
    with pytest.raises(datafiles.DataFileError, match="not available locally"):
        isbi2012.isbi_file("train/images/05.png", download=False)
    seen = {}

    class FakeFetcher:
        def fetch(self, name, progressbar):
            seen["name"] = name
            raise ValueError("SHA256 hash of downloaded file does not match")

    def fake_create(**kwargs):
        seen.update(kwargs)
        return FakeFetcher()

    monkeypatch.setattr(pooch, "create", fake_create)
    with pytest.raises(datafiles.DataFileError, match="train/images/05.png does not match"):
        isbi2012.isbi_file("train/images/05.png")
    assert seen["name"] == "train/images/05.png"
    assert seen["urls"]["train/images/05.png"] == isbi2012.isbi_url("train/images/05.png")
    assert (
        seen["registry"]["train/images/05.png"]
        == "sha256:" + isbi2012.isbi_registry()["train/images/05.png"]
    )
    assert str(seen["path"]).endswith("isbi2012")


def test_unknown_file_names_are_refused():
    with pytest.raises(KeyError, match="not a file of ISBI 2012"):
        isbi2012.isbi_file("train/images/30.png")


def test_crop_checks_bounds():
    image = np.arange(100).reshape(10, 10)
    assert patches.crop(image, 2, 3, 4)[0, 0] == 23
    with pytest.raises(ValueError, match="does not fit"):
        patches.crop(image, 8, 0, 4)
