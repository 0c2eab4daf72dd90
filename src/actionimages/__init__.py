"""actionimages: robot actions as multi-view action images, and world action models on them.

Public API (stable names; see README):

    from actionimages import Camera, encode_action_images, decode_action_images
"""

from actionimages.codec.decoder import DecodedActions, decode_action_images
from actionimages.codec.encoder import encode_action_images
from actionimages.geometry.camera import Camera

__all__ = ["Camera", "DecodedActions", "decode_action_images", "encode_action_images"]
__version__ = "0.1.0"
