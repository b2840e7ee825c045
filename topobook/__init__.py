"""topobook: the helper package of the book *Topological data analysis for image segmentation*.

One module per concept: ``data`` (ISBI 2012, synthetic data, patches), ``persistence`` (diagrams,
Betti numbers, a differentiable persistence layer), ``plotting`` (figures of the book).
"""

__version__ = "0.1.0"
