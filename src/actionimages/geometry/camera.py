"""The pinhole camera of SPEC section 1 (OpenCV convention).

``K`` is 3x3 with positive focal lengths; ``world_to_camera`` is a 4x4 rigid transform
[R | t] into a camera frame with x right, y down, z forward. A pixel (u, v) is
continuous with its origin at the image's top-left corner, so the pixel in row i,
column j has its centre at (j + 0.5, i + 0.5). With that convention, resizing an image
by a factor s scales fx, fy, cx, cy by exactly s, and cropping shifts cx, cy by the
crop offset: :meth:`Camera.resized` and :meth:`Camera.cropped` rely on it.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

# Flips y and z: an OpenCV camera frame <-> an OpenGL eye frame (its own inverse).
GL_FROM_CV = np.diag([1.0, -1.0, -1.0, 1.0])


@dataclass(frozen=True, eq=False)
class Camera:
    """One calibrated view. Arrays are stored as read-only float64 copies.

    Attributes:
        K: (3, 3) intrinsics, fx, fy > 0, last row (0, 0, 1).
        world_to_camera: (4, 4) rigid transform, bottom row (0, 0, 0, 1).
        height, width: image size in pixels.
    """

    K: np.ndarray
    world_to_camera: np.ndarray
    height: int
    width: int

    def __post_init__(self) -> None:
        K = np.array(self.K, dtype=np.float64)
        E = np.array(self.world_to_camera, dtype=np.float64)
        if K.shape != (3, 3):
            raise ValueError(f"Camera.K must be 3x3, got shape {K.shape}")
        if E.shape != (4, 4):
            raise ValueError(f"Camera.world_to_camera must be 4x4, got shape {E.shape}")
        if not (np.isfinite(K).all() and np.isfinite(E).all()):
            raise ValueError("Camera.K or world_to_camera contains NaN or inf")
        if not (K[0, 0] > 0 and K[1, 1] > 0):
            raise ValueError(
                f"Camera.K needs positive focal lengths (OpenCV convention), got fx={K[0, 0]}, "
                f"fy={K[1, 1]}; convert negative-focal conventions (RLBench/PyRep) first"
            )
        if not np.allclose(K[2], [0, 0, 1], atol=1e-9):
            raise ValueError(f"Camera.K's last row must be (0, 0, 1), got {K[2]}")
        R = E[:3, :3]
        if not np.allclose(E[3], [0, 0, 0, 1], atol=1e-9):
            raise ValueError(f"world_to_camera's bottom row must be (0, 0, 0, 1), got {E[3]}")
        if not np.allclose(R @ R.T, np.eye(3), atol=1e-4) or np.linalg.det(R) < 0:
            raise ValueError(
                "world_to_camera's rotation block is not a proper rotation "
                "(orthonormal, det +1); pass a rigid transform"
            )
        h, w = int(self.height), int(self.width)
        if h != self.height or w != self.width or h <= 0 or w <= 0:
            raise ValueError(
                f"Camera height/width must be positive integers, got {self.height}x{self.width}"
            )
        K.setflags(write=False)
        E.setflags(write=False)
        object.__setattr__(self, "K", K)
        object.__setattr__(self, "world_to_camera", E)
        object.__setattr__(self, "height", h)
        object.__setattr__(self, "width", w)

    # --- derived quantities -------------------------------------------------------
    @property
    def camera_to_world(self) -> np.ndarray:
        """(4, 4) inverse of ``world_to_camera``, computed with the rigid-body formula."""
        R, t = self.world_to_camera[:3, :3], self.world_to_camera[:3, 3]
        out = np.eye(4)
        out[:3, :3] = R.T
        out[:3, 3] = -R.T @ t
        return out

    @property
    def center(self) -> np.ndarray:
        """(3,) camera centre in world coordinates."""
        return self.camera_to_world[:3, 3]

    @property
    def projection_matrix(self) -> np.ndarray:
        """(3, 4) P = K [R | t]."""
        return self.K @ self.world_to_camera[:3]

    def project(self, points: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """World points (..., 3) -> pixels (..., 2) and depths (...). See ``project_points``."""
        from actionimages.geometry.projection import project_points

        return project_points(np.asarray(points, dtype=np.float64), self.K, self.world_to_camera)

    # --- image operations ---------------------------------------------------------
    def resized(self, height: int, width: int) -> Camera:
        """The same camera for the image resized (stretched) to ``height`` x ``width``."""
        sx, sy = width / self.width, height / self.height
        K = np.diag([sx, sy, 1.0]) @ self.K
        return Camera(K, self.world_to_camera, height, width)

    def cropped(self, top: int, left: int, height: int, width: int) -> Camera:
        """The same camera for the crop ``[top:top+height, left:left+width]``."""
        K = self.K.copy()
        K[0, 2] -= left
        K[1, 2] -= top
        return Camera(K, self.world_to_camera, height, width)

    # --- serialisation ------------------------------------------------------------
    def to_dict(self) -> dict[str, Any]:
        """JSON-friendly dict (lists of floats)."""
        return {
            "K": self.K.tolist(),
            "world_to_camera": self.world_to_camera.tolist(),
            "height": self.height,
            "width": self.width,
        }

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Camera:
        missing = {"K", "world_to_camera", "height", "width"} - set(d)
        if missing:
            raise ValueError(f"camera dict is missing {sorted(missing)}")
        return cls(np.asarray(d["K"]), np.asarray(d["world_to_camera"]), d["height"], d["width"])

    @classmethod
    def look_at(
        cls,
        eye: Sequence[float],
        target: Sequence[float],
        up: Sequence[float] = (0.0, 0.0, 1.0),
        *,
        fov_y_deg: float = 60.0,
        height: int = 256,
        width: int = 256,
    ) -> Camera:
        """A camera at ``eye`` looking at ``target``, square pixels, principal point centred."""
        fy = 0.5 * height / np.tan(np.deg2rad(fov_y_deg) / 2)
        K = np.array([[fy, 0, width / 2], [0, fy, height / 2], [0, 0, 1.0]])
        return cls(K, look_at(eye, target, up), height, width)

    # --- other conventions ----------------------------------------------------------
    @classmethod
    def from_gl_matrices(
        cls, view: np.ndarray, projection: np.ndarray, height: int, width: int
    ) -> Camera:
        """The camera of OpenGL ``view`` (4, 4) and ``projection`` (4, 4) matrices, row-major.

        OpenGL (and MuJoCo, three.js, Isaac's viewport): the eye looks down -z with y up,
        and the projection maps to normalised device coordinates. An OpenGL eye point
        x_gl = V X is x_cv = diag(1, -1, -1) x_gl in this project's OpenCV convention;
        NDC x = P00 x_cv / z_cv - P02 and y = -P11 y_cv / z_cv - P12, window u = (x + 1) W / 2,
        v = (1 - y) H / 2 with row 0 at the top. Hence fx = P00 W / 2, cx = (1 - P02) W / 2,
        fy = P11 H / 2, cy = (1 + P12) H / 2. (PyBullet gives column-major lists:
        ``np.reshape(m, (4, 4)).T``.)
        """
        V = np.asarray(view, dtype=np.float64).reshape(4, 4)
        P = np.asarray(projection, dtype=np.float64).reshape(4, 4)
        if abs(P[3, 2] + 1.0) > 1e-9 or abs(P[0, 1]) > 1e-9 or abs(P[1, 0]) > 1e-9:
            raise ValueError("not a perspective OpenGL projection matrix (expected P[3,2] = -1)")
        cx, cy = (1.0 - P[0, 2]) * width / 2.0, (1.0 + P[1, 2]) * height / 2.0
        K = np.array(
            [[P[0, 0] * width / 2.0, 0.0, cx], [0.0, P[1, 1] * height / 2.0, cy], [0, 0, 1]]
        )
        return cls(K, GL_FROM_CV @ V, height, width)

    @classmethod
    def from_opengl(cls, view: np.ndarray, fov_y_deg: float, height: int, width: int) -> Camera:
        """An OpenGL / MuJoCo camera: world-to-eye ``view`` (4, 4) and vertical field of view.

        Square pixels, principal point at the image centre (MuJoCo's ``cam_fovy``). For
        MuJoCo, ``view`` is the inverse of the camera's pose (``cam_xpos``, ``cam_xmat``).
        """
        if not 0 < fov_y_deg < 180:
            raise ValueError(f"fov_y_deg must lie in (0, 180), got {fov_y_deg}")
        f = 0.5 * height / np.tan(np.deg2rad(fov_y_deg) / 2)
        K = np.array([[f, 0, width / 2], [0, f, height / 2], [0, 0, 1.0]])
        return cls(K, GL_FROM_CV @ np.asarray(view, dtype=np.float64).reshape(4, 4), height, width)

    def to_gl_matrices(
        self, near: float = 0.01, far: float = 10.0
    ) -> tuple[np.ndarray, np.ndarray]:
        """(view (4, 4), projection (4, 4)) row-major OpenGL matrices (inverse of the above)."""
        H, W = self.height, self.width
        (fx, skew, cx), (_, fy, cy), _ = self.K
        if abs(skew) > 1e-12:
            raise ValueError("OpenGL projection matrices cannot express a skewed K")
        proj = np.zeros((4, 4))
        proj[0, 0], proj[0, 2] = 2.0 * fx / W, 1.0 - 2.0 * cx / W
        proj[1, 1], proj[1, 2] = 2.0 * fy / H, 2.0 * cy / H - 1.0
        proj[2, 2], proj[2, 3] = -(far + near) / (far - near), -2.0 * far * near / (far - near)
        proj[3, 2] = -1.0
        return GL_FROM_CV @ self.world_to_camera, proj

    def __repr__(self) -> str:
        c = np.round(self.center, 3).tolist()
        return f"Camera({self.height}x{self.width}, fx={self.K[0, 0]:.1f}, center={c})"


def look_at(
    eye: Sequence[float], target: Sequence[float], up: Sequence[float] = (0.0, 0.0, 1.0)
) -> np.ndarray:
    """OpenCV ``world_to_camera`` (4, 4) for a camera at ``eye`` looking at ``target``.

    The camera's y axis points down, so ``up`` (world) appears at the top of the image.
    """
    eye, target, up = (np.asarray(x, dtype=np.float64) for x in (eye, target, up))
    if any(v.shape != (3,) or not np.isfinite(v).all() for v in (eye, target, up)):
        raise ValueError(f"look_at needs finite 3-vectors, got eye={eye}, target={target}, up={up}")
    z = target - eye
    if np.linalg.norm(z) < 1e-9:
        raise ValueError("look_at: eye and target coincide")
    z = z / np.linalg.norm(z)
    x = np.cross(z, up)
    if np.linalg.norm(x) < 1e-9:
        raise ValueError("look_at: viewing direction is parallel to 'up'; choose another up vector")
    x = x / np.linalg.norm(x)
    y = np.cross(z, x)
    R = np.stack([x, y, z])  # rows: camera axes in world coordinates
    E = np.eye(4)
    E[:3, :3] = R
    E[:3, 3] = -R @ eye
    return E


CameraSpec = Camera | Sequence[Camera]
"""A view's cameras: one static ``Camera``, or one per time step (a moving wrist camera)."""


def stack_cameras(cameras: Sequence[CameraSpec], T: int) -> tuple[np.ndarray, np.ndarray, int, int]:
    """Stack V views (static or per-time-step) into arrays.

    Returns:
        K: (V, T, 3, 3), world_to_camera: (V, T, 4, 4), height, width (shared by all).
    """
    if len(cameras) == 0:
        raise ValueError("need at least one camera")
    Ks, Es, sizes = [], [], set()
    for v, cam in enumerate(cameras):
        seq = [cam] * T if isinstance(cam, Camera) else list(cam)
        if len(seq) != T or not all(isinstance(c, Camera) for c in seq):
            raise ValueError(
                f"camera {v} must be a Camera or a sequence of {T} Cameras (one per time step), "
                f"got {type(cam).__name__} of length {len(seq)}"
            )
        Ks.append(np.stack([c.K for c in seq]))
        Es.append(np.stack([c.world_to_camera for c in seq]))
        sizes.update((c.height, c.width) for c in seq)
    if len(sizes) != 1:
        raise ValueError(f"all cameras must share one image size, got {sorted(sizes)}")
    (
        h,
        w,
    ) = sizes.pop()
    return np.stack(Ks), np.stack(Es), h, w
