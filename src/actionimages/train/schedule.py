"""The learning-rate schedule (the flow-matching noise levels are in ``actionimages.model.flow``)."""

from __future__ import annotations


def warmup_constant(warmup_steps: int):
    """LambdaLR factor: linear from 1/(w+1) to 1 over ``warmup_steps``, then 1 (paper: constant)."""

    def factor(step: int) -> float:
        return min(1.0, (step + 1) / (warmup_steps + 1)) if warmup_steps > 0 else 1.0

    return factor
