"""topobook: the helper package of the book *Topology for image segmentation*.

Sub-packages by concept, each importing only those listed before it (a test walks the imports
and fails on any cycle): ``topology`` (union-find, persistence, Betti matching), ``losses``
(the topological loss of the paper's eqs. (1)-(3), clDice, Skeleton Recall, diagram
distances), ``metrics``
(pixel metrics and Betti errors, the ISBI challenge's scores, TopoMortar's, the operating
point), ``datasets`` (data files, ISBI 2012, TopoMortar, synthetic data; a data set is one module
behind a small protocol), ``training`` (configuration and recipes, one run, the U-Net, jobs),
``study`` (statistics, the confirmatory design, the chapter-run planners, tables, timing); and
two modules: ``tip`` (topological image processing, Algorithm 1, above ``topology``) and
``plotting`` (figures).
"""

# Part of every training run's identity: bump it when a change alters the numbers a run gives.
__version__ = "0.3.0"
