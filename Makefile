# sm-images: SageMaker-compatible training and serving images, built from Debian's archive.
#   make sample          set up a fresh machine, build custom-framework and run the sample job
#   make test            build what the tests need and run them all
SHELL := /bin/bash
.DEFAULT_GOAL := help
.PHONY: help engine base build test-env test lint sample seeds bench bench-serving clean push login sbom prune

IMAGE ?=
REGION ?=
PUSH_ARGS = --region "$(REGION)" $(if $(ACCOUNT),--account $(ACCOUNT)) $(if $(REGISTRY),--registry $(REGISTRY)) \
  $(if $(MUTABILITY),--mutability $(MUTABILITY)) $(if $(TAG),--tag $(TAG))
PYTEST_ARGS ?= -n 3 --dist loadfile  # tests wait on containers more than they compute: 3 at a time
IMAGES := $(shell python3 tools/catalog.py)

help: ## list the targets
	@echo "usage: make TARGET [IMAGE=name]   (images: $(IMAGES))"
	@grep -E '^[a-zA-Z0-9_/%.-]+:.*## ' $(MAKEFILE_LIST) | sed -E 's/:[^#]*## /\t/' | awk -F'\t' '{printf "  %-16s %s\n", $$1, $$2}'

engine: ## install (if missing) and start the Docker engine
	@tools/engine.sh

base: engine ## make the root image sm-images/debian:bookworm from Debian's archive
	@tools/base-image.sh

build: engine ## build every image in dependency order, or IMAGE=name and what it stands on
	@tools/build.py $(IMAGE)

build/%: engine ## build one image: make build/custom-framework
	@tools/build.py $*

test-env: ## make the test tool environments (.venv, .venv-sdk2, .venv-sdk3) from their locks
	@tools/test-env.sh

test: build test-env ## run unit, image and SDK local-mode tests (IMAGE=name: that image only)
	@mkdir -p out
	IMAGES="$(or $(IMAGE),$(IMAGES))" .venv/bin/pytest $(PYTEST_ARGS) --junitxml=out/junit.xml \
	  tests/unit tests/test_build_driver.py tests/by_image/common \
	  $(shell python3 tools/catalog.py --test-dirs $(or $(IMAGE),$(IMAGES))) \
	  tests/sdk $(if $(IMAGE),,tests/seeds) tests/publish

test/%: ## test one image: make test/custom-framework
	@$(MAKE) --no-print-directory test IMAGE=$*

lint: test-env ## ruff for Python, hadolint for Dockerfiles
	.venv/bin/ruff check .
	.venv/bin/hadolint images/*/Dockerfile bench/images/*/Dockerfile

sample: build/custom-framework test-env ## the main job: train the custom-framework example (out/sample)
	@.venv/bin/python tools/sample_job.py

seeds: build test-env ## replay the seed notebooks' SageMaker calls on our images, S3 on this machine (SEED="001 004": some)
	@.venv/bin/python tools/seeds.py $(SEED)

bench: build test-env ## one table of sizes, floors, build, train-overhead, serving and epoch figures (COLD=1 adds no-cache builds), then bench-serving
	@.venv/bin/python bench/all.py $(IMAGE)
	@$(if $(IMAGE),,$(MAKE) --no-print-directory bench-serving)

bench-serving: engine test-env ## ours vs TorchServe vs MMS (bench/images, built if missing) serving one model: one table
	@tools/build.py --missing pytorch-horovod-cpu
	@IMAGES_DIR=bench/images tools/build.py --missing torchserve mms
	@.venv/bin/python bench/serving_compare.py

push: test-env ## push built images to ECR: REGION=.. [ACCOUNT=..] [TAG=..] [IMAGE=..] [REGISTRY=..] [MUTABILITY=IMMUTABLE]
	@test -n "$(REGION)" || { echo "make push needs REGION=<aws region>, e.g. make push REGION=us-west-2" >&2; exit 2; }
	@.venv/bin/python tools/push.py $(PUSH_ARGS) $(IMAGE)

login: test-env ## log the Docker engine in to ECR: REGION=.. [ACCOUNT=..] [REGISTRY=..]
	@test -n "$(REGION)" || { echo "make login needs REGION=<aws region>" >&2; exit 2; }
	@.venv/bin/python tools/push.py --login-only $(PUSH_ARGS)

sbom: test-env ## write out/sbom/<image>.cdx.json for each built image and list its Python packages
	@.venv/bin/python tools/sbom.py $(IMAGE)

lock/%: engine ## re-pin images/<name>/requirements.lock from its requirements.in
	@tools/lock.sh $*

prune: engine ## free disk: stopped containers (SDK local mode leaves its own), dangling images, build cache beyond KEEP_CACHE (default 20GB)
	/usr/bin/docker container prune -f
	/usr/bin/docker image prune -f
	/usr/bin/docker builder prune -f --keep-storage $(or $(KEEP_CACHE),20GB)

clean: ## remove the test environments and outputs (images stay; docker image prune for those)
	rm -rf .venv .venv-sdk2 .venv-sdk3 out build .pytest_cache
