"""Topological image processing (TIP): smoothing, border modification, a lifetime threshold,
object marking (the paper's Algorithm 1) and interpolation of the background.

After Vandaele, Nervo and Gevaert, "Topological image modification for object detection and
topological image processing of skin lesions", Scientific Reports 10:21061 (2020), whose
published implementation (repository ``aida-ugent/TIMprocess``) the paper's authors used; facts
about that implementation that change the output are stated where they matter.

Conventions: ``image`` is a float ``(H, W)`` array, objects are *dark* basins (low values): the
filtration is the sublevel one, ``{image <= t}``, and its H0 diagram is taken with 8-connected
pixels (our ``complex="cubical"``, the same as ripser's ``lower_star_img``). To mark bright
objects, pass the negated image.
"""

from __future__ import annotations

import numpy as np
from scipy import ndimage

from topobook.topology.persistence import (
    check_image,
    diagrams,
    diagrams_from_pairs,
    persistence_pairs,
)

EIGHT = np.ones((3, 3), dtype=bool)
# Tolerances of the original implementation, in image units: the component of a bar is taken
# among pixels with birth - TOLERANCE <= value <= death - TOLERANCE, and a component that meets
# the death pixel of an earlier object is cut at that death - SEPARATION.
TOLERANCE = 0.01
SEPARATION = 0.1


def smooth(image: np.ndarray, window_size: int) -> np.ndarray:
    """Mean over a ``window_size`` x ``window_size`` window (``scipy.ndimage.uniform_filter``,
    borders reflected). Returns float64 ``(H, W)``; ``window_size=1`` returns a copy."""
    if int(window_size) != window_size or window_size < 1:
        raise ValueError(f"window_size must be a positive integer, got {window_size!r}")
    return ndimage.uniform_filter(check_image(image), size=int(window_size))


def modify_border(image: np.ndarray, border_width: int) -> np.ndarray:
    """Set every pixel within ``border_width`` of the image border to ``min(image) - 1``.

    By the elder rule every dark object that touches the border is then born through the border
    and merges into the one essential bar, so only objects inside the image keep finite bars.
    Returns a float64 copy; ``border_width=0`` changes nothing.
    """
    values = check_image(image).copy()
    h, w = values.shape
    if int(border_width) != border_width or border_width < 0:
        raise ValueError(f"border_width must be a non-negative integer, got {border_width!r}")
    if 2 * border_width >= min(h, w):
        raise ValueError(f"border_width {border_width} leaves nothing of a {h}x{w} image")
    if border_width:
        low = values.min() - 1
        values[:border_width, :] = low
        values[h - border_width :, :] = low
        values[:, :border_width] = low
        values[:, w - border_width :] = low
    return values


def h0_diagram(image: np.ndarray, backend: str = "unionfind") -> np.ndarray:
    """The H0 diagram ``(n, 2)`` of the sublevel filtration, 8-connected, with the essential bar
    (death ``inf``).

    ``backend="unionfind"`` (default) or ``"gudhi"`` uses
    :func:`topobook.topology.persistence.diagrams` with that backend (essential bar last; both give
    the same array, in the same order);
    ``"ripser"`` uses ripser's ``lower_star_img``, as the original implementation does. All
    give the same points (tested); only ripser's order differs, which matters to Algorithm 1
    when several points share a birth value.
    """
    if backend == "ripser":
        from ripser import lower_star_img

        return np.asarray(lower_star_img(check_image(image)), dtype=float)
    if backend not in ("unionfind", "gudhi"):
        raise ValueError(f"backend must be 'unionfind', 'gudhi' or 'ripser', got {backend!r}")
    return diagrams(image, superlevel=False, complex="cubical", maxdim=0, backend=backend)[0]


def lifetime_threshold(diagram: np.ndarray) -> float:
    """The threshold in the widest empty band of the diagram parallel to the diagonal.

    The finite lifetimes ``death - birth`` are sorted in decreasing order; the threshold is the
    middle of the largest gap between consecutive ones (the first such gap, counting from the
    longest, if several are equally wide). With a single finite point the gap is taken to the
    diagonal (lifetime 0), so the threshold is half its lifetime. A diagram without finite points
    raises ``ValueError``: there is nothing to separate.
    """
    diagram = np.asarray(diagram, dtype=float).reshape(-1, 2)
    lifetimes = diagram[:, 1] - diagram[:, 0]
    lifetimes = np.sort(lifetimes[np.isfinite(lifetimes)])[::-1]
    if lifetimes.size == 0:
        raise ValueError("the diagram has no finite point, so no lifetime threshold exists")
    if lifetimes.size == 1:
        return float(lifetimes[0] / 2)
    gaps = lifetimes[:-1] - lifetimes[1:]
    i = int(np.argmax(gaps))
    return float((lifetimes[i] + lifetimes[i + 1]) / 2)


def _significant_points(
    image: np.ndarray, diagram: np.ndarray, threshold: float, lookup: str, pairs=None
):
    """(birth value, death value, birth pixel, death pixel) of the points with
    threshold < lifetime < inf, in the order Algorithm 1 takes them (decreasing birth).
    ``pairs``: the H0 persistence pairs of ``image`` if already computed."""
    diagram = np.asarray(diagram, dtype=float).reshape(-1, 2)
    flat = image.ravel()
    if lookup == "critical":
        if pairs is None:
            pairs = persistence_pairs(image, complex="cubical", maxdim=0).finite[0]
        own = np.column_stack([flat[pairs[:, 0]], flat[pairs[:, 1]]])
        finite = diagram[np.isfinite(diagram[:, 1])]
        if own.shape != finite.shape or not np.array_equal(
            own[np.lexsort(own.T[::-1])], finite[np.lexsort(finite.T[::-1])]
        ):
            raise ValueError("diagram is not the H0 sublevel diagram of image (see h0_diagram)")
        births, deaths = own[:, 0], own[:, 1]
        keep = np.flatnonzero(deaths - births > threshold)
        order = keep[np.argsort(-births[keep], kind="stable")]
        return births[order], deaths[order], pairs[order, 0], pairs[order, 1]
    if lookup != "value":
        raise ValueError(f"pixel_lookup must be 'critical' or 'value', got {lookup!r}")
    finite = diagram[np.isfinite(diagram[:, 1])]
    births, deaths = finite[:, 0], finite[:, 1]
    keep = np.flatnonzero(deaths - births > threshold)
    order = np.flip(keep[np.argsort(births[keep])])  # the original's order, numpy's default sort
    births, deaths = births[order], deaths[order]
    # the original implementation: the first pixel (row-major) whose value is nearest
    birth_px = np.array([np.argmin(np.abs(flat - b)) for b in births], dtype=np.int64)
    death_px = np.array([np.argmin(np.abs(flat - d)) for d in deaths], dtype=np.int64)
    return births, deaths, birth_px, death_px


def object_components(
    image: np.ndarray,
    diagram: np.ndarray,
    threshold: float,
    pixel_lookup: str = "value",
    tolerance: float = TOLERANCE,
    separation: float = SEPARATION,
    pairs: np.ndarray | None = None,
) -> list[np.ndarray]:
    """Algorithm 1, one boolean ``(H, W)`` mask per marked object.

    Points with ``threshold < lifetime < inf`` are taken in order of decreasing birth (as the
    original implementation does; the paper's text says decreasing death, but in that order the
    lowering step below can never apply, since earlier deaths are all higher). Among equal
    births, ``"critical"`` keeps the diagram's order and ``"value"`` uses numpy's default sort
    as the original does. For each: the 8-connected component ``C`` of its birth pixel among
    the pixels with
    ``birth - tolerance <= value <= death - tolerance``; if ``C`` contains the death pixel of
    this or an earlier object, the pixels of ``C`` above the lowest such death ``- separation``
    are removed, so that an object does not swallow a younger one that merged into it.

    ``pixel_lookup="critical"`` takes each bar's birth and death pixels from the persistence
    computation; ``"value"`` takes, as the original implementation does, the first pixel
    (row-major) whose value is nearest the birth or death value, which is the same when all
    pixel values are distinct and may pick a pixel elsewhere when they are not (8-bit images
    have many equal values: add a little noise, as the authors' notebook did, or use
    ``"critical"``).
    """
    values = check_image(image)
    births, deaths, birth_px, death_px = _significant_points(
        values, diagram, threshold, pixel_lookup, pairs
    )
    components = []
    for i, (b, d, bp) in enumerate(zip(births, deaths, birth_px, strict=True)):
        band = (values >= b - tolerance) & (values <= d - tolerance)
        labels = ndimage.label(band, EIGHT)[0]
        label = labels.flat[bp]
        if label == 0:  # birth pixel outside the band (lifetime below tolerance): itself only
            component = np.zeros(values.shape, dtype=bool)
            component.flat[bp] = True
        else:
            component = labels == label
        met = [j for j in range(i + 1) if component.flat[death_px[j]]]
        if met:
            component &= values <= deaths[met].min() - separation
        components.append(component)
    return components


def mark_objects(
    image: np.ndarray, diagram: np.ndarray, threshold: float, pixel_lookup: str = "value"
) -> np.ndarray:
    """Algorithm 1 of the paper: the binary image ``J`` (uint8 ``(H, W)``, 1 = marked object) of
    the objects whose H0 bars live longer than ``threshold``. See :func:`object_components`."""
    return _union(object_components(image, diagram, threshold, pixel_lookup), np.shape(image))


def _union(objects: list[np.ndarray], shape: tuple[int, ...]) -> np.ndarray:
    marked = np.zeros(shape, dtype=np.uint8)
    for o in objects:
        marked[o] = 1
    return marked


def interpolate_background(image: np.ndarray, objects) -> np.ndarray:
    """Fill the pixels outside the objects by inverse-distance weighting from the objects.

    ``objects`` is a list of boolean ``(H, W)`` masks (one per object, as
    :func:`object_components` returns) or a single binary mask, whose 8-connected components are
    then the objects. Pixels inside an object keep their value; every other pixel gets
    ``sum_k v_k / d_k / sum_k 1 / d_k`` over the objects ``k``, where ``d_k`` is its Euclidean
    distance to the nearest pixel of object ``k`` and ``v_k`` that pixel's value: a smooth
    transition that stays within the range of the objects' values. With no object, the image
    is returned unchanged.
    """
    values = check_image(image)
    if isinstance(objects, np.ndarray) and objects.ndim == 2:
        labels, n = ndimage.label(objects.astype(bool), EIGHT)
        objects = [labels == k for k in range(1, n + 1)]
    objects = [np.asarray(o, dtype=bool) for o in objects]
    if any(o.shape != values.shape for o in objects):
        raise ValueError("every object mask must have the image's shape")
    marked = _union(objects, values.shape).astype(bool)
    if not marked.any():
        return values.copy()
    numerator = np.zeros(values.shape)
    denominator = np.zeros(values.shape)
    outside = ~marked
    for o in objects:
        if not o.any():
            continue
        distance, (rows, cols) = ndimage.distance_transform_edt(~o, return_indices=True)
        nearest = values[rows, cols]
        numerator[outside] += nearest[outside] / distance[outside]
        denominator[outside] += 1.0 / distance[outside]
    processed = values.copy()
    processed[outside] = numerator[outside] / denominator[outside]
    return processed


def process(
    image: np.ndarray,
    window_size: int | None = None,
    border_width: int | None = None,
    threshold: float | None = None,
    pixel_lookup: str = "value",
) -> dict:
    """The whole TIP pipeline on one image ``(H, W)`` (dark objects on a brighter background).

    Smoothing (``window_size``, skipped if None), border modification (``border_width``, skipped
    if None), the H0 diagram, the lifetime threshold (computed if None), Algorithm 1 and the
    interpolation. Returns a dict: ``modified`` (the smoothed, border-modified image),
    ``components`` (uint8 mask of marked objects), ``processed`` (the interpolated image),
    ``threshold`` and ``diagram``.
    """
    modified = check_image(image)
    if window_size is not None:
        modified = smooth(modified, window_size)
    if border_width is not None:
        modified = modify_border(modified, border_width)
    if pixel_lookup == "critical":
        pairs = persistence_pairs(modified, complex="cubical", maxdim=0)
        diagram = diagrams_from_pairs(modified, pairs)[0]
    elif np.unique(modified).size == modified.size:
        pairs, diagram = None, h0_diagram(modified)  # distinct values: no order ties
    else:  # ties: the original implementation's diagram, in its order
        pairs, diagram = None, h0_diagram(modified, backend="ripser")
    if threshold is None:
        threshold = lifetime_threshold(diagram)
    objects = object_components(
        modified,
        diagram,
        threshold,
        pixel_lookup,
        pairs=None if pairs is None else pairs.finite[0],
    )
    return {
        "modified": modified,
        "components": _union(objects, modified.shape),
        "processed": interpolate_background(modified, objects),
        "threshold": float(threshold),
        "diagram": diagram,
    }
