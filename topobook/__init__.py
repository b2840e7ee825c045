"""topobook: the helper package of the book *Topology for image segmentation*.

One module per concept: ``data`` (ISBI 2012, synthetic data, patches), ``persistence``
(diagrams, Betti numbers, a differentiable persistence layer), ``losses`` (the topological loss
of eqs. 1-3, clDice, the value-only control), ``betti_matching`` (the Betti matching loss and
error), ``tip`` (topological image processing, Algorithm 1), ``unet``, ``train`` (the resumable
training runs), ``jobs`` (runs as parallel jobs, locally or on a Dask cluster), ``metrics``
(pixel metrics, Betti errors, the ISBI challenge's V_rand and V_info, clDice), ``evaluation``
(scoring whole slices, trivial predictors), ``stats`` (paired tests over seeds, Holm),
``plotting`` (figures) and ``timing`` (medians for the timing tables).
"""

# Part of every training run's identity: bump it when a change alters the numbers a run gives.
__version__ = "0.2.0"
