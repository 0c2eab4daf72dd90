"""LeRobot v3.0 datasets: :class:`LeRobotWriter` and :class:`LeRobotDataset` (the reader).

The layout and the feature names are documented in
:mod:`actionimages.data.lerobot_format`; atomicity in :mod:`actionimages.data.atomic`.
"""

from actionimages.data.lerobot_format import POSE_NAMES
from actionimages.data.lerobot_reader import LeRobotDataset
from actionimages.data.lerobot_writer import LeRobotWriter, WriterConfig
from actionimages.data.video import VideoConfig

__all__ = ["POSE_NAMES", "LeRobotDataset", "LeRobotWriter", "VideoConfig", "WriterConfig"]
