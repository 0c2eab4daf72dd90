"""Visual variety in the manner of the Colosseum benchmark, each factor on/off and seeded.

Factors: object colours, table colour, table texture, background (backdrop) colour,
lighting (direction, tint, ambient/diffuse/specular), and distractor objects.
Each factor draws from its own random stream (``np.random.default_rng([seed, k])``), so
switching one factor off leaves every other factor of the same seed unchanged.

Two disjoint palettes, ``"train"`` and ``"heldout"``, hold colour names/values, table
textures, distractor shapes and lighting ranges: the zero-shot splits use what training
never saw. Textures are generated procedurally (NumPy) and cached as PNG files in a temp
dir, since PyBullet only loads textures from files.
"""

from __future__ import annotations

import hashlib
import os
import tempfile
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np

from actionimages._presets import lookup

# Named colours (RGB in [0, 1]). Names appear in instructions ("the red cup").
COLORS: dict[str, dict[str, tuple[float, float, float]]] = {
    "train": {
        "red": (0.85, 0.1, 0.1),
        "green": (0.15, 0.7, 0.2),
        "blue": (0.1, 0.3, 0.85),
        "yellow": (0.95, 0.85, 0.1),
        "orange": (0.95, 0.5, 0.05),
        "purple": (0.5, 0.15, 0.7),
        "cyan": (0.1, 0.8, 0.85),
        "white": (0.95, 0.95, 0.95),
    },
    "heldout": {
        "pink": (0.98, 0.55, 0.7),
        "brown": (0.45, 0.27, 0.1),
        "olive": (0.5, 0.5, 0.1),
        "teal": (0.0, 0.5, 0.5),
        "navy": (0.05, 0.08, 0.4),
        "maroon": (0.5, 0.0, 0.1),
        "gold": (0.85, 0.65, 0.15),
        "black": (0.08, 0.08, 0.08),
    },
}
TABLE_COLORS = {
    "train": [(0.78, 0.66, 0.5), (0.6, 0.6, 0.62), (0.85, 0.82, 0.72), (0.5, 0.36, 0.22)],
    "heldout": [(0.2, 0.45, 0.25), (0.3, 0.35, 0.6), (0.7, 0.3, 0.3), (0.25, 0.25, 0.25)],
}
BACKGROUND_COLORS = {
    "train": [(0.8, 0.8, 0.78), (0.7, 0.75, 0.85), (0.85, 0.78, 0.7), (0.6, 0.65, 0.6)],
    "heldout": [(0.35, 0.3, 0.45), (0.9, 0.9, 0.6), (0.5, 0.7, 0.7), (0.3, 0.3, 0.3)],
}
TEXTURE_KINDS = {
    "train": ("checker", "stripes", "noise"),
    "heldout": ("dots", "diagonal", "marble"),
}
DISTRACTOR_SHAPES = {
    "train": ("box", "sphere", "cylinder"),
    "heldout": ("capsule", "bottle", "plate"),
}
# (azimuth range deg, elevation range deg, tint strength, ambient range, diffuse range)
TILES = 4  # pattern periods per texture (see make_texture)
LIGHTING = {
    "train": ((-180, 180), (35, 80), 0.1, (0.5, 0.7), (0.35, 0.6)),
    "heldout": ((-180, 180), (15, 40), 0.3, (0.38, 0.5), (0.55, 0.8)),
}


@dataclass(frozen=True)
class VariationConfig:
    """Which Colosseum-style factors are randomised, and from which palette."""

    object_color: bool = False
    table_color: bool = False
    table_texture: bool = False
    background: bool = False
    lighting: bool = False
    distractors: bool = False
    max_distractors: int = 3
    palette: str = "train"
    shadows: bool = False  # TinyRenderer shadows roughly halve the frame rate

    def __post_init__(self) -> None:
        if self.palette not in COLORS:
            raise ValueError(f"unknown palette {self.palette!r}; valid: {sorted(COLORS)}")

    @classmethod
    def preset(cls, name: str) -> VariationConfig:
        return lookup(VARIATION_PRESETS, name, "variation")

    def with_palette(self, palette: str) -> VariationConfig:
        return replace(self, palette=palette)


_ALL = dict(
    object_color=True, table_color=True, table_texture=True, background=True, lighting=True,
    distractors=True,
)  # fmt: skip
VARIATION_PRESETS: dict[str, VariationConfig] = {
    "none": VariationConfig(),
    "train": VariationConfig(**_ALL, palette="train"),
    "heldout": VariationConfig(**_ALL, palette="heldout"),
    "colors": VariationConfig(object_color=True, table_color=True, background=True),
    "lighting": VariationConfig(lighting=True),
    "distractors": VariationConfig(distractors=True),
}

# Independent random streams, one per factor (index k in default_rng([seed, k])).
STREAMS = {"task": 0, "cameras": 1, "object_color": 2, "table": 3, "texture": 4,
           "background": 5, "lighting": 6, "distractors": 7}  # fmt: skip


def stream(seed: int, name: str) -> np.random.Generator:
    """The random stream of one factor for an episode seed."""
    return np.random.default_rng([int(seed), STREAMS[name]])


@dataclass(frozen=True)
class Lighting:
    """Arguments of PyBullet's ``getCameraImage`` light model."""

    direction: tuple[float, float, float] = (0.4, 0.3, 1.0)
    color: tuple[float, float, float] = (1.0, 1.0, 1.0)
    ambient: float = 0.6
    diffuse: float = 0.45
    specular: float = 0.05
    shadows: bool = False

    def kwargs(self) -> dict:
        return dict(
            lightDirection=list(self.direction), lightColor=list(self.color),
            lightAmbientCoeff=self.ambient, lightDiffuseCoeff=self.diffuse,
            lightSpecularCoeff=self.specular, shadow=int(self.shadows), lightDistance=3.0,
        )  # fmt: skip


def sample_lighting(rng: np.random.Generator, palette: str, shadows: bool) -> Lighting:
    (az0, az1), (el0, el1), tint, amb, dif = LIGHTING[palette]
    a, e = np.deg2rad(rng.uniform(az0, az1)), np.deg2rad(rng.uniform(el0, el1))
    direction = (np.cos(e) * np.cos(a), np.cos(e) * np.sin(a), np.sin(e))
    color = np.clip(1.0 - tint * rng.uniform(0.0, 1.0, 3), 0.0, 1.0)
    return Lighting(
        direction=tuple(float(x) for x in direction),
        color=tuple(float(x) for x in color / color.max()),
        ambient=float(rng.uniform(*amb)),
        diffuse=float(rng.uniform(*dif)),
        specular=float(rng.uniform(0.0, 0.2)),
        shadows=shadows,
    )


def color_rgb(name: str) -> tuple[float, float, float]:
    """RGB of a named colour from either palette."""
    for palette in COLORS.values():
        if name in palette:
            return palette[name]
    raise ValueError(f"unknown colour {name!r}")


def pick_color(rng: np.random.Generator, palette: str, exclude=()) -> tuple[str, tuple]:
    """A random (name, rgb) from ``palette``, avoiding names in ``exclude``."""
    names = [n for n in COLORS[palette] if n not in exclude]
    name = names[int(rng.integers(len(names)))]
    return name, COLORS[palette][name]


# --- procedural textures -----------------------------------------------------------
def make_texture(kind: str, rng: np.random.Generator, size: int = 256) -> np.ndarray:
    """(size, size, 3) uint8 texture of ``kind`` in two random tones (vectorised).

    PyBullet maps only about a quarter of a texture's width and height onto the table
    top's box face, so patterns repeat ``TILES`` times to show several periods there.
    """
    base = rng.uniform(0.35, 0.9, 3)
    other = np.clip(base * rng.uniform(0.55, 0.8) + rng.uniform(-0.08, 0.08, 3), 0, 1)
    i, j = np.mgrid[0:size, 0:size] / size * TILES  # coordinates in visible periods
    if kind == "checker":
        n = int(rng.integers(3, 8))
        mask = ((np.floor(i * n) + np.floor(j * n)) % 2).astype(np.float64)
    elif kind == "stripes":
        n = int(rng.integers(4, 10))
        mask = 0.5 + 0.5 * np.sin(2 * np.pi * n * i + 0.6 * np.sin(2 * np.pi * j))
    elif kind == "noise":
        cells = 8 * TILES
        coarse = rng.uniform(0, 1, (cells, cells))
        mask = np.kron(coarse, np.ones((size // cells, size // cells)))
        mask = 0.7 * mask + 0.3 * rng.uniform(0, 1, (size, size))
    elif kind == "dots":
        n = int(rng.integers(3, 7))
        d = np.hypot((i * n) % 1 - 0.5, (j * n) % 1 - 0.5)
        mask = (d < 0.25).astype(np.float64)
    elif kind == "diagonal":
        n = int(rng.integers(3, 8))
        mask = (np.floor((i + j) * n) % 2).astype(np.float64)
    elif kind == "marble":
        mask = 0.5 + 0.5 * np.sin(6 * i + 3 * np.sin(5 * j) + 2 * rng.uniform(0, 1, (size, size)))
    else:
        raise ValueError(f"unknown texture kind {kind!r}")
    img = base * (1 - mask[..., None]) + other * mask[..., None]
    return (np.clip(img, 0, 1) * 255 + 0.5).astype(np.uint8)


def texture_file(kind: str, seed: int) -> str:
    """Path of a cached PNG of ``make_texture(kind, default_rng(seed))``."""
    from PIL import Image

    key = hashlib.sha1(f"{kind}-{seed}".encode()).hexdigest()[:12]
    path = Path(tempfile.gettempdir()) / "actionimages_sim" / "textures" / f"{kind}_{key}.png"
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(f".{path.stem}.{os.getpid()}.png")
        Image.fromarray(make_texture(kind, np.random.default_rng(seed))).save(tmp)
        os.replace(tmp, path)  # atomic, safe with several processes
    return str(path)


def sample_texture(rng: np.random.Generator, palette: str) -> str:
    """A texture file from a bank of 16 per kind (a bounded cache)."""
    kinds = TEXTURE_KINDS[palette]
    kind = kinds[int(rng.integers(len(kinds)))]
    return texture_file(kind, int(rng.integers(16)))
