"""Inference: load a trained world action model and sample its four modes.

from actionimages.infer import WorldActionPipeline, SamplingConfig
"""

from actionimages.infer.pipeline import MODES, PipelineOutput, SamplingConfig, WorldActionPipeline

__all__ = ["MODES", "PipelineOutput", "SamplingConfig", "WorldActionPipeline"]
