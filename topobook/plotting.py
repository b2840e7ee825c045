"""Figures of the book: images, filtrations, persistence diagrams and barcodes.

Every function draws on matplotlib axes it is given (or creates) and returns them, so notebooks
can compose figures. Diagrams follow :func:`topobook.persistence.diagrams`: a list over
dimensions of ``(n, 2)`` arrays of (birth, death), essential deaths ``+-inf``.
"""

from __future__ import annotations

from collections.abc import Sequence

import matplotlib.pyplot as plt
import numpy as np

DIM_COLORS = ("tab:blue", "tab:orange")


def _axes(ax):
    return plt.subplots(figsize=(4, 4))[1] if ax is None else ax


def show_image(image, ax=None, title: str | None = None, cmap: str = "gray", colorbar=False):
    """Show a 2-D array with pixel indices on the axes (row down, column across)."""
    ax = _axes(ax)
    shown = ax.imshow(np.asarray(image), cmap=cmap, interpolation="nearest")
    ax.set_xlabel("column c")
    ax.set_ylabel("row r")
    if title:
        ax.set_title(title)
    if colorbar:
        plt.colorbar(shown, ax=ax, fraction=0.046, pad=0.04)
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


def plot_diagram(
    dgms: Sequence[np.ndarray], ax=None, title: str | None = None, labels=("H0", "H1"), size=18
):
    """Persistence diagram of a sublevel (births below the diagonal's upper side) or superlevel
    (births >= deaths) filtration; essential bars are drawn on a dashed line marked ∞ (sublevel,
    death +inf) or −∞ (superlevel, death -inf, TopologyLayer's convention)."""
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
    ax.text(
        lo - 2.5 * pad,
        inf_y,
        "−∞" if superlevel else "∞",
        va="bottom" if not superlevel else "top",
        color="gray",
    )
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
    ax.set_xlabel("birth")
    ax.set_ylabel("death")
    ax.set_aspect("equal")
    ax.legend(loc="lower right" if not superlevel else "upper left", fontsize="small")
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

    At most ``max_bars`` bars per dimension are drawn (the longest); essential bars run to the
    edge with an arrow."""
    ax = _axes(ax)
    finite_values = np.concatenate(
        [d[np.isfinite(d)].ravel() for d in dgms if len(d)] + [np.zeros(0)]
    )
    lo, hi = (finite_values.min(), finite_values.max()) if finite_values.size else (0.0, 1.0)
    row = 0
    for k, dgm in enumerate(dgms):
        if len(dgm) == 0:
            continue
        lifetime = np.abs(dgm[:, 1] - dgm[:, 0])
        order = np.argsort(-lifetime, kind="stable")[:max_bars]
        for i, j in enumerate(order):
            b, d = dgm[j]
            end = d if np.isfinite(d) else (lo if d < 0 else hi)
            ax.plot(
                [b, end],
                [row, row],
                color=DIM_COLORS[k % 2],
                lw=2,
                label=f"{labels[k]} ({len(dgm)} bars)" if i == 0 else None,
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
    ax.set_xlabel("filtration value")
    ax.set_ylabel("bar (longest first)")
    ax.set_yticks([])
    ax.invert_yaxis()
    ax.legend(fontsize="small", loc="lower right")
    if title:
        ax.set_title(title)
    return ax


def show_signed(image, ax=None, title: str | None = None, cmap: str = "RdBu_r"):
    """Show a signed map (a gradient, a difference) with zero in white and a colour bar."""
    ax = _axes(ax)
    image = np.asarray(image)
    limit = float(np.abs(image).max()) or 1.0
    shown = ax.imshow(image, cmap=cmap, vmin=-limit, vmax=limit, interpolation="nearest")
    ax.set_xlabel("column c")
    ax.set_ylabel("row r")
    if title:
        ax.set_title(title)
    plt.colorbar(shown, ax=ax, fraction=0.046, pad=0.04)
    return ax


def mark_critical_pixels(ax, pairs, width: int, n_bars: int = 10, labels=("H0", "H1")):
    """Mark the birth (o) and death (x) pixels of the ``n_bars`` longest finite bars of each
    dimension on an image already shown in ``ax``. ``pairs`` is a
    :class:`topobook.persistence.PersistencePairs` of that image (sorted longest first)."""
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
    ax.legend(fontsize="x-small", loc="upper right", framealpha=0.8)
    return ax


def plot_lifetimes(
    diagram: np.ndarray, threshold: float | None = None, ax=None, title: str | None = None
):
    """The H0 diagram turned by 45 degrees: birth against lifetime ``death - birth``, finite
    points only. With ``threshold``, the widest empty band is shaded and the threshold drawn:
    points above the line are the objects Algorithm 1 marks."""
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
            color="tab:red",
            label=f"marked objects ({int(above.sum())})",
        )
        lower = lifetime[lifetime <= threshold].max(initial=0.0)
        upper = lifetime[lifetime > threshold].min(initial=threshold)
        ax.axhspan(lower, upper, color="tab:green", alpha=0.15, label="widest empty band")
        ax.axhline(threshold, color="tab:green", ls="--", lw=1, label=f"threshold {threshold:.3f}")
    ax.set_xlabel("birth")
    ax.set_ylabel("lifetime (death - birth)")
    ax.legend(fontsize="small", loc="upper right")
    if title:
        ax.set_title(title)
    return ax


def forest_plot(
    comparisons: dict[str, dict[str, dict]],
    higher_is_better: dict[str, bool],
    ncols: int = 3,
    panel_size: tuple[float, float] = (3.0, 2.6),
):
    """Paired differences (strategy - baseline), one panel per metric.

    ``comparisons[metric][run]`` is a :func:`topobook.stats.paired_comparison` result: the mean
    difference is drawn as a square with its 95 % interval, each seed's difference as a dot, and
    0 (no difference) as a vertical line; the panel title says which side is better.
    Returns the figure.
    """
    names = list(comparisons)
    nrows = -(-len(names) // ncols)
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
                        [c["high"] - c["mean_difference"]]], fmt="s", color="tab:blue",
                        ms=4, capsize=2, lw=1)
        ax.axvline(0, color="k", lw=0.8)
        ax.set_yticks(range(len(runs)), runs, fontsize=8)
        better = "right" if higher_is_better[metric] else "left"
        ax.set_title(f"{metric} (better: {better})", fontsize=9)
        ax.set_xlabel("difference to baseline", fontsize=8)
        ax.tick_params(axis="x", labelsize=7)
    axes[0, 0].invert_yaxis()  # shared: the first strategy on top in every panel
    for ax in axes.ravel()[len(names):]:
        ax.axis("off")
    fig.tight_layout()
    return fig
