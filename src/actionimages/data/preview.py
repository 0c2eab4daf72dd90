"""Looking at a dataset: a text summary, an action-image preview video, a 3-D trajectory plot.

actionimages data info DIR
actionimages data preview DIR --episode K [--out FOLDER]
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from actionimages.data.episode import Episode
from actionimages.data.lerobot_reader import LeRobotDataset


def dataset_summary(root: str | Path) -> str:
    """A few lines describing the dataset at ``root``."""
    ds = LeRobotDataset(root)
    lengths = np.array([r["length"] for r in ds.episodes]) if ds.episodes else np.zeros(1)
    size_mb = sum(p.stat().st_size for p in Path(root).rglob("*") if p.is_file()) / 2**20
    lines = [
        f"dataset     {Path(root).resolve()}",
        f"format      LeRobot {ds.info['codebase_version']}, robot {ds.info.get('robot_type')}",
        f"episodes    {ds.num_episodes}, frames {ds.num_frames} at {ds.fps:g} fps "
        f"({ds.num_frames / ds.fps / 60:.1f} min), {size_mb:.1f} MB on disk",
        f"lengths     min {lengths.min()}, mean {lengths.mean():.1f}, max {lengths.max()} frames",
        f"tasks       {len(ds.tasks)}" + (f": {ds.tasks[0]!r}" if ds.tasks else ""),
    ]
    for key, cam in zip([*ds.video_keys, *ds.image_keys], ds.camera_names, strict=True):
        ft = ds.features[key]
        info = ft.get("info") or {}
        calib = "calibrated" if cam in ds.calibrated_cameras else "video-only"
        lines.append(
            f"view        {cam}: {ft['shape'][0]}x{ft['shape'][1]}, "
            f"{info.get('video.codec', '?')}/{info.get('video.pix_fmt', '?')}, {calib}"
        )
    actions = (
        "poses (x, y, z, quaternion, gripper)" if ds.has_pose_layout else "none in pose layout"
    )
    lines.append(f"actions     {actions}")
    if ds.has_pose_layout and ds.num_episodes:
        usable = sum(_has_cameras(ds, k) for k in range(ds.num_episodes))
        lines.append(f"masking     {usable}/{ds.num_episodes} episodes can render action images")
    return "\n".join(lines)


def _has_cameras(ds: LeRobotDataset, k: int) -> bool:
    return bool(ds.read_cameras(k, frames=np.array([0])))


def render_preview_frames(episode: Episode, size: int | None = None) -> np.ndarray:
    """(T, H, V*W, 3) uint8: every view, action images blended over calibrated ones."""
    from actionimages.codec.encoder import encode_action_images
    from actionimages.viz import overlay_action_images, tile_views

    views = []
    for cam, frames in episode.images.items():
        cams = episode.cameras.get(cam)
        if size is not None and frames.shape[1:3] != (size, size):
            frames = _resize(frames, size)
            cams = [c.resized(size, size) for c in cams] if cams else None
        if cams and episode.has_actions:
            action = encode_action_images(
                episode.position, episode.rotation, episode.gripper, [cams]
            )
            frames = overlay_action_images(frames, action[0])
        views.append(frames)
    sizes = {v.shape[1:3] for v in views}
    if len(sizes) > 1:  # views of different sizes: bring them to the first one's size
        h, w = views[0].shape[1:3]
        views = [v if v.shape[1:3] == (h, w) else _resize(v, h, w) for v in views]
    return tile_views(np.stack(views))  # (V, T, H, W, 3) -> (T, H, V*W, 3)


def _resize(frames: np.ndarray, h: int, w: int | None = None) -> np.ndarray:
    import torch
    import torch.nn.functional as F

    w = w or h
    x = torch.from_numpy(frames).permute(0, 3, 1, 2).float()  # (T, H, W, 3) -> (T, 3, H, W)
    y = F.interpolate(x, size=(h, w), mode="bilinear", antialias=True, align_corners=False)
    return y.round().clamp(0, 255).byte().permute(0, 2, 3, 1).numpy()  # (T, h, w, 3)


def plot_trajectory(episode: Episode, path: str | Path, title: str = "") -> Path:
    """PNG: the end-effector path close up (coloured by gripper, with its axes) and the
    whole scene with the camera centres and viewing directions."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    p, R, g = episode.position, episode.rotation, episode.gripper
    fig = plt.figure(figsize=(11, 5))
    close, scene = (
        fig.add_subplot(1, 2, 1, projection="3d"),
        fig.add_subplot(1, 2, 2, projection="3d"),
    )
    centres = [cams[0].center for cams in episode.cameras.values()]
    if episode.has_actions:
        span = float(np.ptp(p, axis=0).max()) or 0.1
        for ax in (close, scene):
            ax.plot(*p.T, color="0.6", lw=1)
            sc = ax.scatter(*p.T, c=g, cmap="coolwarm_r", vmin=0, vmax=1, s=8)
        step = max(1, len(p) // 10)
        for t in range(0, len(p), step):  # e_x red, e_y green, e_z (approach) blue
            for axis, colour in zip(range(3), "rgb", strict=True):
                close.plot(
                    *np.stack([p[t], p[t] + 0.15 * span * R[t, :, axis]]).T, color=colour, lw=1.5
                )
        close.scatter(*p[0], color="k", marker="o", s=40, label="start")
        close.scatter(*p[-1], color="k", marker="x", s=40, label="end")
        close.legend(loc="upper left", fontsize=7)
        fig.colorbar(sc, ax=scene, shrink=0.6, label="gripper openness (1 = open)")
        _equal_axes(close, p)
    close.set_title("end effector (axes: e_x red, e_y green, e_z approach blue)", fontsize=8)
    look = p.mean(0) if episode.has_actions else np.zeros(3)
    for (cam, cams), c in zip(episode.cameras.items(), centres, strict=True):
        d = cams[0].camera_to_world[:3, 2]  # optical axis in the world
        reach = 0.3 * max(np.linalg.norm(look - c), 0.1)
        scene.plot(*np.stack([c, c + reach * d]).T, color="k", lw=1)
        scene.scatter(*c, marker="^", s=40)
        scene.text(*c, cam, fontsize=7)
    _equal_axes(scene, np.concatenate([p if episode.has_actions else np.zeros((0, 3)),
                                       np.reshape(centres, (-1, 3))]))  # fmt: skip
    scene.set_title("scene: cameras (optical axes) and the path", fontsize=8)
    for ax in (close, scene):
        ax.set_xlabel("x (m)")
        ax.set_ylabel("y (m)")
        ax.set_zlabel("z (m)")
    fig.suptitle(title or episode.instruction, fontsize=10)
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path


def _equal_axes(ax, points: np.ndarray) -> None:
    if len(points) == 0:
        return
    lo, hi = points.min(0), points.max(0)
    centre, half = (lo + hi) / 2, max(float((hi - lo).max()) / 2, 0.05)
    for setter, c in zip((ax.set_xlim, ax.set_ylim, ax.set_zlim), centre, strict=True):
        setter(c - half, c + half)


def projection_sheet(episode: Episode, num_frames: int = 4, scale: int = 2) -> np.ndarray:
    """(F*H*scale, V*W*scale, 3) uint8: calibrated views at F frames, the recorded
    end-effector position marked by a cross (yellow) and the approach axis tip (cyan).

    For checking a camera convention by eye: the cross must sit on the gripper.
    """
    views = [c for c in episode.images if c in episode.cameras]
    if not views or not episode.has_actions:
        raise ValueError("projection sheet needs calibrated views and poses")
    frames = np.linspace(0, episode.num_frames - 1, num_frames).round().astype(int)
    rows = []
    for t in frames:
        tiles = []
        for cam in views:
            img = np.repeat(np.repeat(episode.images[cam][t], scale, 0), scale, 1)  # upsample
            c = episode.cameras[cam][t]
            tip = episode.position[t] + 0.1 * episode.rotation[t][:, 2]
            uv, depth = c.project(np.stack([episode.position[t], tip]))
            for (u, v), d, colour in zip(
                uv * scale, depth, ([255, 230, 0], [0, 230, 255]), strict=True
            ):
                if d > 0:
                    _cross(img, u, v, colour)
            tiles.append(img)
        rows.append(np.concatenate(tiles, axis=1))
    return np.concatenate(rows, axis=0)


def _cross(img: np.ndarray, u: float, v: float, colour, arm: int = 6) -> None:
    """Draw a '+' centred at pixel coordinates (u, v) in place (clipped to the image)."""
    H, W = img.shape[:2]
    i, j = int(np.floor(v)), int(np.floor(u))
    offsets = np.arange(-arm, arm + 1)
    rows = np.concatenate([np.full_like(offsets, i), i + offsets])
    cols = np.concatenate([j + offsets, np.full_like(offsets, j)])
    keep = (rows >= 0) & (rows < H) & (cols >= 0) & (cols < W)
    img[rows[keep], cols[keep]] = colour


def write_preview(
    root: str | Path, episode: int, out: str | Path, size: int | None = None
) -> tuple[Path, ...]:
    """Write ``episode<K>_preview.mp4``, ``episode<K>_trajectory.png`` and, for calibrated
    data, ``episode<K>_projection.png`` (see :func:`projection_sheet`) into ``out``."""
    from actionimages.viz import write_mp4

    ds = LeRobotDataset(root)
    ep = ds.read_episode(episode)
    out = Path(out)
    video = write_mp4(
        out / f"episode{episode}_preview.mp4", render_preview_frames(ep, size), fps=ds.fps
    )
    title = f"{Path(root).name} episode {episode}: {ep.instruction}"
    png = plot_trajectory(ep, out / f"episode{episode}_trajectory.png", title=title)
    if not (ep.has_cameras and ep.has_actions):
        return video, png
    from PIL import Image

    sheet = out / f"episode{episode}_projection.png"
    Image.fromarray(projection_sheet(ep)).save(sheet)
    return video, png, sheet
