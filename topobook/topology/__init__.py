"""Topology of images: union-find persistence, cubical persistence diagrams and Betti numbers,
a differentiable persistence layer, and Betti matching.

Floors, bottom up: ``unionfind`` (the numba union-find backend), ``persistence`` (diagrams,
Betti numbers, :class:`~topobook.topology.persistence.PersistenceLayer`), ``betti_matching``
(the matching of two images' bars, its loss and its error).
"""
