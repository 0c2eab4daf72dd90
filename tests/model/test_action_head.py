"""The learned action head: shapes, fitting, files, input checks, frame conversion."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from actionimages.codec.encoder import encode_action_images
from actionimages.geometry.camera import look_at
from actionimages.geometry.projection import plucker_map
from actionimages.geometry.rig import camera_ring
from actionimages.geometry.rotations import euler_xyz_to_matrix, geodesic_angle
from actionimages.model.action_head import (
    ActionHead,
    ActionHeadConfig,
    intersect_rays,
    reference_to_world,
    world_to_reference,
)
from actionimages.model.latent import PatchPCACodec
from actionimages.train.action_head import codec_round_trip, fit_action_head

B, V, T, S = 2, 2, 5, 32  # batch, views, frames, image size


def make_batch(seed: int = 0, batch: int = B) -> dict[str, torch.Tensor]:
    """Real action images of random poses seen by a camera ring, like collated sampler items."""
    rng = np.random.default_rng(seed)
    out = {
        k: [] for k in ("actions", "plucker", "world_to_camera", "position", "rotation", "gripper")
    }
    for b in range(batch):
        cams = camera_ring(V, S, seed=seed + b)
        pos = np.array([0.0, 0.0, 0.3]) + rng.uniform(-0.08, 0.08, (T, 3))
        rot = euler_xyz_to_matrix(rng.uniform(-0.5, 0.5, (T, 3)) + [np.pi, 0, 0])
        grip = rng.uniform(0, 1, T)
        img = torch.as_tensor(encode_action_images(pos, rot, grip, cams)).float() * 2 - 1
        K = torch.tensor(np.stack([c.K for c in cams]))[:, None].expand(V, T, 3, 3)
        E = torch.tensor(np.stack([c.world_to_camera for c in cams]))[:, None].expand(V, T, 4, 4)
        small = torch.diag(torch.tensor([1 / 8, 1 / 8, 1.0], dtype=K.dtype))
        out["plucker"].append(plucker_map(small @ K, E, S // 8, S // 8, E[0, 0]).float())
        out["actions"].append(img)
        out["world_to_camera"].append(E.float())
        for k, x in (("position", pos), ("rotation", rot), ("gripper", grip)):
            out[k].append(torch.as_tensor(x).float())
    batch_ = {k: torch.stack(v) for k, v in out.items()}
    batch_["frame_valid"] = torch.ones(batch, T, dtype=torch.bool)
    return batch_


@pytest.fixture(scope="module")
def batch():
    torch.manual_seed(0)
    return make_batch()


def test_shapes_and_outputs(batch):
    head = ActionHead(ActionHeadConfig.debug())
    raw = head(batch["actions"], batch["plucker"])
    assert raw.shape == (B, T, 10)
    pos, rot, grip = head.predict(
        batch["actions"], batch["plucker"], batch["world_to_camera"][:, 0, 0]
    )
    assert pos.shape == (B, T, 3) and rot.shape == (B, T, 3, 3) and grip.shape == (B, T)
    eye = torch.eye(3, dtype=rot.dtype).expand_as(rot)
    assert torch.allclose(rot.transpose(-1, -2) @ rot, eye, atol=1e-6)
    assert torch.allclose(torch.linalg.det(rot), torch.ones(B, T, dtype=rot.dtype), atol=1e-6)
    assert float(grip.min()) >= 0 and float(grip.max()) <= 1
    assert head.training  # predict restores the mode it found


def test_view_order_beyond_the_reference_does_not_matter():
    """Fusion by mean and max: swapping views 1 and 2 (view 0 is the frame) changes nothing."""
    torch.manual_seed(1)
    head = ActionHead(ActionHeadConfig.debug()).eval()
    images, plucker = torch.rand(1, 3, T, S, S, 3) * 2 - 1, torch.randn(1, 3, T, 4, 4, 6)
    swap = [0, 2, 1]
    a = head(images, plucker)
    b = head(images[:, swap], plucker[:, swap])
    assert torch.allclose(a, b, atol=1e-6)
    # ...but the images matter: a different image in one view changes the output
    c = head(torch.cat([images[:, :2], -images[:, 2:]], 1), plucker)
    assert float((a - c).detach().abs().max()) > 1e-4


def test_overfits_one_batch(batch):
    torch.manual_seed(0)
    head = ActionHead(ActionHeadConfig.debug(hidden=64, temporal_kernel=1))
    pos, _ = world_to_reference(
        batch["position"], batch["rotation"], batch["world_to_camera"][:, 0, 0]
    )
    head.position_mean.copy_(pos.reshape(-1, 3).mean(0))
    head.position_scale.fill_(0.1)
    opt = torch.optim.Adam(head.parameters(), lr=3e-3)
    losses = []
    for _ in range(200):
        loss, parts = head.loss(batch)
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(loss.item())
    assert set(parts) == {"position", "rotation", "gripper"}
    assert losses[-1] < losses[0] / 10, (losses[0], losses[-1])


def test_invalid_frames_do_not_count(batch):
    head = ActionHead(ActionHeadConfig.debug())
    loss, _ = head.loss(batch)
    masked = dict(batch, frame_valid=batch["frame_valid"].clone())
    masked["frame_valid"][:, 2:] = False
    corrupt = dict(masked, position=masked["position"].clone())
    corrupt["position"][:, 2:] += 5.0  # only the masked frames change
    assert torch.equal(head.loss(masked)[0], head.loss(corrupt)[0])
    assert not torch.equal(head.loss(masked)[0], loss)


def test_save_load_round_trip(tmp_path, batch):
    torch.manual_seed(2)
    head = ActionHead(ActionHeadConfig.debug(keypoints=3)).eval()
    head.position_mean.copy_(torch.tensor([0.1, -0.2, 1.3]))
    head.position_scale.fill_(0.25)
    head.save(tmp_path / "head", training={"steps": 7})
    loaded = ActionHead.load(tmp_path / "head")
    assert loaded.config == head.config and loaded.training_info == {"steps": 7}
    args = (batch["actions"], batch["plucker"], batch["world_to_camera"][:, 0, 0])
    for a, b in zip(head.predict(*args), loaded.predict(*args)):
        assert torch.equal(a, b)
    meta = json.loads((tmp_path / "head" / "config.json").read_text())
    assert meta["config"]["keypoints"] == 3
    assert not list((tmp_path / "head").glob(".*"))  # no temporaries left behind


@pytest.mark.parametrize(
    "images, plucker",
    [
        (torch.zeros(B, V, T, S, S), torch.zeros(B, V, T, 4, 4, 6)),  # no channel axis
        (torch.zeros(B, V, T, S, S, 4), torch.zeros(B, V, T, 4, 4, 6)),  # 4 channels
        (torch.zeros(B, V, T, S, S, 3), torch.zeros(B, V, T, 4, 4, 3)),  # rays need 6
        (torch.zeros(B, V, T, S, S, 3), torch.zeros(B, V + 1, T, 4, 4, 6)),  # views disagree
        (torch.zeros(B, V, T, S, S, 3), torch.zeros(B, V, T, 64, 64, 6)),  # rays larger than images
        (torch.zeros(B, V, T, S, S, 3, dtype=torch.uint8), torch.zeros(B, V, T, 4, 4, 6)),
        (torch.full((B, V, T, S, S, 3), float("nan")), torch.zeros(B, V, T, 4, 4, 6)),
    ],
)
def test_bad_inputs_raise(images, plucker):
    head = ActionHead(ActionHeadConfig.debug())
    with pytest.raises(ValueError):
        head(images, plucker)


def test_bad_config_and_reference_raise(tmp_path, batch):
    with pytest.raises(ValueError, match="fusion"):
        ActionHeadConfig(fusion="sum")
    with pytest.raises(ValueError, match="odd"):
        ActionHeadConfig(temporal_kernel=2)
    with pytest.raises(ValueError, match="preset"):
        ActionHeadConfig.preset("huge")
    head = ActionHead(ActionHeadConfig.debug())
    with pytest.raises(ValueError, match="world_to_camera0"):
        head.predict(batch["actions"], batch["plucker"], torch.eye(4))  # no batch axis
    (tmp_path / "model.safetensors").write_bytes(b"")
    (tmp_path / "config.json").write_text(json.dumps({"kind": "codec"}))
    with pytest.raises(ValueError, match="action head"):
        ActionHead.load(tmp_path)


def test_reference_frame_conversion_is_exact():
    """A hand-made camera: 90 degrees about world z, then 1 m along its own z."""
    E = torch.tensor(
        [[0.0, 1.0, 0.0, 0.0], [-1.0, 0.0, 0.0, 0.0], [0.0, 0.0, 1.0, 1.0], [0, 0, 0, 1.0]],
        dtype=torch.float64,
    )  # x_cam = (y, -x, z + 1)
    p_cam = torch.tensor([[[2.0, -3.0, 5.0]]], dtype=torch.float64)  # (1, T=1, 3)
    R_cam = torch.eye(3, dtype=torch.float64).expand(1, 1, 3, 3)
    p_world, R_world = reference_to_world(p_cam, R_cam, E[None])
    assert torch.equal(p_world, torch.tensor([[[3.0, 2.0, 4.0]]], dtype=torch.float64))
    assert torch.equal(R_world[0, 0], E[:3, :3].T)
    # and the inverse, on a look-at camera and random poses
    E2 = torch.tensor(look_at([0.9, -0.4, 0.7], [0.1, 0.2, 0.25]))[None]
    rng = np.random.default_rng(0)
    p = torch.tensor(rng.normal(size=(1, 6, 3)))
    R = torch.as_tensor(euler_xyz_to_matrix(rng.uniform(-3, 3, (1, 6, 3))))
    p2, R2 = reference_to_world(*world_to_reference(p, R, E2), E2)
    assert torch.allclose(p2, p, atol=1e-12) and float(geodesic_angle(R, R2).max()) < 1e-7


def test_predict_returns_world_coordinates(batch):
    """A head whose output is a fixed reference-frame pose predicts that pose in world."""
    head = ActionHead(ActionHeadConfig.debug(triangulate=False))
    last = head.out[-1]
    torch.nn.init.zeros_(last.weight)
    with torch.no_grad():
        last.bias.copy_(torch.tensor([0.1, 0.2, 1.0, 1, 0, 0, 0, 0, 1, 0.5]))  # e_x, e_z
    E0 = batch["world_to_camera"][:, 0, 0]
    pos, rot, grip = head.predict(batch["actions"], batch["plucker"], E0)
    back, back_rot = world_to_reference(pos, rot, E0.double())
    assert torch.allclose(
        back, torch.tensor([0.1, 0.2, 1.0], dtype=back.dtype).expand_as(back), atol=1e-6
    )
    assert torch.allclose(back_rot, torch.eye(3, dtype=back.dtype).expand_as(back_rot), atol=1e-6)
    assert torch.allclose(grip, torch.full_like(grip, 0.5))


def test_codec_round_trip_shape(batch):
    codec = PatchPCACodec(4, 4, 8).fit([batch["actions"].flatten(0, 1).permute(0, 4, 1, 2, 3)])
    out = codec_round_trip(codec, batch["actions"])
    assert out.shape == batch["actions"].shape and not torch.equal(out, batch["actions"])


def test_fit_writes_a_loadable_head(tmp_path):
    from actionimages.data.lerobot import LeRobotWriter, VideoConfig, WriterConfig
    from actionimages.data.synthetic import synthetic_episode

    data = tmp_path / "data"
    with LeRobotWriter(data, fps=10, config=WriterConfig(video=VideoConfig.h264())) as w:
        for s in range(2):
            w.add_episode(
                synthetic_episode(num_frames=12, size=64, seed=s, views=("front", "left", "top"))
            )
    sample = make_batch(batch=1)
    codec = PatchPCACodec(4, 4, 8).fit([sample["actions"][0].permute(0, 4, 1, 2, 3)])
    head, losses = fit_action_head(
        ActionHeadConfig.debug(), [data], tmp_path / "head", steps=3, batch_size=2, seed=0,
        degrade=codec, progress=False,
    )  # fmt: skip
    assert len(losses) == 3 and all(np.isfinite(losses))
    assert not head.training and float(head.position_scale) > 0.01
    loaded = ActionHead.load(tmp_path / "head")
    assert loaded.training_info["steps"] == 3 and loaded.training_info["batch_size"] == 2
    for key, value in head.state_dict().items():
        assert torch.equal(value, loaded.state_dict()[key]), key
    with pytest.raises(ValueError, match="steps"):
        fit_action_head(ActionHeadConfig.debug(), [data], tmp_path / "x", steps=0)


def test_intersect_rays_recovers_a_point_seen_by_several_cameras():
    """Rays (d, c x d) towards X from 3 camera centres meet at X; blends of one camera's
    rays (what attention pooling makes) are rays of that camera too."""
    rng = np.random.default_rng(3)
    X = torch.tensor(rng.normal(size=(2, 3)), dtype=torch.float64)  # (T=2, 3)
    centres = torch.tensor([[2.0, 0, 0], [0, 2.0, 0.5], [-1.0, -1.5, 1.0]], dtype=torch.float64)
    d = X[None] - centres[:, None]  # (V, T, 3)
    d = d / d.norm(dim=-1, keepdim=True)
    rays = torch.cat([d, torch.linalg.cross(centres[:, None].expand_as(d), d, dim=-1)], -1)
    got = intersect_rays(rays[None, :, :, None], ridge=0.0)  # (B=1, V, T, K=1, 6) -> (1, T, 1, 3)
    assert torch.allclose(got[0, :, 0], X, atol=1e-9)
    # a weighted mean of two rays of camera 0 (one off target) still passes through its centre
    off = torch.tensor([0.3, -0.2, 0.1], dtype=torch.float64)
    d_off = (X[0] + off - centres[0]) / (X[0] + off - centres[0]).norm()
    ray_off = torch.cat([d_off, torch.linalg.cross(centres[0], d_off, dim=-1)])
    blend = 0.7 * rays[0, 0] + 0.3 * ray_off
    n = blend[:3].norm()
    assert torch.allclose(torch.linalg.cross(centres[0], blend[:3] / n, dim=-1), blend[3:] / n)
    assert torch.isfinite(intersect_rays(rays[None, :1, :, None])).all()  # one view: finite
