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


# ---- chapters 1, 7 and 8: the filtration animation, fold strips, power curves, error overlays

# chapter 1's hand-worked image: H0 = {(1, inf), (2, 6), (3, 6)}, H1 = {(1, 9)} (worked by hand)
HAND_IMAGE = np.array([[1, 1, 1, 6, 6], [1, 9, 1, 6, 2], [1, 1, 1, 6, 6], [6, 6, 6, 6, 6],
                       [6, 3, 6, 6, 6]], dtype=float)
HAND_DGMS = [np.array([[1, np.inf], [2, 6], [3, 6]]), np.array([[1, 9]])]


def _bars(ax) -> dict[str, tuple[list, float]]:
    """gid -> (x data, alpha) of the bars drawn in a barcode axes."""
    return {line.get_gid(): (list(line.get_xdata()), line.get_alpha())
            for line in ax.lines if line.get_gid()}


@pytest.mark.parametrize("t, betti, alive_gids", [
    (0.5, (0, 0), set()),
    (1.0, (1, 1), {"H0:0", "H1:0"}),
    (2.5, (2, 1), {"H0:0", "H0:1", "H1:0"}),
    (3.0, (3, 1), {"H0:0", "H0:1", "H0:2", "H1:0"}),
    (6.0, (1, 1), {"H0:0", "H1:0"}),  # the bars (2, 6) and (3, 6) die as the 6s enter
    (9.5, (1, 0), {"H0:0"}),
])
def test_filtration_frame_shows_the_sublevel_set_and_the_bars_alive_at_t(t, betti, alive_gids):
    from scipy import ndimage

    fig, axes = plt.subplots(1, 2)
    drawn = plotting.filtration_frame(axes, HAND_IMAGE, HAND_DGMS, t, levels=[0, 10])
    inside = HAND_IMAGE <= t
    # the image panel shows exactly the pixels of value <= t, every value printed
    assert np.array_equal(np.asarray(axes[0].images[0].get_array()), inside.astype(int))
    assert np.array_equal(drawn["inside"], inside)
    assert sorted(tx.get_text() for tx in axes[0].texts) == sorted(
        f"{v:g}" for v in HAND_IMAGE.ravel())
    assert list(axes[0].get_xticks()) == []
    # the Betti numbers are the bars alive at t; beta_0 is also the 8-connected components
    assert drawn["betti"] == betti
    assert ndimage.label(inside, structure=np.ones((3, 3)))[1] == betti[0]
    bars = _bars(axes[1])
    assert {g for g, (_, alpha) in bars.items() if alpha == 1.0} == alive_gids
    for gid, (x, alpha) in bars.items():
        k, i = (int(n) for n in gid[1:].split(":"))
        birth, death = HAND_DGMS[k][i]
        assert birth <= t  # a bar not yet born is not drawn
        assert x == [birth, t if alpha == 1.0 else death]  # alive: to t; dead: to its death
    rows = {line.get_gid(): line.get_ydata()[0] for line in axes[1].lines if line.get_gid()}
    assert [g for g in ("H0:0", "H0:1", "H0:2") if g in rows] == sorted(
        (g for g in rows if g.startswith("H0")), key=rows.get)  # rows in the order of birth
    born = sum(int(np.sum(d[:, 0] <= t)) for d in HAND_DGMS)
    assert len(bars) == born
    assert all(text.get_fontsize() >= 10 for ax in axes for text in ax.texts)
    assert axes[1].get_xlim() == pytest.approx((-0.4, 10.4))  # fixed by the levels


def test_filtration_frame_superlevel_convention():
    fig, axes = plt.subplots(1, 2)
    image = np.array([[0.9, 0.1], [0.1, 0.8]])
    dgms = [np.array([[0.9, -np.inf], [0.8, 0.1]]), np.zeros((0, 2))]
    drawn = plotting.filtration_frame(axes, image, dgms, 0.5, levels=[1.0, 0.0], superlevel=True)
    assert np.array_equal(drawn["inside"], image >= 0.5)
    assert drawn["betti"] == (2, 0)
    low, high = axes[1].get_xlim()
    assert low > high  # the axis runs from high to low levels


def test_filtration_animation_has_one_frame_per_threshold_and_plays_without_a_kernel():
    from matplotlib.animation import FuncAnimation

    thresholds = [0, 2, 6, 9.5]
    anim = plotting.filtration_animation(HAND_IMAGE, HAND_DGMS, thresholds)
    assert isinstance(anim, FuncAnimation)
    assert list(anim.new_frame_seq()) == list(range(len(thresholds)))
    html = anim.to_jshtml()  # every frame an embedded PNG, played by the page's own script
    assert html.count("data:image/png;base64") == len(thresholds)
    anim._func(1)  # t = 2: the ring and the 2
    image_ax = anim._fig.axes[0]
    assert np.array_equal(np.asarray(image_ax.images[0].get_array()), HAND_IMAGE <= 2)
    with pytest.raises(ValueError, match="increasing"):
        plotting.filtration_animation(HAND_IMAGE, HAND_DGMS, [0, 2, 1])
    with pytest.raises(ValueError, match="decreasing"):
        plotting.filtration_animation(HAND_IMAGE, HAND_DGMS, [0, 1], superlevel=True)


def test_slice_strip_codes_each_role_and_rejects_overlaps():
    designs = {"fold A": {"train_slices": range(0, 4), "val_slices": (5,), "eval_slices": (7, 8)}}
    ax = plotting.slice_strip(designs, n_slices=10)
    assert np.asarray(ax.images[0].get_array()).tolist() == [[1, 1, 1, 1, 0, 2, 0, 3, 3, 0]]
    assert [t.get_text() for t in ax.get_legend().get_texts()] == [
        "guard (unused)", "train", "validation", "evaluation"]
    with pytest.raises(ValueError, match="another role"):
        plotting.slice_strip({"bad": {"train_slices": (0, 1), "val_slices": (1,),
                                      "eval_slices": ()}}, n_slices=10)
    with pytest.raises(ValueError, match="0..9"):
        plotting.slice_strip({"bad": {"train_slices": (10,), "val_slices": (),
                                      "eval_slices": ()}}, n_slices=10)


def test_power_curve_marks_the_margin_the_field_effect_and_the_target():
    effects = np.linspace(0, 0.1, 11)
    test = np.clip(effects * 10, 0, 1)
    tost = 1 - test
    ax = plotting.power_curve(effects, test, tost, 0.046, marks={"field ≈ 0.01": 0.01})
    vertical = sorted(line.get_xdata()[0] for line in ax.lines
                      if line.get_xdata()[0] == line.get_xdata()[1])
    assert vertical == [0.01, 0.046]
    texts = [t.get_text() for t in ax.texts]
    assert " δ = 0.046" in texts and "field ≈ 0.01" in texts and "80% " in texts
    assert ax.get_ylim() == (0, 1)
    with pytest.raises(ValueError, match="increasing"):
        plotting.power_curve(effects[::-1], test, tost, 0.046)
    with pytest.raises(ValueError, match=r"\[0, 1\]"):
        plotting.power_curve(effects, test * 2, tost, 0.046)


def test_error_overlay_colours_missed_and_extra_foreground_on_the_truth():
    from matplotlib.colors import to_rgb

    truth = np.array([[1, 1, 0], [0, 1, 0]])  # foreground = 1 (mortar)
    prediction = np.array([[1, 0, 1], [0, 1, 0]])
    overlay = plotting.error_overlay(truth, prediction)
    assert overlay.shape == (2, 3, 3)
    missed = to_rgb(plotting.MORTAR_ERROR_COLORS["missed mortar"])
    extra = to_rgb(plotting.MORTAR_ERROR_COLORS["extra mortar"])
    assert tuple(overlay[0, 1]) == missed  # a broken joint
    assert tuple(overlay[0, 2]) == extra
    assert tuple(overlay[0, 0]) == tuple(overlay[1, 1]) == (0.2, 0.2, 0.2)  # found
    assert tuple(overlay[1, 0]) == (1.0, 1.0, 1.0)  # background
    with pytest.raises(ValueError, match="both be"):
        plotting.error_overlay(truth, prediction[:, :2])
    with pytest.raises(ValueError, match="0, 1"):
        plotting.error_overlay(truth * 255, prediction)


def test_animation_html_needs_no_cdn_and_has_alt_text():
    from matplotlib.animation import FuncAnimation

    fig, ax = plt.subplots()
    (line,) = ax.plot([0, 1])
    html_text = plotting.animation_html(FuncAnimation(fig, lambda i: (line,), frames=2), "a line")
    plt.close(fig)
    assert "font-awesome" not in html_text and 'class="fa ' not in html_text
    assert '<img alt="a line" id=' in html_text and "▶" in html_text
    with pytest.raises(ValueError, match="alt"):
        plotting.animation_html(FuncAnimation(fig, lambda i: (line,), frames=2), " ")
