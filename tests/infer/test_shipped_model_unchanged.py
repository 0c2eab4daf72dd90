"""The shipped default model gives the same outputs as when it was shipped.

``tests/fixtures/tiny_generate.npz`` holds 8x8 block means of every generated video and
action-image pixel of the generation below, written when ``models/tiny`` was last
replaced (issue 15, the shift-6 recipe). Regenerate it only on purpose, when the model
or the sampler is meant to change:

    .venv/bin/python tests/infer/test_shipped_model_unchanged.py --write
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from actionimages.geometry import Camera
from actionimages.infer.pipeline import SamplingConfig, WorldActionPipeline

ROOT = Path(__file__).resolve().parents[2]
REFERENCE = ROOT / "tests" / "fixtures" / "tiny_generate.npz"


def generate_fingerprint(folder: Path) -> dict[str, np.ndarray]:
    """A fixed 2-view generation of ``folder``'s model -> (V, T, 8, 8, 3) block means."""
    torch.set_num_threads(1)
    pipe = WorldActionPipeline.from_pretrained(folder)
    rng = np.random.default_rng(0)
    img = (rng.random((64, 64, 3)) * 255).astype(np.uint8)
    cams = [Camera.look_at([1.2, 0.0, 0.6], [0.5, 0.0, 0.1], height=64, width=64),
            Camera.look_at([0.5, 0.8, 0.6], [0.5, 0.0, 0.1], height=64, width=64)]  # fmt: skip
    batch, _ = pipe.make_batch([img, img[::-1].copy()], cams, "press the button")
    out = pipe(batch, "generate", SamplingConfig(steps=4, seed=3))

    def fingerprint(x):  # (1, V, T, H, W, 3) -> (V, T, 8, 8, 3) block means
        return x[0].reshape(2, 9, 8, 8, 8, 8, 3).mean((3, 5)).numpy()

    return {"video": fingerprint(out.video), "actions": fingerprint(out.actions)}


@pytest.mark.skipif(not (ROOT / "models" / "tiny").is_dir(), reason="models/tiny not present")
def test_models_tiny_generates_what_it_generated_when_shipped():
    got, ref = generate_fingerprint(ROOT / "models" / "tiny"), np.load(REFERENCE)
    np.testing.assert_allclose(got["video"], ref["video"], atol=1e-5)
    np.testing.assert_allclose(got["actions"], ref["actions"], atol=1e-5)


@pytest.mark.skipif(not (ROOT / "models" / "tiny").is_dir(), reason="models/tiny not present")
def test_a_model_folder_loads_without_any_training_config(tmp_path):
    """config.json's model and inference sections are all a loader reads (issue 13 item 2)."""
    import json
    import shutil

    folder = tmp_path / "tiny"
    shutil.copytree(ROOT / "models" / "tiny", folder)
    info = json.loads((folder / "config.json").read_text())
    info.pop("train")
    (folder / "config.json").write_text(json.dumps(info))
    pipe = WorldActionPipeline.from_pretrained(folder)
    assert pipe.clip.fps == 10.0 and not pipe.clip.random_crop and pipe.default_sampling.steps == 10
    info.pop("inference")
    (folder / "config.json").write_text(json.dumps(info))
    with pytest.raises(ValueError, match="lacks its 'inference' section"):
        WorldActionPipeline.from_pretrained(folder)


if __name__ == "__main__" and sys.argv[1:] == ["--write"]:
    np.savez(REFERENCE, **generate_fingerprint(ROOT / "models" / "tiny"))
    print(f"wrote {REFERENCE}")
