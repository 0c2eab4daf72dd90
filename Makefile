# The README's two commands: `make demo` (main job) and `make test` (test suite).
# Each sets up .venv/ itself on a fresh machine.
SHELL := /bin/bash
.PHONY: venv demo test lint bench data train-default baselines

# The default model's training data (models/tiny/MODEL_CARD.md): expert demonstrations of
# the 5 in-domain tasks, episode seeds 0..223 of the "train" split, 4 static views at 64x64.
SIM_DATA = data/sim-train
SIM_EPISODES = 800

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

# Reproduces models/tiny on one CPU thread (resumes exactly if interrupted): preset
# tiny-state (the current pose given, frame-delta latents, 3.2 s clips at 2.5 fps, action
# frames weighted 4x), TINY_STEPS steps of 8 clips; see models/tiny/MODEL_CARD.md.
TINY_STEPS = 5000
train-default: data
	.venv/bin/actionimages train --preset tiny-state --data $(SIM_DATA) --output-dir runs/tiny-state --steps $(TINY_STEPS)
	.venv/bin/actionimages export --run runs/tiny-state --out models/tiny

# The two baselines on the same data and budget (the low-dim model: the same steps; BC:
# the same wall time on one thread, run side by side with the two world models), then the
# side-by-side evaluation (writes models/tiny/baselines.json, read by the demo's report).
BC_STEPS = 4000
baselines: data
	.venv/bin/actionimages train --preset tiny-state-lowdim --data $(SIM_DATA) --output-dir runs/tiny-state-lowdim \
		--steps $(TINY_STEPS)
	.venv/bin/actionimages export --run runs/tiny-state-lowdim --out models/tiny-lowdim
	.venv/bin/actionimages baseline train-bc --data $(SIM_DATA) --out runs/bc-tiny --steps $(BC_STEPS) \
		--batch-size 16 --preset tiny --threads 1
	mkdir -p models/bc-tiny && cp runs/bc-tiny/{config.json,model.safetensors,stats.json,train_info.json,log.jsonl} models/bc-tiny/
	.venv/bin/python benchmarks/baselines.py --episodes 20 --workers 2
