"""Geometry: cameras (OpenCV convention), projection, rays, Plücker maps, rotations."""

from actionimages.geometry.camera import Camera, CameraSpec, look_at, stack_cameras
from actionimages.geometry.projection import (
    DEFAULT_NEAR,
    pixel_centers,
    pixel_rays,
    plucker_map,
    project_points,
)
from actionimages.geometry.rig import camera_ring
from actionimages.geometry.rotations import (
    axis_angle_to_matrix,
    euler_xyz_to_matrix,
    geodesic_angle,
    matrix_to_axis_angle,
    matrix_to_euler_xyz,
    matrix_to_quat_xyzw,
    matrix_to_rot6d,
    nearest_rotation,
    quat_xyzw_to_matrix,
    rot6d_to_matrix,
)

__all__ = [
    "DEFAULT_NEAR",
    "Camera",
    "CameraSpec",
    "axis_angle_to_matrix",
    "camera_ring",
    "euler_xyz_to_matrix",
    "geodesic_angle",
    "look_at",
    "matrix_to_axis_angle",
    "matrix_to_euler_xyz",
    "matrix_to_quat_xyzw",
    "matrix_to_rot6d",
    "nearest_rotation",
    "pixel_centers",
    "pixel_rays",
    "plucker_map",
    "project_points",
    "quat_xyzw_to_matrix",
    "rot6d_to_matrix",
    "stack_cameras",
]
