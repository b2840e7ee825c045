"""Training: the configuration and its recipes (``config``), one resumable run step by step
(``run``), the training crops (``patches``), the U-Net (``unet``), runs as parallel jobs
(``jobs``), the machine record of every run (``machine``) and the arithmetic precision of its
forward passes (``precision``). No module here names a data set:
they are plug-ins (:mod:`topobook.datasets`).
"""
