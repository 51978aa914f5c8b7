#!/usr/bin/env bash
# Build Horovod (the lock's sdist, patched as images/pytorch-horovod/Dockerfile does) against the
# torch of a GPU machine that has none, with NCCL, for its own GPUs' architecture, so that
# `make gpu-check`'s horovod step can run there. Gloo only (such machines have no MPI to trust).
#   bash smimages/gpu_check/build_horovod.sh SDIST TARGET    # then PYTHONPATH=TARGET:...
# Needs nvcc, CMake and setuptools there; NCCL from torch's nvidia-nccl package.
set -euo pipefail
sdist=$1 target=$(realpath -m "$2")  # absolute: pip runs in the build tree
py=${GPU_CHECK_PYTHON:-python3}
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT  # the build tree: what pip installs goes to TARGET
tar -xzf "$sdist" -C "$work" --strip-components=1
cd "$work"
sed -i 's/set(CMAKE_CXX_STANDARD 14)/set(CMAKE_CXX_STANDARD 17)/' CMakeLists.txt horovod/torch/CMakeLists.txt
# PyPI's NCCL has no unversioned libnccl.so: give the build a folder that has one.
nccl_h=$("$py" -c 'import glob, nvidia, os; print(next((p for d in nvidia.__path__ for p in glob.glob(os.path.join(d, "**", "nccl.h"), recursive=True)), ""))' 2>/dev/null || true)
[ -n "$nccl_h" ] || { echo "build_horovod: no nccl.h in $py's nvidia packages (nvidia-nccl-*)" >&2; exit 2; }
nccl=$(dirname "$(dirname "$nccl_h")")
mkdir -p "$work/nccl/lib"
ln -s "$nccl/include" "$work/nccl/include"
ln -s "$nccl"/lib/libnccl.so.2 "$work/nccl/lib/libnccl.so"
cc=$("$py" -c 'import torch; print(",".join(sorted({"%d%d" % torch.cuda.get_device_capability(i) for i in range(torch.cuda.device_count())})))')
[ -n "$cc" ] || { echo "build_horovod: torch sees no GPU here: nothing to build NCCL code for" >&2; exit 2; }
command -v nvcc >/dev/null || { echo "build_horovod: no nvcc on PATH" >&2; exit 2; }
cuda_home=$(dirname "$(dirname "$(command -v nvcc)")")
echo "build_horovod: NCCL from $nccl, CUDA from $cuda_home, architectures $cc"
export HOROVOD_WITH_PYTORCH=1 HOROVOD_WITH_GLOO=1 HOROVOD_WITHOUT_MPI=1 HOROVOD_WITHOUT_TENSORFLOW=1 \
  HOROVOD_WITHOUT_MXNET=1 HOROVOD_GPU_OPERATIONS=NCCL HOROVOD_NCCL_HOME="$work/nccl" HOROVOD_NCCL_LINK=SHARED \
  HOROVOD_CUDA_HOME="$cuda_home" CUDA_HOME="$cuda_home" HOROVOD_BUILD_CUDA_CC_LIST="$cc" \
  MAKEFLAGS="-j$(nproc)" CMAKE_POLICY_VERSION_MINIMUM=3.5 \
  CXXFLAGS="${CXXFLAGS:-} -include string -include cstdint -include stdexcept -include limits -include algorithm"
# gcc 13 no longer pulls headers in through others: Horovod 0.28.1 failed there on the first three;
# the last two were added with them as a precaution (that build passed; not tried without them).
"$py" -m pip install -q --no-build-isolation --no-deps --no-index --target "$target" .
