"""The world around the tasks: table, backdrop, asset loading, distractors, rendering.

World frame (SPEC section 1): the Panda's base is the origin, z up, the table's top
surface is the plane z = 0 and the robot faces +x. Task objects are URDF files in
``sim/assets/`` (origin and joint conventions in each file's header comment).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from importlib import resources

import numpy as np
import pybullet as p

from actionimages.geometry import Camera
from actionimages.sim.cameras import FAR, NEAR, camera_to_gl
from actionimages.sim.variation import (
    BACKGROUND_COLORS,
    DISTRACTOR_SHAPES,
    TABLE_COLORS,
    Lighting,
    VariationConfig,
    pick_color,
    sample_lighting,
    sample_texture,
)

ASSETS = resources.files("actionimages.sim") / "assets"
# Where task objects and distractors may stand (x, y ranges on the table, metres).
TABLE_REGION = ((0.25, 0.80), (-0.42, 0.42))


def asset_path(name: str) -> str:
    path = ASSETS / f"{name}.urdf"
    if not path.is_file():
        raise FileNotFoundError(f"no simulator asset {name!r} at {path}")
    return str(path)


def yaw_quat(yaw: float) -> list[float]:
    """xyzw quaternion of a rotation by ``yaw`` about world z."""
    return [0.0, 0.0, float(np.sin(yaw / 2)), float(np.cos(yaw / 2))]


@dataclass
class Keepout:
    """A disc on the table that distractors must stay out of."""

    xy: tuple[float, float]
    radius: float


def segment_keepout(a, b, radius: float) -> list[Keepout]:
    """Discs covering the table strip of half-width ``radius`` from ``a`` to ``b`` (xy)."""
    a, b = np.asarray(a, dtype=np.float64)[:2], np.asarray(b, dtype=np.float64)[:2]
    n = int(np.ceil(np.linalg.norm(b - a) / (radius / 2))) + 1
    return [Keepout(tuple(a + (b - a) * t), radius) for t in np.linspace(0.0, 1.0, n)]


@dataclass
class Scene:
    """One PyBullet client's world: ids of what was loaded and how it looks."""

    client: int
    lighting: Lighting = field(default_factory=Lighting)
    backdrop: tuple[float, float, float] = (0.8, 0.8, 0.78)  # RGB behind everything
    table: int = -1
    distractors: list[int] = field(default_factory=list)
    description: dict = field(default_factory=dict)  # the variation drawn, JSON-friendly

    def load(self, name: str, position, yaw: float = 0.0, *, fixed: bool = False) -> int:
        """Load ``assets/<name>.urdf`` at ``position`` (3,), turned by ``yaw`` about z."""
        return p.loadURDF(
            asset_path(name), list(map(float, position)), yaw_quat(yaw),
            useFixedBase=fixed, flags=p.URDF_USE_INERTIA_FROM_FILE, physicsClientId=self.client,
        )  # fmt: skip

    def set_color(self, body: int, rgb, link: int = -1, shape: int = -1) -> None:
        """Recolour one visual shape (``shape`` index within the link) or the whole link."""
        kwargs = {} if shape < 0 else {"shapeIndex": shape}
        p.changeVisualShape(
            body, link, rgbaColor=[*map(float, rgb), 1.0], physicsClientId=self.client, **kwargs
        )

    def set_friction(self, body: int, lateral: float = 1.0, link: int = -1) -> None:
        p.changeDynamics(
            body, link, lateralFriction=lateral, spinningFriction=0.002,
            rollingFriction=0.0005, physicsClientId=self.client,
        )  # fmt: skip

    def pose(self, body: int) -> tuple[np.ndarray, np.ndarray]:
        """Base position (3,) and rotation (3, 3)."""
        pos, quat = p.getBasePositionAndOrientation(body, physicsClientId=self.client)
        rot = np.asarray(p.getMatrixFromQuaternion(quat), dtype=np.float64).reshape(3, 3)
        return np.asarray(pos, dtype=np.float64), rot

    def link_position(self, body: int, link: int) -> np.ndarray:
        state = p.getLinkState(
            body, link, computeForwardKinematics=True, physicsClientId=self.client
        )
        return np.asarray(state[4], dtype=np.float64)

    def joint(self, body: int, joint: int) -> float:
        return float(p.getJointState(body, joint, physicsClientId=self.client)[0])

    def set_joint(self, body: int, joint: int, value: float, friction: float) -> None:
        """Teleport a joint and give it Coulomb-like friction (a zero-velocity motor)."""
        p.resetJointState(body, joint, float(value), physicsClientId=self.client)
        p.setJointMotorControl2(
            body, joint, p.VELOCITY_CONTROL, targetVelocity=0.0, force=friction,
            physicsClientId=self.client,
        )  # fmt: skip


def build_world(scene: Scene, seed: int, variation: VariationConfig) -> None:
    """Table and backdrop, recoloured/textured per ``variation`` with the episode ``seed``."""
    from actionimages.sim.variation import stream

    scene.table = scene.load("table", (0, 0, 0), fixed=True)
    scene.set_friction(scene.table, 0.6)
    pal = variation.palette
    desc = scene.description
    if variation.table_color:
        rgb = TABLE_COLORS[pal][int(stream(seed, "table").integers(len(TABLE_COLORS[pal])))]
        # A texture is multiplied by the colour: tint it lightly so it stays visible.
        tint = 0.5 + 0.5 * np.asarray(rgb) if variation.table_texture else rgb
        scene.set_color(scene.table, tint, shape=0)
        desc["table_color"] = rgb
    if variation.table_texture:
        path = sample_texture(stream(seed, "texture"), pal)
        tex = p.loadTexture(path, physicsClientId=scene.client)
        p.changeVisualShape(
            scene.table, -1, shapeIndex=0, textureUniqueId=tex, physicsClientId=scene.client
        )
        desc["table_texture"] = path.rsplit("/", 1)[-1]
    if variation.background:
        cols = BACKGROUND_COLORS[pal]
        scene.backdrop = cols[int(stream(seed, "background").integers(len(cols)))]
        desc["background"] = scene.backdrop
    if variation.lighting:
        scene.lighting = sample_lighting(stream(seed, "lighting"), pal, variation.shadows)
        desc["lighting"] = scene.lighting.__dict__.copy()
    else:
        scene.lighting = Lighting(shadows=variation.shadows)


def sample_free_xy(
    rng: np.random.Generator,
    keepout: list[Keepout],
    radius: float,
    region=TABLE_REGION,
    tries: int = 200,
) -> np.ndarray | None:
    """A table point whose disc of ``radius`` overlaps no keep-out disc (None if none found)."""
    (x0, x1), (y0, y1) = region
    for _ in range(tries):
        xy = rng.uniform((x0, y0), (x1, y1))
        if np.hypot(*xy) < 0.3:  # the robot's base and its sweep near the body
            continue
        if all(np.hypot(*(xy - k.xy)) > k.radius + radius for k in keepout):
            return xy
    return None


def add_distractors(
    scene: Scene,
    seed: int,
    variation: VariationConfig,
    keepout: list[Keepout],
    exclude_colors=(),
) -> None:
    """Static distractor objects in free table space, in the palette's shapes and colours.

    ``exclude_colors`` (the task objects' colour names) keeps instructions unambiguous.
    """
    from actionimages.sim.variation import stream

    if not variation.distractors or variation.max_distractors <= 0:
        return
    rng = stream(seed, "distractors")
    shapes = DISTRACTOR_SHAPES[variation.palette]
    keep = list(keepout)
    info = []
    for _ in range(int(rng.integers(1, variation.max_distractors + 1))):
        kind = shapes[int(rng.integers(len(shapes)))]
        name, rgb = pick_color(rng, variation.palette, exclude_colors)
        vis, col, height, radius = _distractor_shape(scene.client, kind, rng, rgb)
        xy = sample_free_xy(rng, keep, radius)
        if xy is None:
            continue
        body = p.createMultiBody(
            0.0, col, vis, [float(xy[0]), float(xy[1]), height / 2],
            yaw_quat(rng.uniform(-np.pi, np.pi)), physicsClientId=scene.client,
        )  # fmt: skip
        scene.distractors.append(body)
        keep.append(Keepout(tuple(xy), radius))
        info.append({"shape": kind, "color": name, "xy": [float(v) for v in xy]})
    scene.description["distractors"] = info


def _distractor_shape(client: int, kind: str, rng: np.random.Generator, rgb):
    """(visual id, collision id, height, footprint radius) of a random primitive."""
    rgba = [*map(float, rgb), 1.0]
    if kind == "box":
        half = rng.uniform(0.012, 0.028, 3)
        args = dict(shapeType=p.GEOM_BOX, halfExtents=half.tolist())
        height, radius = 2 * half[2], float(np.hypot(half[0], half[1]))
    elif kind == "sphere":
        r = float(rng.uniform(0.015, 0.03))
        args, height, radius = dict(shapeType=p.GEOM_SPHERE, radius=r), 2 * r, r
    elif kind in ("cylinder", "bottle", "plate"):
        r, h = {
            "cylinder": (rng.uniform(0.015, 0.03), rng.uniform(0.03, 0.08)),
            "bottle": (rng.uniform(0.02, 0.028), rng.uniform(0.10, 0.14)),
            "plate": (rng.uniform(0.045, 0.065), 0.012),
        }[kind]
        args = dict(shapeType=p.GEOM_CYLINDER, radius=float(r), length=float(h))
        height, radius = float(h), float(r)
    elif kind == "capsule":
        r, h = float(rng.uniform(0.015, 0.022)), float(rng.uniform(0.02, 0.05))
        args = dict(shapeType=p.GEOM_CAPSULE, radius=r, length=h)
        height, radius = h + 2 * r, r
    else:
        raise ValueError(f"unknown distractor shape {kind!r}")
    # The two shape builders name a cylinder's extent differently (length vs height).
    col_args = {("height" if k == "length" else k): v for k, v in args.items()}
    vis = p.createVisualShape(rgbaColor=rgba, physicsClientId=client, **args)
    col = p.createCollisionShape(physicsClientId=client, **col_args)
    return vis, col, height, radius


# --- rendering ----------------------------------------------------------------------
def render(
    client: int,
    camera: Camera,
    lighting: Lighting,
    *,
    backdrop=(0.8, 0.8, 0.78),
    segmentation: bool = False,
) -> dict[str, np.ndarray]:
    """Render one view with the CPU renderer.

    Returns ``{"rgb": (H, W, 3) uint8}`` (``backdrop`` RGB in [0, 1] wherever no body
    is seen), plus with ``segmentation`` also
    ``"segmentation"``: (H, W) int body id (-1 = nothing) and ``"link"``: (H, W) link
    index + 1 (0 = base), and ``"depth"``: (H, W) metric z along the optical axis.
    """
    view, proj = camera_to_gl(camera, NEAR, FAR)
    # The object-id mask also finds the background, which gets the scene's backdrop: a
    # painted backdrop costs nothing, where room geometry halved the frame rate.
    flags = p.ER_SEGMENTATION_MASK_OBJECT_AND_LINKINDEX if segmentation else 0
    _, _, rgba, depth, seg = p.getCameraImage(
        camera.width, camera.height, view, proj, renderer=p.ER_TINY_RENDERER, flags=flags,
        physicsClientId=client, **lighting.kwargs(),
    )  # fmt: skip
    H, W = camera.height, camera.width
    seg = np.asarray(seg, dtype=np.int64).reshape(H, W)
    rgb = np.asarray(rgba, dtype=np.uint8).reshape(H, W, 4)[..., :3]
    out = {"rgb": np.where((seg < 0)[..., None], _backdrop(backdrop, H, W), rgb)}
    if segmentation:
        out["segmentation"] = np.where(seg < 0, -1, seg & ((1 << 24) - 1))
        out["link"] = np.where(seg < 0, 0, seg >> 24)
        d = np.asarray(depth, dtype=np.float64).reshape(H, W)
        out["depth"] = FAR * NEAR / (FAR - (FAR - NEAR) * d)
    return out


def _backdrop(rgb, height: int, width: int) -> np.ndarray:
    """(H, W, 3) uint8: the backdrop colour, shaded darker towards the image's bottom."""
    shade = np.linspace(1.0, 0.75, height)[:, None, None]
    col = np.clip(np.asarray(rgb, dtype=np.float64) * shade * 255.0 + 0.5, 0, 255)
    return np.broadcast_to(col.astype(np.uint8), (height, width, 3))
