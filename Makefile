# The README's two commands: `make demo` (main job) and `make test` (test suite).
# Each sets up .venv/ itself on a fresh machine.
SHELL := /bin/bash
.PHONY: venv demo test lint bench data train-default train-ar baselines data-state train-state baselines-state

# The default model's training data (models/tiny/MODEL_CARD.md): expert demonstrations of
# the 5 in-domain tasks, episode seeds 0..223 of the "train" split, 4 static views at 64x64.
SIM_DATA = data/sim-train
SIM_EPISODES = 224

venv:
	@bash tools/setup-venv.sh

demo: venv
	.venv/bin/actionimages demo

test: venv
	.venv/bin/ruff check src tests benchmarks scripts
	.venv/bin/python -m pytest

lint: venv
	.venv/bin/ruff check src tests benchmarks scripts
	.venv/bin/ruff format --check src tests benchmarks scripts

bench: venv
	.venv/bin/python benchmarks/codec.py

data: venv
	.venv/bin/actionimages sim record --task all --episodes $(SIM_EPISODES) --out $(SIM_DATA) \
		--cameras front,left_shoulder,right_shoulder,overhead --image-size 64 --video-codec h264

# Reproduces models/tiny on one CPU thread, about 20 min (resumes if interrupted). Two
# phases: the tiny preset (flow shift 6, the first 224 episodes) for 1000 steps, then
# action frames weighted 4x in the loss (see the model card).
TINY_STEPS = 2000
train-default: data
	.venv/bin/actionimages train --preset tiny --data $(SIM_DATA) --output-dir runs/tiny --steps 1000
	.venv/bin/actionimages train --preset tiny --data $(SIM_DATA) --output-dir runs/tiny --steps $(TINY_STEPS) \
		--set action_loss_weight=4
	.venv/bin/actionimages export --run runs/tiny --out models/tiny

# The autoregressive counterpart of models/tiny (issue 11, models/tiny-ar/MODEL_CARD.md):
# the same data (first 224 episodes), clip, steps, optimiser and two phases, with the
# model trained teacher-forced over chunks of one latent frame (preset tiny-ar).
train-ar: data
	.venv/bin/actionimages train --preset tiny-ar --data $(SIM_DATA) --output-dir runs/tiny-ar --steps 1000
	.venv/bin/actionimages train --preset tiny-ar --data $(SIM_DATA) --output-dir runs/tiny-ar --steps $(TINY_STEPS) \
		--set action_loss_weight=4
	.venv/bin/actionimages export --run runs/tiny-ar --out models/tiny-ar

# The two baselines of issue 7 on the same data and sample budget, then the side-by-side
# evaluation (writes models/tiny/baselines.json, read by the demo's report).
BASELINE_STEPS = 2000
baselines: data
	.venv/bin/actionimages train --preset tiny-lowdim --data $(SIM_DATA) --output-dir runs/tiny-lowdim \
		--latent-codec-path models/tiny/latent_codec.safetensors --steps 1000
	.venv/bin/actionimages train --preset tiny-lowdim --data $(SIM_DATA) --output-dir runs/tiny-lowdim \
		--latent-codec-path models/tiny/latent_codec.safetensors --steps $(BASELINE_STEPS) --set action_loss_weight=4
	.venv/bin/actionimages export --run runs/tiny-lowdim --out models/tiny-lowdim
	.venv/bin/actionimages baseline train-bc --data $(SIM_DATA) --out runs/bc-tiny --steps 1000 \
		--batch-size 16 --preset tiny
	mkdir -p models/bc-tiny && cp runs/bc-tiny/{config.json,model.safetensors,stats.json,train_info.json,log.jsonl} models/bc-tiny/
	.venv/bin/python benchmarks/baselines.py --episodes 20

# The pose-conditioned model of issue 15 (models/tiny-state, see its MODEL_CARD.md) and its
# two baselines on the same data and budget: 800 expert episodes (seeds 0..799), preset
# tiny-state (the current pose given as action frame 0, video as frame deltas, 3.2 s clips
# at 2.5 fps, action frames weighted 4x, timestep shift 6), 5000 steps of 8 clips (about
# 45 min on one thread); BC 4000 steps of 16 clips. The baselines ran side by side, one
# thread each, on the 2-core CPU (about 55 min).
STATE_DATA = data/sim-train-800
STATE_STEPS = 5000
data-state: venv
	.venv/bin/actionimages sim record --task all --episodes 800 --out $(STATE_DATA) \
		--cameras front,left_shoulder,right_shoulder,overhead --image-size 64 --video-codec h264

train-state: data-state
	.venv/bin/actionimages train --preset tiny-state --data $(STATE_DATA) --output-dir runs/tiny-state --steps $(STATE_STEPS)
	.venv/bin/actionimages export --run runs/tiny-state --out models/tiny-state

baselines-state: data-state
	.venv/bin/actionimages train --preset tiny-state-lowdim --data $(STATE_DATA) --output-dir runs/tiny-state-lowdim \
		--steps $(STATE_STEPS)
	.venv/bin/actionimages export --run runs/tiny-state-lowdim --out models/tiny-state-lowdim
	.venv/bin/actionimages baseline train-bc --data $(STATE_DATA) --out runs/bc-tiny-state --steps 4000 \
		--batch-size 16 --preset tiny --threads 1
	mkdir -p models/bc-tiny-state && cp runs/bc-tiny-state/{config.json,model.safetensors,stats.json,train_info.json,log.jsonl} models/bc-tiny-state/
