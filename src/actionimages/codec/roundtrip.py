"""Round trips through the codec: error statistics against the recorded trajectory.

The RLBench demo that prints them (``actionimages codec demo``) lives in
:mod:`actionimages.eval.codec_demo`.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from actionimages.codec.decoder import DecodedActions
from actionimages.geometry.rotations import geodesic_angle


@dataclass(frozen=True)
class RoundTripErrors:
    """Median and 95th-percentile errors of a decoded trajectory against the truth."""

    position_mm_median: float
    position_mm_p95: float
    rotation_deg_median: float
    rotation_deg_p95: float
    gripper_median: float
    gripper_max: float
    filled_steps: int  # steps where some point could not be located

    def row(self) -> list[str]:
        return [f"{self.position_mm_median:.3g}", f"{self.position_mm_p95:.3g}",
                f"{self.rotation_deg_median:.3g}", f"{self.rotation_deg_p95:.3g}",
                f"{self.gripper_median:.3g}", f"{self.gripper_max:.3g}", str(self.filled_steps)]  # fmt: skip


ERROR_HEADER = ["pos median (mm)", "pos p95 (mm)", "rot median (deg)", "rot p95 (deg)",
                "grip median", "grip max", "filled steps"]  # fmt: skip


def roundtrip_errors(position, rotation, gripper, decoded: DecodedActions) -> RoundTripErrors:
    """Errors of ``decoded`` against the true (T, 3), (T, 3, 3), (T,) trajectory."""
    dp = np.linalg.norm(np.asarray(decoded.position) - position, axis=-1) * 1000.0
    dr = np.degrees(geodesic_angle(np.asarray(decoded.rotation), np.asarray(rotation)))
    dg = np.abs(np.asarray(decoded.gripper) - gripper)
    return RoundTripErrors(
        float(np.median(dp)), float(np.percentile(dp, 95)),
        float(np.median(dr)), float(np.percentile(dr, 95)),
        float(np.median(dg)), float(dg.max()), int((~np.asarray(decoded.ok)).sum()),
    )  # fmt: skip


def markdown_table(header: list[str], rows: list[list[str]]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(r) + " |" for r in rows]
    return "\n".join(lines)
