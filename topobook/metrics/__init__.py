"""Scores of a segmentation: pixel metrics, Betti errors and clDice (``pixel``), the ISBI 2012
challenge's V_rand and V_info (``isbi_challenge``), the TopoMortar authors' scores
(``topomortar_metrics``), and the scoring of whole slices at one operating point with the
trivial predictors (``evaluation``).
"""
