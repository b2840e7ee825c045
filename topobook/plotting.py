"""Figures of the book: images, filtrations, persistence diagrams and barcodes.

Every function draws on matplotlib axes it is given (or creates) and returns them, so notebooks
can compose figures. Diagrams follow :func:`topobook.topology.persistence.diagrams`: a list over
dimensions of ``(n, 2)`` arrays of (birth, death), essential deaths ``+-inf``.

Every chapter calls :func:`use_book_style` once in its imports cell: one style for the whole
book (``book.mplstyle`` beside this module: fonts of at least 10 pt, Okabe & Ito's
colour-blind-safe colours) and images rendered at twice their display size. Legends are put
beside or below the axes (:func:`legend_outside`), never on the data.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from html import escape
from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np

STYLE = Path(__file__).with_name("book.mplstyle")
COLUMN_WIDTH = 6.8  # inches: at the style's 100 dpi, the article column at 1280 px (~700 px)
# Okabe & Ito's palette (the style's colour cycle): blue, vermillion, bluish green, orange
OKABE_ITO = ("#0072B2", "#D55E00", "#009E73", "#E69F00", "#CC79A7", "#56B4E9", "#F0E442")
DIM_COLORS = (OKABE_ITO[0], OKABE_ITO[1])  # H0, H1
ERROR_COLORS = {"missed membrane": OKABE_ITO[1], "invented membrane": OKABE_ITO[0]}


def use_book_style(retina: bool = True) -> None:
    """Apply the book's figure style (``topobook/book.mplstyle``) to every figure drawn after
    it, and, in a notebook, show figures as PNGs rendered at twice their size whose display
    size is set in the output's metadata (sharp on high-resolution screens, and a figure of
    ``w`` inches is shown ``100 w`` CSS pixels wide). Call it once, after importing pyplot."""
    plt.style.use(STYLE)
    if not retina:
        return
    try:
        from IPython import get_ipython
        from matplotlib_inline.backend_inline import set_matplotlib_formats
    except ImportError:  # outside IPython: nothing to configure
        return
    if get_ipython() is not None:
        set_matplotlib_formats("retina")


def legend_outside(ax, where: str = "right", ncol: int = 1, **kwargs):
    """A legend beside the axes (``where="right"``) or below them (``"below"``), so that it
    never covers data; the figure's tight bounding box includes it."""
    from matplotlib.transforms import ScaledTranslation

    if where == "right":
        placement = dict(loc="upper left", bbox_to_anchor=(1.02, 1.0), borderaxespad=0.0)
    elif where == "below":
        # below the tick labels and the axis label: about 0.5 in (0.3 in without a label)
        drop = 0.5 if ax.get_xlabel() else 0.3
        shift = ScaledTranslation(0, -drop, ax.figure.dpi_scale_trans)
        placement = dict(loc="upper center", bbox_to_anchor=(0.5, 0.0),
                         bbox_transform=ax.transAxes + shift, borderaxespad=0.0)
    else:
        raise ValueError(f"where must be 'right' or 'below', got {where!r}")
    return ax.legend(ncol=ncol, **placement, **kwargs)


def _axes(ax):
    return plt.subplots(figsize=(4, 4))[1] if ax is None else ax


def _pixel_axes(ax, ticks: bool) -> None:
    """Pixel indices on the axes (row down, column across, whole numbers only) with ``ticks``;
    otherwise none: an image panel carries no pixel ticks unless its text names pixels."""
    from matplotlib.ticker import MaxNLocator

    if ticks:
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        ax.yaxis.set_major_locator(MaxNLocator(integer=True))
        ax.set_xlabel("column c")
        ax.set_ylabel("row r")
    else:
        ax.set_xticks([])
        ax.set_yticks([])


def show_image(
    image,
    ax=None,
    title: str | None = None,
    cmap: str = "gray",
    colorbar=False,
    ticks: bool = False,
    **imshow_kwargs,
):
    """Show a 2-D array; with ``ticks``, pixel indices on the axes (row down, column across),
    for small hand-worked images whose text names pixels; without, no ticks (the book's image
    panels). ``imshow_kwargs`` (``vmin``, ``vmax``, ...) go to ``imshow``."""
    ax = _axes(ax)
    shown = ax.imshow(np.asarray(image), cmap=cmap, interpolation="nearest", **imshow_kwargs)
    _pixel_axes(ax, ticks)
    if title:
        ax.set_title(title)
    if colorbar:
        plt.colorbar(shown, ax=ax, fraction=0.046, pad=0.04)
    return ax


def short_value(value: float) -> str:
    """A pixel value in at most three characters where it can be: two significant digits
    without the leading zero (``0.05`` -> ``".05"``, ``0.9`` -> ``".9"``, ``1.0`` -> ``"1"``)."""
    return f"{value:.2g}".replace("0.", ".")


def print_values(ax, image, fmt=short_value, skip_zero: bool = False, threshold=None):
    """Write each pixel's value on an image already shown in ``ax`` (10 pt, the book's smallest
    text), dark on light pixels and light on dark ones; ``threshold`` (default: the middle of
    the values' range) separates the two. ``fmt`` is a function of the value or a format string
    (``"{:+.2g}"``); the default, :func:`short_value`, fits a pixel of 0.3 in. With
    ``skip_zero``, zeros are left blank (a sparse gradient)."""
    image = np.asarray(image, dtype=float)
    text_of = fmt if callable(fmt) else fmt.format
    if image.ndim != 2:
        raise ValueError(f"image must be 2-D (H, W), got shape {image.shape}")
    if threshold is None:
        threshold = (image.min() + image.max()) / 2
    for (r, c), value in np.ndenumerate(image):
        if skip_zero and value == 0:
            continue
        ax.text(c, r, text_of(value), ha="center", va="center", fontsize=10,
                color="white" if value < threshold else "black")
    return ax


def show_filtration(
    image, thresholds: Sequence[float], superlevel: bool = False, axes=None, cmap="Blues"
):
    """Show the sublevel sets ``{f <= t}`` (or superlevel sets ``{f >= t}``) at each threshold."""
    image = np.asarray(image)
    if axes is None:
        _, axes = plt.subplots(1, len(thresholds), figsize=(2.6 * len(thresholds), 2.8))
    for t, ax in zip(thresholds, np.ravel(axes), strict=True):
        inside = image >= t if superlevel else image <= t
        ax.imshow(inside, cmap=cmap, vmin=0, vmax=1, interpolation="nearest")
        ax.set_title(f"f {'≥' if superlevel else '≤'} {t:.2f}")
        ax.set_xticks([])
        ax.set_yticks([])
    return axes


INFINITY_POINTS = 14  # the ∞ tick label: the glyph is small, so larger than the other ticks


def _infinity_tick(axis, at: float, label: str) -> None:
    """Put a tick labelled ``label`` (∞ or −∞) at ``at`` on ``axis`` (``ax.xaxis`` or
    ``ax.yaxis``, its limits already set), beside the axis's own ticks inside its limits, less
    those closer to it than 0.8 of their spacing: the line of the essential bars is named where
    the axis is read, at a size a reader sees."""
    low, high = sorted(axis.get_view_interval())
    ticks = [t for t in axis.get_majorticklocs() if low <= t <= high]
    spacing = float(np.min(np.diff(ticks))) if len(ticks) > 1 else 0.0
    ticks = [t for t in ticks if abs(t - at) >= 0.8 * spacing]
    labels = axis.get_major_formatter().format_ticks(ticks)
    axis.set_ticks([*ticks, at], [*labels, label])
    axis.get_ticklabels()[-1].set_fontsize(INFINITY_POINTS)


def plot_diagram(
    dgms: Sequence[np.ndarray], ax=None, title: str | None = None, labels=("H0", "H1"), size=18
):
    """Persistence diagram of a sublevel (births below the diagonal's upper side) or superlevel
    (births >= deaths) filtration; essential bars are drawn on a dashed line whose tick on the
    death axis reads ∞ (sublevel, death +inf) or −∞ (superlevel, death -inf, TopologyLayer's
    convention)."""
    ax = _axes(ax)
    finite_values = np.concatenate(
        [d[np.isfinite(d)].ravel() for d in dgms if len(d)] + [np.zeros(0)]
    )
    lo, hi = (finite_values.min(), finite_values.max()) if finite_values.size else (0.0, 1.0)
    pad = 0.05 * (hi - lo or 1.0)
    superlevel = any(np.any(d[:, 1] == -np.inf) or np.any(d[:, 0] > d[:, 1]) for d in dgms)
    inf_y = lo - 2 * pad if superlevel else hi + 2 * pad
    ax.plot([lo - 3 * pad, hi + 3 * pad], [lo - 3 * pad, hi + 3 * pad], "k-", lw=0.8)
    ax.axhline(inf_y, color="gray", ls="--", lw=0.8)
    for k, dgm in enumerate(dgms):
        if len(dgm) == 0:
            continue
        deaths = np.where(np.isfinite(dgm[:, 1]), dgm[:, 1], inf_y)
        ax.scatter(
            dgm[:, 0],
            deaths,
            s=size,
            color=DIM_COLORS[k % 2],
            label=f"{labels[k]} ({len(dgm)})",
            alpha=0.8,
            edgecolor="none",
        )
    ax.set_xlim(lo - 3 * pad, hi + 3 * pad)
    ax.set_ylim(lo - 3 * pad, hi + 3 * pad)
    _infinity_tick(ax.yaxis, inf_y, "−∞" if superlevel else "∞")
    ax.set_xlabel("birth")
    ax.set_ylabel("death")
    ax.set_aspect("equal")
    legend_outside(ax, "below", ncol=2, handletextpad=0.2, columnspacing=0.8)
    if title:
        ax.set_title(title)
    return ax


def plot_barcode(
    dgms: Sequence[np.ndarray],
    ax=None,
    title: str | None = None,
    labels=("H0", "H1"),
    max_bars: int | None = 60,
):
    """Barcode: one horizontal bar per point, from birth to death, longest first per dimension.

    At most ``max_bars`` bars per dimension are drawn (the longest); essential bars run with an
    arrow to a tick marked ∞ (sublevel) or −∞ (superlevel) beyond the finite values."""
    ax = _axes(ax)
    finite_values = np.concatenate(
        [d[np.isfinite(d)].ravel() for d in dgms if len(d)] + [np.zeros(0)]
    )
    lo, hi = (finite_values.min(), finite_values.max()) if finite_values.size else (0.0, 1.0)
    pad = 0.12 * (hi - lo or 1.0)
    essential = [d[~np.isfinite(d[:, 1]), 1] for d in dgms if len(d)]
    superlevel = any(np.any(e < 0) for e in essential)
    inf_x = lo - pad if superlevel else hi + pad  # where the essential bars end, marked ∞
    row = 0
    for k, dgm in enumerate(dgms):
        if len(dgm) == 0:
            continue
        lifetime = np.abs(dgm[:, 1] - dgm[:, 0])
        order = np.argsort(-lifetime, kind="stable")[:max_bars]
        for i, j in enumerate(order):
            b, d = dgm[j]
            end = d if np.isfinite(d) else inf_x
            ax.plot(
                [b, end],
                [row, row],
                color=DIM_COLORS[k % 2],
                lw=2,
                label=f"{labels[k]} ({len(dgm)} {'bar' if len(dgm) == 1 else 'bars'})"
                if i == 0
                else None,
            )
            if not np.isfinite(d):
                ax.annotate(
                    "",
                    xy=(end, row),
                    xytext=(b, row),
                    arrowprops=dict(arrowstyle="->", color=DIM_COLORS[k % 2]),
                )
            row += 1
        row += 2
    ax.set_xlim(min(lo, inf_x) - pad / 2, max(hi, inf_x) + pad / 2)
    if any(len(e) for e in essential):
        _infinity_tick(ax.xaxis, inf_x, "−∞" if superlevel else "∞")
    ax.set_xlabel("filtration value")
    ax.set_ylabel("bar (longest first)")
    ax.set_yticks([])
    ax.invert_yaxis()
    legend_outside(ax, "below", ncol=2)
    if title:
        ax.set_title(title)
    return ax


def show_signed(
    image, ax=None, title: str | None = None, cmap: str = "RdBu_r", ticks: bool = False,
    limit: float | None = None,
):
    """Show a signed map (a gradient, a difference) with zero in white and a colour bar.
    The colour scale runs over ``[-limit, limit]`` (default: the map's largest ``|value|``):
    panels that are compared share one ``limit``. ``ticks`` as in :func:`show_image`."""
    ax = _axes(ax)
    image = np.asarray(image)
    if limit is None:
        limit = float(np.abs(image).max()) or 1.0
    elif not limit > 0:
        raise ValueError(f"limit must be positive, got {limit!r}")
    shown = ax.imshow(image, cmap=cmap, vmin=-limit, vmax=limit, interpolation="nearest")
    _pixel_axes(ax, ticks)
    if title:
        ax.set_title(title)
    plt.colorbar(shown, ax=ax, fraction=0.046, pad=0.04)
    return ax


def mark_critical_pixels(ax, pairs, width: int, n_bars: int = 10, labels=("H0", "H1")):
    """Mark the birth (o) and death (x) pixels of the ``n_bars`` longest finite bars of each
    dimension on an image already shown in ``ax``. ``pairs`` is a
    :class:`topobook.topology.persistence.PersistencePairs` of that image (sorted longest first)."""
    for k, finite in enumerate(pairs.finite):
        chosen = finite[:n_bars]
        rows_b, cols_b = np.divmod(chosen[:, 0], width)
        rows_d, cols_d = np.divmod(chosen[:, 1], width)
        color = DIM_COLORS[k % 2]
        ax.scatter(
            cols_b,
            rows_b,
            s=40,
            facecolor="none",
            edgecolor=color,
            lw=1.5,
            label=f"{labels[k]} birth $c_b(p)$",
        )
        ax.scatter(
            cols_d,
            rows_d,
            s=40,
            marker="x",
            color=color,
            lw=1.5,
            label=f"{labels[k]} death $c_d(p)$",
        )
        for rb, cb, rd, cd in zip(rows_b, cols_b, rows_d, cols_d, strict=True):
            ax.plot([cb, cd], [rb, rd], color=color, lw=0.6, alpha=0.7)
    legend_outside(ax, "right")
    return ax


def plot_lifetimes(
    diagram: np.ndarray,
    threshold: float | None = None,
    ax=None,
    title: str | None = None,
    legend: str | None = "right",
):
    """The H0 diagram turned by 45 degrees: birth against lifetime ``death - birth``, finite
    points only. With ``threshold``, the widest empty band is shaded and the threshold drawn:
    points above the line are the objects Algorithm 1 marks. ``legend``: ``"right"`` or
    ``"below"`` the axes (:func:`legend_outside`; below suits panels side by side), or None."""
    ax = _axes(ax)
    diagram = np.asarray(diagram, dtype=float)
    finite = diagram[np.isfinite(diagram[:, 1])]
    lifetime = finite[:, 1] - finite[:, 0]
    above = lifetime > threshold if threshold is not None else np.zeros(len(finite), bool)
    ax.scatter(
        finite[~above, 0],
        lifetime[~above],
        s=10,
        color="gray",
        alpha=0.6,
        label=f"below threshold ({int((~above).sum())})",
    )
    if threshold is not None:
        ax.scatter(
            finite[above, 0],
            lifetime[above],
            s=25,
            color=OKABE_ITO[1],
            label=f"marked objects ({int(above.sum())})",
        )
        lower = lifetime[lifetime <= threshold].max(initial=0.0)
        upper = lifetime[lifetime > threshold].min(initial=threshold)
        ax.axhspan(lower, upper, color=OKABE_ITO[2], alpha=0.15, label="widest empty band")
        ax.axhline(threshold, color=OKABE_ITO[2], ls="--", lw=1, label=f"threshold {threshold:.3f}")
    ax.set_xlabel("birth")
    ax.set_ylabel("lifetime (death - birth)")
    if legend is not None:
        legend_outside(ax, legend)
    if title:
        ax.set_title(title)
    return ax


def interval_in_range(mean, half_width, limits: tuple[float | None, float | None]):
    """The interval ``mean ± half_width`` cut to ``limits`` ``(lowest, highest)`` (``None``: no
    limit), as ``(low, high)`` arrays: a confidence band drawn for a metric stays inside the
    values the metric can take (:data:`topobook.metrics.evaluation.METRIC_RANGES`)."""
    mean, half_width = np.asarray(mean, dtype=float), np.asarray(half_width, dtype=float)
    if np.any(half_width < 0):
        raise ValueError(f"half-widths must not be negative, got {half_width}")
    lowest, highest = limits
    if lowest is not None and highest is not None and lowest > highest:
        raise ValueError(f"limits must be (lowest, highest), got {limits}")
    low, high = mean - half_width, mean + half_width
    if lowest is not None:
        low = np.maximum(low, lowest)
    if highest is not None:
        high = np.minimum(high, highest)
    return low, high


def y_within_range(ax, limits: tuple[float | None, float | None], margin: float = 0.03):
    """Cut the y axis of ``ax`` (data drawn) to a metric's ``limits`` ``(lowest, highest)``
    plus ``margin`` of the axis span, so that no tick reads a value the metric cannot take
    (a Dice of 1.04); returns ``ax``."""
    bottom, top = ax.get_ylim()
    span = top - bottom
    lowest, highest = limits
    if lowest is not None:
        bottom = max(bottom, lowest - margin * span)
    if highest is not None:
        top = min(top, highest + margin * span)
    ax.set_ylim(bottom, top)
    return ax


def forest_plot(
    comparisons: dict[str, dict[str, dict]],
    higher_is_better: dict[str, bool],
    ncols: int = 2,
    panel_size: tuple[float, float] | None = None,
    labels: dict[str, str] | None = None,
):
    """Paired differences (strategy - baseline), one panel per metric.

    ``comparisons[metric][run]`` is a :func:`topobook.study.stats.paired_comparison` result: the
    mean difference is drawn as a square with its 95 % interval, each seed's difference as a dot,
    and 0 (no difference) as a vertical line; the panel title says which side is better.
    ``labels`` maps a metric to its panel title (default: the metric's name). The figure is
    as wide as the article column unless ``panel_size`` is given. Returns the figure.
    """
    names = list(comparisons)
    nrows = -(-len(names) // ncols)
    n_runs = max(len(comparisons[m]) for m in names)
    if panel_size is None:
        panel_size = (COLUMN_WIDTH / ncols, 0.8 + 0.32 * n_runs)
    fig, axes = plt.subplots(
        nrows,
        ncols,
        figsize=(panel_size[0] * ncols, panel_size[1] * nrows),
        squeeze=False,
        sharey=True,
    )
    for ax, metric in zip(axes.ravel(), names, strict=False):
        runs = list(comparisons[metric])
        for y, run in enumerate(runs):
            c = comparisons[metric][run]
            ax.plot(c["differences"], np.full(len(c["differences"]), y) + 0.18, ".",
                    color="0.55", ms=4)
            ax.errorbar(c["mean_difference"], y, xerr=[[c["mean_difference"] - c["low"]],
                        [c["high"] - c["mean_difference"]]], fmt="s", color=OKABE_ITO[0],
                        ms=4, capsize=2, lw=1)
        ax.axvline(0, color="k", lw=0.8)
        ax.set_yticks(range(len(runs)), runs)
        better = "→" if higher_is_better[metric] else "←"
        ax.set_title(f"{(labels or {}).get(metric, metric)}, better {better}")
        ax.set_xlabel("difference to baseline")
        ax.xaxis.set_major_locator(plt.MaxNLocator(4))
    axes[0, 0].invert_yaxis()  # shared: the first strategy on top in every panel
    for ax in axes.ravel()[len(names):]:
        ax.axis("off")
    fig.tight_layout()
    return fig


def margin_plot(groups: dict[str, dict[str, tuple[float, float, float]]], limit: float = 3.0):
    """Effects on the scale of their equivalence margins, one panel per group (a study).

    ``groups[title][label] = (x, x_low, x_high)``: an effect and its interval divided by the
    margin δ and signed so that > 0 is better (:func:`topobook.study.findings.in_margins`).
    Each effect is a square with its interval; the band (−1, 1) is "within the margin", the
    line at 0 "no difference". An interval beyond ``±limit`` is cut there and ends in an
    arrow; an effect beyond it has no square. Panels share the x-axis; the figure is as wide as
    the article column. Returns the figure."""
    if not groups or any(not rows for rows in groups.values()):
        raise ValueError("margin_plot needs at least one group, each with at least one effect")
    if not limit > 1:
        raise ValueError(f"limit must exceed 1 (the margins), got {limit!r}")
    heights = [len(rows) for rows in groups.values()]
    fig, axes = plt.subplots(len(groups), 1, sharex=True, squeeze=False,
                             figsize=(COLUMN_WIDTH, 0.9 * len(groups) + 0.3 * sum(heights)),
                             gridspec_kw={"height_ratios": heights})
    for ax, (title, rows) in zip(axes[:, 0], groups.items(), strict=True):
        ax.axvspan(-1, 1, color="0.9", zorder=0)
        ax.axvline(0, color="k", lw=0.8)
        for y, (x, low, high) in enumerate(rows.values()):
            cut_low, cut_high = max(low, -limit), min(high, limit)
            ax.plot([cut_low, cut_high], [y, y], color=OKABE_ITO[0], lw=1.2)
            if abs(x) <= limit:  # an effect beyond the axis shows as its interval's arrow
                ax.plot(x, y, "s", color=OKABE_ITO[0], ms=5)
            for end, cut, marker in ((low, -limit, "<"), (high, limit, ">")):
                if (end < cut) if marker == "<" else (end > cut):
                    ax.plot(cut, y, marker, color=OKABE_ITO[0], ms=6)
        ax.set_yticks(range(len(rows)), list(rows))
        ax.set_ylim(len(rows) - 0.5, -0.5)
        ax.set_title(title)
    axes[-1, 0].set_xlim(-limit * 1.05, limit * 1.05)
    axes[-1, 0].set_xlabel("effect / margin δ  (← worse · better →)")
    fig.tight_layout()
    return fig


def overview_figure(image, mask):
    """The book at a glance (its landing page): an EM crop, its cells (1 = cell), and the
    superlevel persistence diagram of the crop, whose long H0 bars are the bright cell
    interiors and whose long H1 bars are the loops of membrane between them. ``image`` and
    ``mask`` are ``(H, W)``: floats in [0, 1] and a {0, 1} mask. Returns the figure."""
    from topobook.topology.persistence import diagrams

    image, mask = np.asarray(image, dtype=float), np.asarray(mask)
    if image.ndim != 2 or image.shape != mask.shape:
        raise ValueError(f"image and mask must both be (H, W), got {image.shape}, {mask.shape}")
    fig, axes = plt.subplots(1, 3, figsize=(COLUMN_WIDTH, 2.6))
    show_image(image, ax=axes[0], title="EM image")
    show_image(mask, ax=axes[1], title="cells (1) and membranes")
    for ax in axes[:2]:
        ax.set_xticks([])
        ax.set_yticks([])
        ax.set_xlabel("")
        ax.set_ylabel("")
    dgms = diagrams(image, superlevel=True)
    plot_diagram(dgms, ax=axes[2], title="superlevel diagram", size=10)
    fig.tight_layout()
    return fig


# ---------------------------------------------------------------------------------------------
# Chapters 1, 7 and 8: the filtration animation, fold strips, power curves, error overlays.

FILTRATION_COLORS = ("#E8E8E8", OKABE_ITO[0])  # a pixel not yet in the filtration, and one in it
DEAD_BAR_ALPHA = 0.3  # a bar that has died stays in the barcode, faded


def _check_thresholds(thresholds, superlevel: bool) -> np.ndarray:
    """The animation's levels as a 1-D float array, growing the filtration at every step."""
    levels = np.asarray(thresholds, dtype=float)
    if levels.ndim != 1 or levels.size < 1 or not np.all(np.isfinite(levels)):
        raise ValueError(f"thresholds must be a non-empty 1-D list of finite levels, got {levels}")
    steps = np.diff(levels)
    growing = steps < 0 if superlevel else steps > 0
    if not np.all(growing):
        order = "decreasing (superlevel)" if superlevel else "increasing (sublevel)"
        raise ValueError(f"thresholds must be strictly {order}, got {levels.tolist()}")
    return levels


def filtration_frame(axes, image, dgms: Sequence[np.ndarray], t: float, levels=None,
                     superlevel: bool = False, labels=("H0", "H1")) -> dict:
    """Draw one frame of a filtration beside its barcode, on ``axes = (image_ax, barcode_ax)``
    (both cleared first).

    ``image`` is a small ``(H, W)`` array; ``dgms`` its diagrams (a list over dimensions of
    ``(n, 2)`` arrays of (birth, death), :func:`topobook.topology.persistence.diagrams` of the
    same image and convention). Sublevel (``superlevel=False``): the pixels with value
    ``<= t`` are in the filtration (coloured) and a bar ``(b, d)`` is alive at ``t`` when
    ``b <= t < d``; superlevel: value ``>= t``, alive when ``d < t <= b``. Each pixel's value is
    printed. In the barcode every bar born by ``t`` is drawn from its birth (a dot) to ``t``
    (alive, full colour) or to its death (dead, faded), one row per bar in the order of birth;
    its gid is ``"H{k}:{i}"``, the bar ``dgms[k][i]``. Bars not yet born are not drawn, and a
    vertical line marks ``t``. ``levels``: the animation's thresholds, which fix the barcode's
    axis for every frame (default: ``[t]`` and the finite bar ends).

    Returns ``{"inside": (H, W) bool, "alive": [bool array per dimension], "betti": tuple}``.
    """
    from matplotlib.colors import ListedColormap

    image = np.asarray(image, dtype=float)
    if image.ndim != 2:
        raise ValueError(f"image must be 2-D (H, W), got shape {image.shape}")
    image_ax, bar_ax = axes
    image_ax.clear()
    bar_ax.clear()
    inside = image >= t if superlevel else image <= t
    image_ax.imshow(inside.astype(int), cmap=ListedColormap(FILTRATION_COLORS), vmin=0, vmax=1,
                    interpolation="nearest")
    print_values(image_ax, image, fmt="{:g}", threshold=-np.inf)  # dark text on both colours
    for text, entered in zip(image_ax.texts, inside.ravel(), strict=True):
        text.set_color("white" if entered else "black")
    _pixel_axes(image_ax, ticks=False)
    image_ax.set_title(f"{{f {'≥' if superlevel else '≤'} t}},  t = {t:g}")

    ends = [d[np.isfinite(d)] for d in dgms if len(d)]
    span = np.concatenate([[t], *(ends or [np.zeros(0)]),
                           *([] if levels is None else [np.asarray(levels, float)])])
    low, high = float(span.min()), float(span.max())
    pad = 0.04 * (high - low or 1.0)
    alive_all, row = [], 0
    for k, dgm in enumerate(dgms):
        dgm = np.asarray(dgm, dtype=float).reshape(-1, 2)
        births, deaths = dgm[:, 0], dgm[:, 1]
        born = births >= t if superlevel else births <= t
        alive = born & ((deaths < t) if superlevel else (t < deaths))
        alive_all.append(alive)
        color = DIM_COLORS[k % 2]
        # rows in the order of birth (as the filtration meets them), oldest on top
        for i in np.argsort(-births if superlevel else births, kind="stable"):
            if born[i]:
                end = t if alive[i] else deaths[i]
                # a dot at the birth: a bar born at t has no length yet
                bar_ax.plot([births[i], end], [row, row], color=color, lw=4,
                            solid_capstyle="butt", marker="o", ms=6, markevery=[0],
                            alpha=1.0 if alive[i] else DEAD_BAR_ALPHA, gid=f"H{k}:{i}")
            row += 1
        bar_ax.plot([], [], color=color, lw=4, label=f"{labels[k]}: {int(alive.sum())} alive")
        row += 1  # a gap between the dimensions
    bar_ax.axvline(t, color="k", lw=1)
    # a superlevel filtration grows as t falls: its axis runs from high to low, so that the
    # bars grow to the right in both conventions
    bar_ax.set_xlim((high + pad, low - pad) if superlevel else (low - pad, high + pad))
    bar_ax.set_ylim(row - 0.5, -1.0)
    bar_ax.set_yticks([])
    bar_ax.set_xlabel("filtration value t")
    bar_ax.set_title("barcode up to t")
    legend_outside(bar_ax, "below", ncol=2)
    betti = tuple(int(a.sum()) for a in alive_all)
    return {"inside": inside, "alive": alive_all, "betti": betti}


def filtration_animation(image, dgms: Sequence[np.ndarray], thresholds, superlevel: bool = False,
                         interval_ms: int = 700, figsize: tuple[float, float] | None = None):
    """A :class:`matplotlib.animation.FuncAnimation` whose frame ``k`` is
    :func:`filtration_frame` at ``thresholds[k]`` (strictly increasing for a sublevel
    filtration, decreasing for a superlevel one): the filtration of a small ``image`` grows
    beside its barcode. Show it in a notebook with ``IPython.display.HTML(anim.to_jshtml())``
    (every frame a PNG inside the page: it plays without a kernel; keep the frames few) and
    close its figure. Returns the animation (its figure is ``anim._fig``)."""
    from matplotlib.animation import FuncAnimation

    levels = _check_thresholds(thresholds, superlevel)
    fig, axes = plt.subplots(1, 2, figsize=figsize or (COLUMN_WIDTH, 3.2),
                             gridspec_kw={"width_ratios": [1, 1.4]})

    def draw(k: int):
        filtration_frame(axes, image, dgms, float(levels[k]), levels, superlevel)
        return []

    draw(0)
    fig.tight_layout()  # once: every frame has the same layout, so the axes do not jump
    return FuncAnimation(fig, draw, frames=len(levels), interval=interval_ms, repeat=False)


SLICE_ROLE_COLORS = {"guard (unused)": "#DDDDDD", "train": OKABE_ITO[5],
                     "validation": OKABE_ITO[3], "evaluation": OKABE_ITO[1]}


def slice_strip(designs: dict[str, dict], n_slices: int = 30, ax=None):
    """One row per fold: which of ``n_slices`` slices it trains on, validates on and evaluates
    (``designs[name]`` has ``train_slices``, ``val_slices``, ``eval_slices``, as
    ``topobook.study.confirmatory.FOLDS``); slices in no role are the guard bands. A slice in
    two roles of one fold is an error (ValueError). Returns ``ax`` (its image: the role codes
    0 guard, 1 train, 2 validation, 3 evaluation)."""
    from matplotlib.colors import ListedColormap
    from matplotlib.patches import Patch

    strip = np.zeros((len(designs), n_slices), dtype=int)
    for row, (name, split) in enumerate(designs.items()):
        for code, key in enumerate(("train_slices", "val_slices", "eval_slices"), start=1):
            chosen = np.asarray(split[key], dtype=int)
            if chosen.size and (chosen.min() < 0 or chosen.max() >= n_slices):
                raise ValueError(f"{name}: {key} must lie in 0..{n_slices - 1}, got {chosen}")
            if np.any(strip[row, chosen]):
                raise ValueError(f"{name}: a slice of {key} is already in another role")
            strip[row, chosen] = code
    if ax is None:
        _, ax = plt.subplots(figsize=(COLUMN_WIDTH, 0.9 + 0.4 * len(designs)))
    colors = list(SLICE_ROLE_COLORS.values())
    ax.imshow(strip, cmap=ListedColormap(colors), vmin=0, vmax=3, aspect="auto",
              interpolation="nearest")
    ax.set_yticks(range(len(designs)), list(designs))
    ax.set_xticks(range(0, n_slices, 2))
    ax.set_xticks(np.arange(-0.5, n_slices), minor=True)
    ax.grid(which="minor", axis="x", color="white", lw=1)
    ax.tick_params(which="minor", length=0)
    ax.set_xlabel("ISBI 2012 slice")
    handles = [Patch(color=c, label=label) for label, c in SLICE_ROLE_COLORS.items()]
    ax.legend(handles=handles, ncol=4, loc="lower left", bbox_to_anchor=(0.0, 1.0),
              frameon=False, handlelength=1.2, columnspacing=1.0)
    return ax


def power_curve(effects, test_power, tost_power, margin: float, ax=None,
                marks: dict[str, float] | None = None, target: float = 0.8,
                xlabel: str = "true effect"):
    """Power against the true effect for a registered design: the paired test's power to
    reject "no effect" (``test_power``) and TOST's power to declare equivalence within
    ``±margin`` (``tost_power``), both arrays over ``effects`` (>= 0, increasing); the margin
    δ, each effect of ``marks`` (label -> value) and the ``target`` power are marked. Returns
    ``ax``."""
    effects = np.asarray(effects, dtype=float)
    test_power, tost_power = np.asarray(test_power, float), np.asarray(tost_power, float)
    if not (effects.ndim == 1 and test_power.shape == tost_power.shape == effects.shape):
        raise ValueError("effects, test_power and tost_power must be 1-D arrays of one length")
    if np.any(np.diff(effects) <= 0) or effects.min() < 0:
        raise ValueError("effects must be increasing and >= 0")
    if not (np.all((test_power >= 0) & (test_power <= 1))
            and np.all((tost_power >= 0) & (tost_power <= 1))):
        raise ValueError("powers must lie in [0, 1]")
    if not margin > 0:
        raise ValueError(f"margin must be positive, got {margin!r}")
    ax = _axes(ax)
    ax.plot(effects, test_power, color=OKABE_ITO[0], label="paired test: an effect is found")
    ax.plot(effects, tost_power, color=OKABE_ITO[2], ls="--",
            label="TOST: equivalent within ±δ")
    ax.axhline(target, color="0.5", lw=0.8, ls=":")
    ax.text(effects[-1], target, f"{target:.0%} ", ha="right", va="bottom", fontsize=10,
            color="0.3")
    ax.axvline(margin, color="k", lw=1)
    ax.text(margin, 1.02, f" δ = {margin:g}", ha="left", va="bottom", fontsize=10,
            transform=ax.get_xaxis_transform())
    for label, value in (marks or {}).items():
        ax.axvline(value, color=OKABE_ITO[1], lw=1, ls="-.")
        ax.text(value, 1.02, label, ha="center", va="bottom", fontsize=10, color=OKABE_ITO[1],
                transform=ax.get_xaxis_transform())
    ax.set_xlim(effects[0], effects[-1])
    ax.set_ylim(0, 1)
    ax.set_xlabel(xlabel)
    ax.set_ylabel("power")
    return ax


MORTAR_ERROR_COLORS = {"missed mortar": OKABE_ITO[1], "extra mortar": OKABE_ITO[0]}


def error_overlay(truth, prediction, missed_color: str = MORTAR_ERROR_COLORS["missed mortar"],
                  extra_color: str = MORTAR_ERROR_COLORS["extra mortar"],
                  foreground_gray: float = 0.2) -> np.ndarray:
    """The errors of a binary ``prediction`` drawn on the ``truth`` (both ``(H, W)`` with
    foreground = 1, e.g. mortar): an ``(H, W, 3)`` RGB image in [0, 1], white background,
    foreground found by the prediction dark grey (``foreground_gray``), foreground the
    prediction missed in ``missed_color`` (a broken mortar joint), and foreground it added
    where the truth has none in ``extra_color``."""
    from matplotlib.colors import to_rgb

    truth, prediction = np.asarray(truth), np.asarray(prediction)
    if truth.ndim != 2 or truth.shape != prediction.shape:
        raise ValueError(f"truth and prediction must both be (H, W), got {truth.shape}, "
                         f"{prediction.shape}")
    for name, mask in (("truth", truth), ("prediction", prediction)):
        if not np.isin(mask, (0, 1)).all():
            raise ValueError(f"{name} must be a {{0, 1}} mask (foreground = 1)")
    truth, prediction = truth.astype(bool), prediction.astype(bool)
    overlay = np.ones((*truth.shape, 3))
    overlay[truth & prediction] = foreground_gray
    overlay[truth & ~prediction] = to_rgb(missed_color)
    overlay[~truth & prediction] = to_rgb(extra_color)
    return overlay


# The buttons of matplotlib's HTML animation are Font Awesome icons loaded from a CDN: a book read
# offline (and its browser test) gets a failed request and empty buttons; symbols replace them.
_ANIMATION_BUTTONS = {
    "fa-minus": "−", "fa-plus": "+", "fa-fast-backward": "⏮", "fa-step-backward": "⏴",
    "fa-play fa-flip-horizontal": "◀", "fa-pause": "⏸", "fa-play": "▶",
    "fa-step-forward": "⏵", "fa-fast-forward": "⏭",
}


def animation_html(animation, alt: str) -> str:
    """``animation.to_jshtml(default_mode="once")`` made self-contained for the static book: no
    stylesheet from a CDN (its Font Awesome button icons become plain symbols) and ``alt`` as the
    frame image's alt text. Raises ``ValueError`` for an empty ``alt``."""
    if not str(alt).strip():
        raise ValueError("alt must say what the animation shows, got an empty text")
    html_text = animation.to_jshtml(default_mode="once")
    html_text = re.sub(r"<link rel=\"stylesheet\"\s*href=\"[^\"]*font-awesome[^\"]*\">\s*", "",
                       html_text)
    html_text = re.sub(r"<i class=\"fa ([\w -]+?)\"></i>",
                       lambda m: _ANIMATION_BUTTONS.get(m.group(1), "·"), html_text)
    return html_text.replace("<img id=", f'<img alt="{escape(str(alt), quote=True)}" id=', 1)
