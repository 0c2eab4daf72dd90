"""Data: episodes, LeRobot v3 datasets, importers (RLBench, DROID, Bridge), clip sampler."""

from actionimages.data.episode import Episode

__all__ = ["Episode"]
