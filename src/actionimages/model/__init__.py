"""The unified world action model on diffusers' Wan (paper Sec. 3.3, SPEC section 4).

Modules, read in this order:

    config.py       ModelConfig presets: debug, tiny, wan2.2-ti2v-5b, wan2.1-i2v-14b
    camera.py       Plücker camera encoders (zero-initialised) and the identity projector
    transformer.py  ActionImagesWanTransformer: WanTransformer3DModel + per-block camera branch,
                    per-token timesteps, from_wan_pretrained(folder)
    packing.py      [video_v1, action_v1, video_v2, action_v2, ...] along the frame axis
    masking.py      the four tasks as frame states (visible / predicted / unknown)
    latent.py       latent codecs: Wan VAE (2.1 / 2.2) from a folder, patch PCA fitted here
    text.py         UMT5 (Wan), offline MiniLM, hash (tests); per-instruction cache
    wam.py          WorldActionModel: sampler batch -> latents, flow-matching loss, Euler sampler
    convert.py      the authors' released checkpoint (DiffSynth layout) -> this model

Typical use (training lives in :mod:`actionimages.train`):

    from actionimages.model import ModelConfig, ActionImagesWanTransformer
    model = ActionImagesWanTransformer.from_wan_pretrained("Wan2.2-TI2V-5B-Diffusers")
    tiny = ActionImagesWanTransformer.from_model_config(ModelConfig.preset("tiny"))
"""

from actionimages.model.config import PRESETS, ModelConfig
from actionimages.model.masking import TASKS

__all__ = ["PRESETS", "TASKS", "ActionImagesWanTransformer", "ModelConfig"]


def __getattr__(name: str):
    # diffusers is a heavy import: load the transformer only when it is asked for.
    if name == "ActionImagesWanTransformer":
        from actionimages.model.transformer import ActionImagesWanTransformer

        return ActionImagesWanTransformer
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
