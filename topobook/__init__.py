"""topobook: the helper package of the book *Topology for image segmentation*.

One module per concept: ``data`` (ISBI 2012, synthetic data, patches; the entry point of every
data set), ``datafiles`` (finding, checking and fetching data files), ``topomortar_data``
(TopoMortar: images, splits, the authors' published results), ``persistence`` (diagrams, Betti
numbers, a differentiable persistence layer), ``unionfind`` (its union-find backend),
``losses`` (the topological loss of eqs. 1-3, clDice, the value-only control),
``betti_matching`` (the Betti matching loss and error), ``skeleton_recall`` (the Skeleton
Recall loss), ``diagram_distances`` (the Wasserstein-2 matching of diagrams), ``tip``
(topological image processing, Algorithm 1), ``unet``, ``train`` (the resumable training runs
and their recipes), ``jobs`` (runs as parallel jobs, locally or on a Dask cluster),
``metrics`` (pixel metrics, Betti errors, clDice), ``isbi_challenge`` (the ISBI challenge's
V_rand and V_info), ``topomortar_metrics`` (the TopoMortar authors' scores), ``evaluation``
(scoring whole slices at one operating point, trivial predictors), ``stats`` (paired tests over
seeds, Holm, equivalence, power), ``plotting`` (figures), ``tables`` (table formatting) and
``timing`` (medians for the timing tables).
"""

# Part of every training run's identity: bump it when a change alters the numbers a run gives.
__version__ = "0.3.0"
