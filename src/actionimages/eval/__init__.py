"""Evaluation: the benchmark harness (:mod:`actionimages.eval.harness`) and, later, metrics.

Kept light: nothing heavy is imported until a submodule is used.
"""
