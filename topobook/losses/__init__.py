"""Training losses: the topological loss of the paper's eqs. (1)-(3), clDice, the value-only
control and the training objective (``topological``), Skeleton Recall (``skeleton_recall``), SCNP's
same-class neighbour penalisation of the logits (``scnp``) and the
Wasserstein-2 matching of diagrams (``diagram_distances``). The Betti matching loss is in
:mod:`topobook.topology.betti_matching`.
"""
