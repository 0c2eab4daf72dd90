"""Codec: 7-DoF actions <-> multi-view action images (paper Sec. 3.1-3.2, SPEC 2-3)."""

from actionimages.codec.decoder import DecodedActions, decode_action_images
from actionimages.codec.encoder import BLUE_LEVEL, LAYOUTS, encode_action_images, semantic_points

__all__ = [
    "BLUE_LEVEL",
    "LAYOUTS",
    "DecodedActions",
    "decode_action_images",
    "encode_action_images",
    "semantic_points",
]
