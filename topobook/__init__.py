"""topobook: the helper package of the book *Topology for image segmentation*.

One module per concept: ``data`` (ISBI 2012, synthetic data, patches), ``persistence``
(diagrams, Betti numbers, a differentiable persistence layer), ``losses`` (the topological loss
of eqs. 1-3), ``tip`` (topological image processing, Algorithm 1), ``unet``, ``train`` (the
resumable training runs), ``metrics`` (pixel metrics and Betti errors), ``plotting`` (figures)
and ``timing`` (medians for the timing tables).
"""

__version__ = "0.1.0"
