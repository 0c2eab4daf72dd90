"""Raw views, cameras and poses -> the model's batch (the data sampler's layout, B = 1).

At inference there is no dataset: a robot (or the simulator) gives the current image of
each view, each view's :class:`~actionimages.geometry.Camera`, an instruction and, for
action-to-video, a trajectory. :func:`make_batch` frames them exactly as the training
sampler does (scale to cover, centre crop, ``K`` updated to match, action images drawn
by the codec, Plücker maps relative to view 0 at frame 0), so any camera works, not only
the simulator's.

    batch, cams = make_batch(clip, images, cameras, instruction)          # generate / video
    batch, cams = make_batch(clip, images, cameras, instruction, trajectory=(pos, rot, grip))  # a2v
    batch, cams = make_batch(clip, videos, cameras, instruction)          # label: (T, H, W, 3) per view
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch

from actionimages.clips import ClipConfig, resize_crop_cameras, resize_frames
from actionimages.geometry.camera import Camera


def clip_config_of(clip: str | ClipConfig) -> ClipConfig:
    """The inference framing of a clip or clip preset name (centre crop, first views)."""
    return (ClipConfig.preset(clip) if isinstance(clip, str) else clip).for_inference()


def _per_frame(cams: Camera | Sequence[Camera], T: int, view: int) -> list[Camera]:
    if isinstance(cams, Camera):
        return [cams] * T  # a static camera: the same object for every frame
    cams = list(cams)
    if len(cams) == 1:
        return cams * T
    if len(cams) != T:
        raise ValueError(f"view {view}: give 1 camera or one per frame ({T}), got {len(cams)}")
    return cams


def make_batch(
    clip: ClipConfig,
    images: Sequence[np.ndarray],
    cameras: Sequence[Camera | Sequence[Camera]],
    instruction: str,
    trajectory: tuple[np.ndarray, np.ndarray, np.ndarray] | None = None,
    state: tuple[np.ndarray, np.ndarray, float] | None = None,
) -> tuple[dict, list[list[Camera]]]:
    """Build a batch of one clip.

    Args:
        clip: the model's clip settings (frames T, height, width, codec settings).
        images: per view, the current frame (H, W, 3) uint8, or a whole clip (T, H, W, 3)
            uint8 for labelling. Views may differ in size.
        cameras: per view, one Camera (static) or T Cameras (moving, e.g. a wrist view).
            A moving camera's future poses are unknown when generating; give its current
            pose and it is held (stated, not hidden: the model sees a static camera).
        instruction: the task in words.
        trajectory: position (T, 3), rotation (T, 3, 3), gripper (T,) in the world frame,
            drawn as action images (action-to-video); None draws nothing.
        state: the current end-effector pose, position (3,), rotation (3, 3), gripper
            openness, in the world frame. Drawn as frame 0 of the action clips and marked
            known (``batch["first_action_known"]``), for a model trained with a known
            first action (``ModelConfig.first_action_prob > 0``); others ignore it.

    Returns:
        (batch, cams): the batch (B = 1, the sampler's keys) and per view the T cameras
        of the model's image frame (what decoding needs).
    """
    V, T, Ht, Wt = len(images), clip.num_frames, clip.height, clip.width
    if V == 0 or len(cameras) != V:
        raise ValueError(f"need one camera entry per view: {V} views, {len(cameras)} cameras")
    video = torch.empty(V, T, Ht, Wt, 3)
    cams = []
    for v, img in enumerate(images):
        img = np.asarray(img)
        frames = img[None] if img.ndim == 3 else img  # (n, H, W, 3)
        if frames.ndim != 4 or frames.shape[-1] != 3 or frames.dtype != np.uint8:
            raise ValueError(
                f"view {v}: images must be (H, W, 3) or (T, H, W, 3) uint8, got {img.shape} {img.dtype}"
            )
        if len(frames) not in (1, T):
            raise ValueError(
                f"view {v}: a clip must have the model's {T} frames, got {len(frames)}"
            )
        H, W = frames.shape[1:3]
        scale = max(Ht / H, Wt / W)  # cover, then centre-crop (as the sampler at evaluation)
        h, w = max(Ht, round(H * scale)), max(Wt, round(W * scale))
        top, left = (h - Ht) // 2, (w - Wt) // 2
        x = resize_frames(np.array(frames), h, w)[:, top : top + Ht, left : left + Wt]
        video[v] = x.float().div(127.5).sub(1.0).expand(T, -1, -1, -1)  # frame 0 repeated if one
        for c in _per_frame(cameras[v], T, v):
            if (c.height, c.width) != (H, W):
                raise ValueError(
                    f"view {v}: camera is {c.height}x{c.width} but the image is {H}x{W}"
                )
        cams.append(resize_crop_cameras(_per_frame(cameras[v], T, v), h, w, top, left, Ht, Wt))

    K = torch.from_numpy(np.stack([[c.K for c in cv] for cv in cams])).float()  # (V, T, 3, 3)
    E = torch.from_numpy(np.stack([[c.world_to_camera for c in cv] for cv in cams])).float()
    batch = {
        "video": video[None],
        "K": K[None],
        "world_to_camera": E[None],
        "plucker": _plucker(clip, K, E)[None],
        "tasks": torch.ones(1, 4, dtype=torch.bool),
        "instruction": [instruction],
    }
    if trajectory is not None:
        pos, rot, grip = (torch.as_tensor(np.asarray(a), dtype=torch.float32) for a in trajectory)
        if pos.shape != (T, 3) or rot.shape != (T, 3, 3) or grip.shape != (T,):
            raise ValueError(
                f"trajectory must be position ({T}, 3), rotation ({T}, 3, 3), gripper ({T},); got "
                f"{tuple(pos.shape)}, {tuple(rot.shape)}, {tuple(grip.shape)}"
            )
        batch["actions"] = action_images(clip, pos, rot, grip, cams)[None] * 2 - 1
        batch.update(position=pos[None], rotation=rot[None], gripper=grip[None])
    else:
        batch["actions"] = torch.full_like(batch["video"], -1.0)  # the empty action image
        for k, shape in (("position", (T, 3)), ("rotation", (T, 3, 3)), ("gripper", (T,))):
            batch[k] = torch.zeros(1, *shape)
    if state is not None:
        pos, rot = np.asarray(state[0], np.float64), np.asarray(state[1], np.float64)
        grip = float(state[2])
        if (
            pos.shape != (3,)
            or rot.shape != (3, 3)
            or not np.isfinite([*pos, *rot.ravel(), grip]).all()
        ):
            raise ValueError(
                f"state must be a finite position (3,), rotation (3, 3) and gripper; got "
                f"{pos.shape}, {rot.shape}, {grip}"
            )
        first = action_images(clip, pos[None], rot[None], np.array([grip]), [c[:1] for c in cams])
        batch["actions"][0, :, 0] = first[:, 0] * 2 - 1  # (V, H, W, 3) in [-1, 1]
        batch["first_action_known"] = True
    return batch, cams


def action_images(clip: ClipConfig, position, rotation, gripper, cams) -> torch.Tensor:
    """(T, 3), (T, 3, 3), (T,) -> (V, T, H, W, 3) action images in [0, 1] with the clip's codec settings."""
    from actionimages.codec.encoder import encode_action_images

    return torch.as_tensor(
        encode_action_images(
            torch.as_tensor(position, dtype=torch.float32), torch.as_tensor(rotation, dtype=torch.float32),
            torch.as_tensor(gripper, dtype=torch.float32), cams, clip.axis_length, clip.sigma, clip.layout,
        )
    )  # fmt: skip


def _plucker(clip: ClipConfig, K: torch.Tensor, E: torch.Tensor) -> torch.Tensor:
    """(V, T, 3, 3), (V, T, 4, 4) -> (V, T, h, w, 6) at the sampler's stride, relative to view 0 frame 0."""
    from actionimages.geometry.projection import plucker_map

    hs, ws = clip.height // clip.plucker_stride, clip.width // clip.plucker_stride
    small = torch.diag(torch.tensor([ws / clip.width, hs / clip.height, 1.0]))
    K, E = K.double(), E.double()  # as the sampler: rays in float64, stored in float32
    # As the sampler: each view's frame-0 camera for every frame (a moving view's future
    # poses are not known at planning time, and the model never saw them in training).
    K, E = K[:, :1].expand_as(K), E[:, :1].expand_as(E)
    return plucker_map(small.double() @ K, E, hs, ws, reference_world_to_camera=E[0, 0]).float()
