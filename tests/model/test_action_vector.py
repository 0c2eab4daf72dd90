"""The low-dimensional action baseline's latent layout, and the action-frame loss weight."""

from __future__ import annotations

import pytest
import torch

from actionimages.geometry import quat_xyzw_to_matrix
from actionimages.model.action_vector import (
    latents_to_vectors,
    pose_to_vector,
    vector_to_pose,
    vectors_to_latents,
)
from actionimages.model.masking import PREDICTED
from actionimages.model.packing import ACTION, frame_roles
from tests.model.helpers import debug_wam, synthetic_batch


def random_poses(B, T, seed=0):
    g = torch.Generator().manual_seed(seed)
    q = torch.randn(B, T, 4, generator=g, dtype=torch.float64)
    return (torch.rand(B, T, 3, generator=g, dtype=torch.float64) * 0.6 + 0.2,
            quat_xyzw_to_matrix(q / q.norm(dim=-1, keepdim=True)), torch.rand(B, T, generator=g, dtype=torch.float64))  # fmt: skip


def test_vectors_survive_the_latent_layout():
    pos, rot, grip = random_poses(2, 9)
    lat = vectors_to_latents(pose_to_vector(pos, rot, grip), 4, (16, 8, 8))
    assert lat.shape == (2, 16, 3, 8, 8)
    p, r, g = vector_to_pose(latents_to_vectors(lat, 4))
    assert (
        torch.allclose(p, pos, atol=1e-9)
        and torch.allclose(r, rot, atol=1e-9)
        and torch.allclose(g, grip)
    )


def test_latent_frames_hold_their_own_frames_only():
    """Frame 0 sits alone in latent frame 0; frames 1-4 in latent frame 1; noise elsewhere is averaged."""
    pos, rot, grip = random_poses(1, 9)
    vec = pose_to_vector(pos, rot, grip)
    lat = vectors_to_latents(vec, 4, (4, 4, 4))
    lat[:, :, 2] += 5.0  # corrupt latent frame 2 (frames 5-8)
    back = latents_to_vectors(lat, 4)
    assert torch.allclose(back[:, :5], vec[:, :5], atol=1e-9)
    assert not torch.allclose(back[:, 5:], vec[:, 5:])
    with pytest.raises(ValueError):
        vectors_to_latents(vec[..., :9], 4, (4, 4, 4))
    with pytest.raises(ValueError):
        vectors_to_latents(vec, 4, (1, 2, 2))  # 4 values cannot hold 40


def test_action_weight_reweights_exactly_the_action_frames():
    wam = debug_wam()
    enc = wam.encode_batch(synthetic_batch(2))
    tasks = torch.tensor([0, 0])  # joint: video and action frames predicted

    def run(w):
        return wam.loss(
            enc, torch.Generator().manual_seed(1), (1, 0, 0, 0), tasks=tasks, action_weight=w
        )

    (l1, info), (l4, _) = run(1.0), run(4.0)
    # recompute the per-modality mean errors by hand from the same draw
    modality = frame_roles(enc.num_views, enc.frames_per_clip)[0]
    predicted = info["states"][0] == PREDICTED
    n_act = int((predicted & (modality == ACTION)).sum())
    n_vid = int((predicted & (modality != ACTION)).sum())
    # l(w) = (S_v + w S_a) / (n_v + w n_a) with per-frame sums S: two weights pin down S_v, S_a
    s_a = (l4 * (n_vid + 4 * n_act) - l1 * (n_vid + n_act)) / 3
    s_v = l1 * (n_vid + n_act) - s_a
    assert s_a > 0 and s_v > 0
    l2 = run(2.0)[0]
    assert torch.allclose(l2, (s_v + 2 * s_a) / (n_vid + 2 * n_act), rtol=1e-4)
