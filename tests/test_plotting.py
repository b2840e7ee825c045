"""topobook.plotting: image panels, printed values, shared colour scales, the ∞ ticks of
diagrams and barcodes, and intervals cut to a metric's range (hand-made inputs, read back from
the matplotlib artists; nothing is compared as pixels)."""

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402

from topobook import plotting  # noqa: E402
from topobook.metrics import evaluation  # noqa: E402


@pytest.fixture(autouse=True)
def close_figures():
    yield
    plt.close("all")


def test_image_panels_have_no_pixel_ticks_unless_asked():
    ax = plotting.show_image(np.zeros((5, 7)))
    assert list(ax.get_xticks()) == [] and list(ax.get_yticks()) == []
    assert ax.get_xlabel() == "" and ax.get_ylabel() == ""
    ax = plotting.show_image(np.zeros((5, 7)), ticks=True)
    plt.gcf().canvas.draw()
    ticks = [t for t in ax.get_xticks() if -0.5 <= t <= 6.5]
    assert ticks and all(float(t).is_integer() for t in ticks)  # pixel indices, no 2.5
    assert ax.get_xlabel() == "column c" and ax.get_ylabel() == "row r"
    ax = plotting.show_signed(np.ones((3, 3)))
    assert list(ax.get_xticks()) == []


def test_print_values_writes_every_pixel_at_10_pt_in_a_contrasting_colour():
    image = np.array([[0.05, 0.9], [0.0, 1.0]])
    ax = plotting.show_image(image, cmap="magma", vmin=0, vmax=1)
    plotting.print_values(ax, image, threshold=0.5)
    texts = {(t.get_position(), t.get_text()): t for t in ax.texts}
    assert {k[1] for k in texts} == {".05", ".9", "0", "1"}
    assert all(t.get_fontsize() >= 10 for t in ax.texts)
    colours = {t.get_text(): t.get_color() for t in ax.texts}
    assert colours[".05"] == "white" and colours["1"] == "black"
    ax = plotting.show_signed(np.array([[0.0, -1.4], [0.3, 0.0]]))
    plotting.print_values(ax, np.array([[0.0, -1.4], [0.3, 0.0]]), fmt="{:+.2g}",
                          skip_zero=True)
    assert sorted(t.get_text() for t in ax.texts) == ["+0.3", "-1.4"]
    with pytest.raises(ValueError, match="2-D"):
        plotting.print_values(ax, np.zeros((2, 2, 2)))


def test_short_value_drops_the_leading_zero():
    assert [plotting.short_value(v) for v in (0.05, 0.9, 1.0, 0.0, 0.25)] == [
        ".05", ".9", "1", "0", ".25"]


def test_show_signed_shares_a_given_scale():
    ax = plotting.show_signed(np.array([[0.1, -0.2]]), limit=2.0)
    assert ax.images[0].get_clim() == (-2.0, 2.0)
    ax = plotting.show_signed(np.array([[0.1, -0.2]]))
    assert ax.images[0].get_clim() == (-0.2, 0.2)
    with pytest.raises(ValueError, match="limit"):
        plotting.show_signed(np.zeros((2, 2)), limit=0.0)


def _label_at(axis, position):
    ticks = list(axis.get_majorticklocs())
    labels = axis.get_ticklabels()
    return labels[int(np.argmin(np.abs(np.array(ticks) - position)))]


def test_diagram_names_the_essential_line_on_its_axis_at_a_readable_size():
    sublevel = [np.array([[1.0, np.inf], [2.0, 6.0]]), np.array([[1.0, 9.0]])]
    ax = plotting.plot_diagram(sublevel)
    line = ax.lines[1].get_ydata()[0]  # the dashed line of the essential bars
    label = _label_at(ax.yaxis, line)
    assert label.get_text() == "∞" and label.get_fontsize() >= 12
    superlevel = [np.array([[0.9, -np.inf], [0.8, 0.2]]), np.zeros((0, 2))]
    ax = plotting.plot_diagram(superlevel)
    assert _label_at(ax.yaxis, ax.lines[1].get_ydata()[0]).get_text() == "−∞"
    assert not ax.texts  # no free-floating label on the data


def test_barcode_essential_bars_end_at_the_infinity_tick():
    dgms = [np.array([[1.0, np.inf], [2.0, 6.0]]), np.array([[1.0, 9.0]])]
    ax = plotting.plot_barcode(dgms)
    essential_end = ax.lines[0].get_xdata()[1]
    assert essential_end > 9.0  # beyond every finite value
    label = _label_at(ax.xaxis, essential_end)
    assert label.get_text() == "∞" and label.get_fontsize() >= 12
    legend = [t.get_text() for t in ax.get_legend().get_texts()]
    assert legend == ["H0 (2 bars)", "H1 (1 bar)"]
    ax = plotting.plot_barcode([np.array([[0.9, -np.inf], [0.8, 0.2]])])
    end = ax.lines[0].get_xdata()[1]
    assert end < 0.2 and _label_at(ax.xaxis, end).get_text() == "−∞"


def test_interval_in_range_cuts_a_band_to_the_metric():
    low, high = plotting.interval_in_range([0.98, 0.5], [0.05, 0.1], (0.0, 1.0))
    np.testing.assert_allclose(low, [0.93, 0.4])
    np.testing.assert_allclose(high, [1.0, 0.6])
    low, high = plotting.interval_in_range(3.0, 5.0, evaluation.METRIC_RANGES["betti_matching"])
    assert (float(low), float(high)) == (0.0, 8.0)
    with pytest.raises(ValueError, match="negative"):
        plotting.interval_in_range(0.5, -0.1, (0.0, 1.0))
    with pytest.raises(ValueError, match="limits"):
        plotting.interval_in_range(0.5, 0.1, (1.0, 0.0))


def test_y_axis_cut_to_the_metric_range():
    _, ax = plt.subplots()
    ax.plot([0, 1], [0.9, 1.0])
    ax.set_ylim(0.8, 1.1)
    plotting.y_within_range(ax, (0.0, 1.0))
    bottom, top = ax.get_ylim()
    assert bottom == 0.8 and 1.0 < top <= 1.0 + 0.03 * 0.3 + 1e-12
    ax.set_ylim(-2.0, 5.0)
    plotting.y_within_range(ax, (0.0, None))
    assert ax.get_ylim()[0] == pytest.approx(-0.21) and ax.get_ylim()[1] == 5.0


def test_every_metric_has_a_range():
    assert set(evaluation.METRIC_RANGES) == set(evaluation.METRICS)
    assert evaluation.METRIC_RANGES["v_rand"] == (0.0, 1.0)
    assert evaluation.METRIC_RANGES["betti_8conn"] == (0.0, None)


def test_lifetimes_legend_goes_where_asked():
    diagram = np.array([[0.1, 0.6], [0.2, 0.25], [0.0, np.inf]])
    ax = plotting.plot_lifetimes(diagram, 0.2, legend=None)
    assert ax.get_legend() is None
    ax = plotting.plot_lifetimes(diagram, 0.2, legend="below")
    assert ax.get_legend() is not None
