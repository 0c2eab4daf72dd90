"""Colosseum-style variation factors and the benchmark splits."""

from __future__ import annotations

from dataclasses import replace
from itertools import pairwise

import numpy as np
import pytest

from actionimages.sim import (
    HELDOUT_TASKS,
    SPLITS,
    TRAIN_TASKS,
    VariationConfig,
    get_split,
    make_env,
)
from actionimages.sim.splits import RETRY_STRIDE
from actionimages.sim.variation import (
    BACKGROUND_COLORS,
    COLORS,
    DISTRACTOR_SHAPES,
    TABLE_COLORS,
    TEXTURE_KINDS,
    make_texture,
)

FACTORS = ("object_color", "table_color", "table_texture", "background", "lighting", "distractors")


def _frame(variation: VariationConfig, seed: int = 4) -> tuple[np.ndarray, dict, str]:
    with make_env("push_block", cameras=("front",), image_size=64, variation=variation) as env:
        obs = env.reset(seed=seed)
        return obs["images"]["front"], env.scene.description, obs["instruction"]


def test_each_factor_switches_on_and_off_independently():
    base, desc0, _ = _frame(VariationConfig())
    base5, _, _ = _frame(VariationConfig(), seed=5)
    assert desc0 == {}
    full = VariationConfig.preset("train")
    img_full, desc_full, _ = _frame(full)
    for factor in FACTORS:
        # (A draw may equal the default look, e.g. the default table colour: two seeds.)
        changed = [
            not np.array_equal(_frame(replace(VariationConfig(), **{factor: True}), seed)[0], img0)
            for seed, img0 in ((4, base), (5, base5))
        ]
        assert any(changed), f"{factor} changed nothing"
        # Switching one factor off leaves the others' draws alone (own random streams);
        # only distractor colours follow the object colours (they avoid the task's).
        _, desc, _ = _frame(replace(full, **{factor: False}))
        assert factor not in desc
        for key, value in desc_full.items():
            if key == factor:
                continue
            if key == "distractors" and factor == "object_color":
                value = [{k: v for k, v in d.items() if k != "color"} for d in value]
                got = [{k: v for k, v in d.items() if k != "color"} for d in desc[key]]
                assert got == value
            else:
                assert desc.get(key) == value, (factor, key)
    again, _, _ = _frame(full)
    assert np.array_equal(again, img_full)  # seeded


def test_palettes_are_disjoint():
    for table in (COLORS, TABLE_COLORS, BACKGROUND_COLORS, TEXTURE_KINDS, DISTRACTOR_SHAPES):
        train, held = table["train"], table["heldout"]
        assert not set(train) & set(held)
    train_rgb = {tuple(v) for v in COLORS["train"].values()}
    assert not train_rgb & {tuple(v) for v in COLORS["heldout"].values()}


def test_heldout_palette_reaches_the_scene():
    _, desc, instruction = _frame(VariationConfig.preset("heldout"), seed=1)
    assert any(c in instruction for c in COLORS["heldout"])
    assert all(d["shape"] in DISTRACTOR_SHAPES["heldout"] for d in desc.get("distractors", []))
    assert any(tuple(desc["table_color"]) == tuple(c) for c in TABLE_COLORS["heldout"])


def test_textures_are_seeded_uint8_images():
    for kind in TEXTURE_KINDS["train"] + TEXTURE_KINDS["heldout"]:
        a = make_texture(kind, np.random.default_rng(0), 64)
        b = make_texture(kind, np.random.default_rng(0), 64)
        assert a.shape == (64, 64, 3) and a.dtype == np.uint8 and np.array_equal(a, b)
        assert a.std() > 3, kind
    with pytest.raises(ValueError, match="unknown texture"):
        make_texture("plaid", np.random.default_rng(0))


def test_splits_cover_the_paper_tables():
    assert set(HELDOUT_TASKS) == {
        "reach_target",
        "pick_cup",
        "place_cup",
        "close_drawer",
        "close_laptop",
    }
    assert not set(TRAIN_TASKS) & set(HELDOUT_TASKS)
    ind, zs = get_split("in_domain"), get_split("zero_shot")
    assert ind.tasks == TRAIN_TASKS and ind.camera_range == "train" and ind.objects == "train"
    assert zs.tasks == HELDOUT_TASKS and zs.camera_range == "heldout"
    assert zs.variation == "heldout" and zs.objects == "heldout"


def test_split_seed_ranges_are_disjoint():
    ranges = sorted((s.seed_offset, s.seed_offset + 99_999) for s in SPLITS.values())
    for (_, end), (start, _) in pairwise(ranges):
        assert end < start
    assert max(r[1] for r in ranges) < RETRY_STRIDE
    assert get_split("train").episode_seed(3, attempt=1) == 3 + RETRY_STRIDE
    with pytest.raises(ValueError, match="valid splits"):
        get_split("validation")
