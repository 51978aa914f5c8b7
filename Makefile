# sm-images: SageMaker-compatible training and serving images, built from Debian's archive.
#   make sample          set up a fresh machine, build custom-framework and run the sample job
#   make test            build what the tests need and run them all
SHELL := /bin/bash
.DEFAULT_GOAL := help
.PHONY: help engine base build test-env test lint sample seeds bench bench-serving gpu-check clean push login sbom prune

IMAGE ?=
REGION ?=
PUSH_ARGS = --region "$(REGION)" $(if $(ACCOUNT),--account $(ACCOUNT)) $(if $(REGISTRY),--registry $(REGISTRY)) \
  $(if $(MUTABILITY),--mutability $(MUTABILITY)) $(if $(TAG),--tag $(TAG))
PYTEST_ARGS ?= -n 3 --dist loadfile  # tests wait on containers more than they compute: 3 at a time
CATALOG := python3 -m smimages.catalog  # the one list of images (smimages/catalog.py)
IMAGES := $(shell $(CATALOG))
# The Docker client, from the catalog; read when a target uses it (make prune), not on every make.
DOCKER = $(shell python3 -c 'from smimages.catalog import DOCKER; print(DOCKER)')

help: ## list the targets
	@echo "usage: make TARGET [IMAGE=name]   (images: $(IMAGES))"
	@grep -E '^[a-zA-Z0-9_/%.-]+:.*## ' $(MAKEFILE_LIST) | sed -E 's/:[^#]*## /\t/' | awk -F'\t' '{printf "  %-16s %s\n", $$1, $$2}'

engine: ## install (if missing) and start the Docker engine
	@tools/engine.sh

base: engine ## make the root image sm-images/debian:bookworm from Debian's archive
	@tools/base-image.sh

build: engine ## build every image in dependency order, or IMAGE=name and what it stands on
	@python3 -m smimages.build $(IMAGE)

build/%: engine ## build one image: make build/custom-framework
	@python3 -m smimages.build $*

test-env: ## make the test tool environments (.venv, .venv-sdk2, .venv-sdk3) from their locks
	@tools/test-env.sh

test: build test-env ## run unit tests, each image's tests (its parents' too) and publishing (IMAGE=name: that image only)
	@mkdir -p out
	IMAGES="$(or $(IMAGE),$(IMAGES))" .venv/bin/pytest $(PYTEST_ARGS) --junitxml=out/junit.xml \
	  tests/unit tests/test_build_driver.py \
	  $(shell $(CATALOG) --test-dirs $(or $(IMAGE),$(IMAGES))) \
	  tests/seeds tests/publish

test/%: ## test one image: make test/custom-framework
	@$(MAKE) --no-print-directory test IMAGE=$*

lint: test-env ## ruff for Python, hadolint for Dockerfiles
	.venv/bin/ruff check .
	.venv/bin/hadolint images/*/Dockerfile bench/images/*/Dockerfile

sample: build/custom-framework test-env ## the main job: train the custom-framework example (out/sample)
	@.venv/bin/python -m smimages.sample_job

seeds: build test-env ## replay the seed notebooks' SageMaker calls on our images, S3 on this machine (SEED="001 004": some)
	@.venv/bin/python -m smimages.seeds $(SEED)

bench: build test-env ## one table of sizes, floors, build, train-overhead, serving and epoch figures (COLD=1 adds no-cache builds), then bench-serving
	@.venv/bin/python -m smimages.bench.all $(IMAGE)
	@$(if $(IMAGE),,$(MAKE) --no-print-directory bench-serving)

bench-serving: engine test-env ## ours vs TorchServe vs MMS (bench/images, built if missing): one model, multi-model, then where SageMaker places it (cold start under 2 GB, CPU quota, streaming): docs/benchmarks.md
	@python3 -m smimages.build --missing pytorch-horovod-cpu mxnet
	@IMAGES_DIR=bench/images python3 -m smimages.build --missing torchserve mms
	@.venv/bin/python -m smimages.bench.serving_compare
	@.venv/bin/python -m smimages.bench.serving_multi_model
	@.venv/bin/python -m smimages.bench.serving_placements

# No Docker, no test-env: the GPU machine's own python3 and torch, this checkout's code (smimages/gpu_check.py).
GPU_CHECK_PYTHON ?= python3
gpu-check: ## on a GPU machine without Docker: torch/CUDA/NCCL, DDP over nccl, serving workers per GPU, Horovod (logs: out/gpu-check)
	@PYTHONPATH=entrypoints:images/pytorch-horovod$${PYTHONPATH:+:$$PYTHONPATH} $(GPU_CHECK_PYTHON) -m smimages.gpu_check

push: test-env ## push built images to ECR: REGION=.. [ACCOUNT=..] [TAG=..] [IMAGE=..] [REGISTRY=..] [MUTABILITY=IMMUTABLE]
	@test -n "$(REGION)" || { echo "make push needs REGION=<aws region>, e.g. make push REGION=us-west-2" >&2; exit 2; }
	@.venv/bin/python -m smimages.push $(PUSH_ARGS) $(IMAGE)

login: test-env ## log the Docker engine in to ECR: REGION=.. [ACCOUNT=..] [REGISTRY=..]
	@test -n "$(REGION)" || { echo "make login needs REGION=<aws region>" >&2; exit 2; }
	@.venv/bin/python -m smimages.push --login-only $(PUSH_ARGS)

sbom: test-env ## write out/sbom/<image>.cdx.json for each built image and list its Python packages
	@.venv/bin/python -m smimages.sbom $(IMAGE)

lock/%: engine ## re-pin images/<name>/requirements.lock from its requirements.in
	@tools/lock.sh $*

prune: engine ## free disk: stopped containers (SDK local mode leaves its own), dangling images, build cache beyond KEEP_CACHE (default 20GB)
	$(DOCKER) container prune -f
	$(DOCKER) image prune -f
	$(DOCKER) builder prune -f --keep-storage $(or $(KEEP_CACHE),20GB)

clean: ## remove the test environments and outputs (images stay; docker image prune for those)
	rm -rf .venv .venv-sdk2 .venv-sdk3 out build .pytest_cache
