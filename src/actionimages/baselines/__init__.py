"""Baseline policies the world action model is compared against.

- :mod:`actionimages.baselines.bc`: multi-view behaviour cloning with action chunks
  (config, network, :class:`~actionimages.baselines.bc.BCPolicy`);
- :mod:`actionimages.baselines.bc_train`: its training loop, ``train_bc``.
"""
