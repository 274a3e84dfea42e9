#!/usr/bin/env bash
# Installs llama-cpp-python (the embedded model's runtime) into a virtualenv from a wheel built
# with known, portable CPU flags.
#
# PyPI ships llama-cpp-python as source only. pip's own wheel cache is keyed by the package, not
# by the flags it was compiled with, so a wheel built once with -march=native (AMX, AVX-512) is
# reused on the next machine and dies there with "Illegal instruction". Here the wheel is built
# without pip's cache and kept under a folder named by a hash of (version, CMAKE_ARGS, Python,
# CPU architecture): a different flag set is a different folder, never a stale wheel.
#
# usage: scripts/llama-wheel.sh PIP VERSION
#   CMAKE_ARGS   compile flags (default: any x86-64 with AVX2/FMA/F16C when this CPU has them,
#                otherwise plain SSE; GGML_NATIVE=OFF always)
#   MEDSAFE_WHEEL_CACHE   where built wheels are kept (default ~/.cache/medsafe/llama-wheels)
set -euo pipefail
pip_bin=$1
version=$2
python_bin="$(dirname "$pip_bin")/python"
cpuinfo=${MEDSAFE_CPUINFO:-/proc/cpuinfo}  # another file only in tests

if [ -z "${CMAKE_ARGS:-}" ]; then
  CMAKE_ARGS="-DGGML_NATIVE=OFF"
  if [ "$(uname -m)" = "x86_64" ]; then
    if grep -qw avx2 "$cpuinfo" && grep -qw fma "$cpuinfo" && grep -qw f16c "$cpuinfo"; then
      CMAKE_ARGS="$CMAKE_ARGS -DGGML_AVX=ON -DGGML_AVX2=ON -DGGML_FMA=ON -DGGML_F16C=ON"
    else
      CMAKE_ARGS="$CMAKE_ARGS -DGGML_AVX=OFF -DGGML_AVX2=OFF -DGGML_FMA=OFF -DGGML_F16C=OFF"
    fi
    CMAKE_ARGS="$CMAKE_ARGS -DGGML_AVX512=OFF -DGGML_AMX_TILE=OFF -DGGML_AMX_INT8=OFF"
  fi
fi
export CMAKE_ARGS

installed=$("$python_bin" -c 'import importlib.metadata as m; print(m.version("llama_cpp_python"))' 2>/dev/null || true)
stamp="$(cd "$(dirname "$pip_bin")/.." && pwd)/.llama-wheel-key"
py_tag=$("$python_bin" -c 'import sys; print(f"{sys.implementation.name}{sys.version_info[0]}{sys.version_info[1]}")')
key=$(printf '%s\n' "$version" "$CMAKE_ARGS" "$py_tag" "$(uname -m)" | sha256sum | cut -c1-16)
if [ "$installed" = "$version" ] && [ "$(cat "$stamp" 2>/dev/null)" = "$key" ]; then
  exit 0
fi

cache_root=${MEDSAFE_WHEEL_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/medsafe/llama-wheels}
dir="$cache_root/$key"
if ! ls "$dir"/llama_cpp_python-"$version"-*.whl >/dev/null 2>&1; then
  echo "medsafe: building llama-cpp-python $version (several minutes on 2 cores; CMAKE_ARGS=$CMAKE_ARGS)" >&2
  mkdir -p "$cache_root"
  tmp=$(mktemp -d "$cache_root/.build.XXXXXX")
  trap 'rm -rf "$tmp"' EXIT
  "$pip_bin" wheel --quiet --no-deps --no-cache-dir --no-binary llama-cpp-python \
    -w "$tmp" "llama-cpp-python==$version"
  printf '%s\n' "$CMAKE_ARGS" >"$tmp/CMAKE_ARGS"
  rm -rf "$dir"
  chmod 755 "$tmp"
  mv "$tmp" "$dir"
  trap - EXIT
fi
"$pip_bin" install --quiet --force-reinstall --no-deps "$dir"/llama_cpp_python-"$version"-*.whl
printf '%s\n' "$key" >"$stamp"
