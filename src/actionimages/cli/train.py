"""``actionimages train`` and ``actionimages latent-codec-fit``: the world action model from the shell.

actionimages train --preset tiny --data data/sim --steps 2000
actionimages train --preset debug --data data/sim --set lr=1e-3 --set ema_decay=0.999
accelerate launch --config_file configs/accelerate/ddp.yaml -m actionimages.cli.main train --preset paper ...
actionimages latent-codec-fit --data data/sim --out runs/tiny/latent_codec.safetensors
"""

from __future__ import annotations

import argparse
from pathlib import Path


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "train", help="train the unified world action model (resumes from --output-dir)"
    )
    p.add_argument("--preset", default="tiny", help="training preset: debug, tiny, paper")
    p.add_argument("--data", nargs="+", default=None, help="LeRobot v3 dataset folders")
    p.add_argument(
        "--weights", nargs="+", type=float, default=None, help="mixture weight per dataset"
    )
    p.add_argument("--steps", type=int, default=None)
    p.add_argument("--output-dir", default=None)
    p.add_argument("--wan-path", default=None, help="diffusers Wan folder to start from")
    p.add_argument("--latent-codec-path", default=None,
                   help="patch-PCA latent codec file or Wan VAE folder")  # fmt: skip
    p.add_argument("--text-path", default=None, help="UMT5 folder (Wan) for the umt5 text encoder")
    p.add_argument("--image-encoder-path", default=None,
                   help="CLIP vision folder (Wan 2.1 I2V weights, e.g. the pipeline's image_encoder/)")  # fmt: skip
    p.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                   help="override any TrainConfig field (JSON values: 1e-4, true, [0.9,0.99]); "
                        "nested: model.num_layers=6, clip.fps=5")  # fmt: skip
    p.add_argument(
        "--no-resume", action="store_true", help="start over even if the run has checkpoints"
    )
    p.set_defaults(func=_run_train)

    c = sub.add_parser(
        "latent-codec-fit", help="fit the patch-PCA latent codec on a dataset's clips"
    )
    c.add_argument("--data", nargs="+", required=True)
    c.add_argument("--model", default="tiny", help="model preset whose latent size to fit")
    c.add_argument("--clips", type=int, default=64)
    c.add_argument("--out", type=Path, required=True)
    c.set_defaults(func=_run_codec_fit)


def train_config_from_args(args: argparse.Namespace):
    from actionimages.cli.overrides import apply_overrides, parse_overrides
    from actionimages.train.config import TrainConfig

    overrides = {}
    for key, flag in (("data", args.data), ("data_weights", args.weights), ("steps", args.steps),
                      ("output_dir", args.output_dir), ("wan_path", args.wan_path),
                      ("latent_codec_path", args.latent_codec_path), ("text_path", args.text_path),
                      ("image_encoder_path", args.image_encoder_path)):  # fmt: skip
        if flag is not None:
            overrides[key] = tuple(flag) if isinstance(flag, list) else flag
    overrides.update(parse_overrides(args.set, TrainConfig))
    if "output_dir" not in overrides:
        overrides["output_dir"] = f"runs/{args.preset}"
    return apply_overrides(TrainConfig.preset(args.preset), overrides)


def _run_train(args: argparse.Namespace) -> int:
    from actionimages.infer.pipeline import preview_sample
    from actionimages.train.trainer import Trainer

    trainer = Trainer(
        train_config_from_args(args), resume=not args.no_resume, preview=preview_sample
    )
    history = trainer.train()
    if history and trainer.accelerator.is_main_process:
        print(
            f"step {trainer.step}: loss {history[-1]['loss']:.4f}; checkpoints in {trainer.run_dir}/checkpoints"
        )
    trainer.accelerator.end_training()
    return 0


def _run_codec_fit(args: argparse.Namespace) -> int:
    from actionimages.model.config import ModelConfig
    from actionimages.train.config import TrainConfig
    from actionimages.train.trainer import _build_dataset, fit_pca_codec

    dataset = _build_dataset(TrainConfig(data=tuple(args.data)))
    codec = fit_pca_codec(
        dataset, ModelConfig.preset(args.model), clips=min(args.clips, len(dataset))
    )
    args.out.parent.mkdir(parents=True, exist_ok=True)
    codec.save(args.out)
    print(
        f"PCA codec ({codec.latent_channels} channels, {codec.explained_variance:.4f} of the variance) -> {args.out}"
    )
    return 0
