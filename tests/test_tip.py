import numpy as np
import pytest
from ripser import lower_star_img
from scipy import ndimage

from topobook import tip
from topobook.topology.persistence import persistence_pairs


def blobs(centres, depths, size=64, radius=4.0, noise=0.01, seed=0):
    """A bright background (1.0) with dark Gaussian blobs of the given depths, plus noise."""
    rng = np.random.default_rng(seed)
    rows, cols = np.mgrid[0:size, 0:size]
    image = np.ones((size, size))
    for (r, c), depth in zip(centres, depths, strict=True):
        image -= depth * np.exp(-((rows - r) ** 2 + (cols - c) ** 2) / (2 * radius**2))
    return image + noise * rng.standard_normal(image.shape)


@pytest.mark.parametrize("k", [1, 3, 5])
@pytest.mark.parametrize("lookup", ["critical", "value"])
def test_k_blobs_give_k_marked_objects(k, lookup):
    centres = [(16, 16), (16, 48), (48, 16), (48, 48), (32, 32)][:k]
    depths = [0.5, 0.6, 0.7, 0.55, 0.65][:k]
    out = tip.process(blobs(centres, depths), window_size=3, border_width=2, pixel_lookup=lookup)
    labels, n = ndimage.label(out["components"], np.ones((3, 3)))
    assert n == k
    for r, c in centres:  # every blob centre is marked
        assert out["components"][r, c] == 1


def test_object_touching_the_border_is_not_marked():
    image = blobs([(32, 32), (32, 1)], [0.6, 0.6])  # the second blob sits on the left border
    without = tip.process(image, window_size=3)
    with_border = tip.process(image, window_size=3, border_width=2)
    assert with_border["components"][32, 32] == 1
    assert with_border["components"][:, :8].sum() == 0
    # without border modification the border blob is the oldest component (essential) or a
    # finite bar of its own; with it, it is born through the border
    assert np.isinf(with_border["diagram"][:, 1]).sum() == 1
    assert without["components"].sum() > 0


def test_lifetime_threshold_on_known_lifetimes():
    # lifetimes 0.9, 0.8, 0.75, 0.1, 0.05: the widest gap is between 0.75 and 0.1
    diagram = np.array(
        [[0.0, 0.9], [0.1, 0.9], [0.2, 0.95], [0.5, 0.6], [0.5, 0.55], [-1.0, np.inf]]
    )
    assert tip.lifetime_threshold(diagram) == pytest.approx((0.75 + 0.1) / 2)
    # equal widest gaps: the first one from the longest lifetimes
    assert tip.lifetime_threshold(np.array([[0, 3.0], [0, 2.0], [0, 1.0]])) == pytest.approx(2.5)
    assert tip.lifetime_threshold(np.array([[0.2, 0.6], [0, np.inf]])) == pytest.approx(0.2)
    with pytest.raises(ValueError, match="no finite point"):
        tip.lifetime_threshold(np.array([[0.0, np.inf]]))


def test_interpolation_keeps_marked_pixels_and_stays_in_range():
    out = tip.process(blobs([(20, 20), (44, 40)], [0.6, 0.4]), window_size=3, border_width=2)
    marked = out["components"] == 1
    assert marked.any() and (~marked).any()
    np.testing.assert_array_equal(out["processed"][marked], out["modified"][marked])
    values = out["modified"][marked]
    rest = out["processed"][~marked]
    assert values.min() - 1e-12 <= rest.min() and rest.max() <= values.max() + 1e-12
    # a single mask gives the same when the objects are its 8-connected components
    again = tip.interpolate_background(out["modified"], out["components"])
    assert np.isfinite(again).all()
    # no objects: nothing to interpolate from, the image comes back unchanged
    flat = np.full((8, 8), 0.5)
    np.testing.assert_array_equal(tip.interpolate_background(flat, np.zeros((8, 8))), flat)


def test_h0_diagram_matches_ripser_for_both_backends():
    rng = np.random.default_rng(3)
    image = rng.random((40, 33))
    ref = lower_star_img(image)
    for backend in ("gudhi", "ripser"):
        ours = tip.h0_diagram(image, backend=backend)
        key = lambda d: d[np.lexsort((d[:, 1], d[:, 0]))]  # noqa: E731
        np.testing.assert_allclose(key(ours), key(ref))


def test_lookups_agree_when_values_are_distinct():
    image = blobs([(20, 20), (40, 44), (30, 10)], [0.6, 0.5, 0.7], noise=0.02, seed=4)
    a = tip.process(image, window_size=1, border_width=1, pixel_lookup="critical")
    b = tip.process(image, window_size=1, border_width=1, pixel_lookup="value")
    np.testing.assert_array_equal(a["components"], b["components"])
    np.testing.assert_array_equal(a["processed"], b["processed"])


def test_younger_object_is_cut_out_of_an_older_one():
    # Two basins joined by a saddle at 0.7: the deeper (older) one would swallow the shallower
    # one below its own death level; Algorithm 1 cuts it at the younger one's death - 0.1.
    image = np.ones((9, 21))
    image[2:7, 2:8] = 0.2  # older basin
    image[2:7, 13:19] = 0.4  # younger basin
    image[4, 8:13] = 0.7  # saddle joining them
    image = tip.modify_border(image, 1)
    diagram = tip.h0_diagram(image)
    objects = tip.object_components(image, diagram, threshold=0.05, pixel_lookup="critical")
    assert len(objects) == 2
    younger, older = objects  # decreasing birth: the younger (birth 0.4) first
    assert younger[4, 15] and not younger[4, 5]
    assert older[4, 5] and not older[4, 10]  # the saddle (0.7 > 0.7 - 0.1) is cut off


def test_smooth_and_border():
    image = np.arange(25, dtype=float).reshape(5, 5)
    np.testing.assert_allclose(tip.smooth(image, 1), image)
    assert tip.smooth(image, 3)[2, 2] == pytest.approx(image[1:4, 1:4].mean())
    bordered = tip.modify_border(image, 1)
    assert (bordered[0] == -1).all() and (bordered[:, -1] == -1).all()
    assert bordered[2, 2] == 12 and image[0, 0] == 0  # the input is not changed


@pytest.mark.parametrize(
    "call, message",
    [
        (lambda: tip.smooth(np.ones((4, 4)), 0), "window_size"),
        (lambda: tip.modify_border(np.ones((4, 4)), 2), "leaves nothing"),
        (lambda: tip.modify_border(np.ones((4, 4)), -1), "border_width"),
        (lambda: tip.process(np.full((4, 4), np.nan)), "NaN"),
        (lambda: tip.process(np.ones((4, 4, 3))), "2-D"),
        (
            lambda: tip.mark_objects(np.eye(6), np.array([[0.0, 0.5]]), 0.1, "critical"),
            "not the H0 sublevel diagram",
        ),
        (
            lambda: tip.mark_objects(np.eye(6), tip.h0_diagram(np.eye(6)), 0.1, "nearest"),
            "pixel_lookup",
        ),
    ],
)
def test_bad_input_raises(call, message):
    with pytest.raises(ValueError, match=message):
        call()


def test_critical_pixels_are_the_persistence_pairs():
    image = blobs([(20, 20), (44, 40)], [0.6, 0.4], seed=5)
    image = tip.modify_border(image, 1)
    births, deaths, bpx, dpx = tip._significant_points(
        image, tip.h0_diagram(image), 0.2, "critical"
    )
    pairs = persistence_pairs(image, complex="cubical", maxdim=0).finite[0]
    assert set(zip(bpx.tolist(), dpx.tolist(), strict=True)) <= set(map(tuple, pairs.tolist()))
    np.testing.assert_array_equal(image.flat[bpx], births)
