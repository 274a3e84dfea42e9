"""``scripts/llama-wheel.sh``: portable flags, and built wheels cached by their flags.

The script is run for real against a virtualenv whose ``pip`` is a stand-in that logs its
arguments (and the ``CMAKE_ARGS`` it was given) and writes an empty wheel file for ``pip
wheel``, so the logic is checked without compiling llama.cpp.
"""

from __future__ import annotations

import os
import platform
import subprocess
import venv
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SCRIPT = ROOT / "scripts" / "llama-wheel.sh"
VERSION = "0.3.36"

FAKE_PIP = """#!/usr/bin/env bash
printf '%s|%s\\n' "CMAKE_ARGS=${CMAKE_ARGS:-}" "$*" >>"$PIP_LOG"
if [ "$1" = wheel ]; then
  while [ $# -gt 0 ]; do
    if [ "$1" = -w ]; then touch "$2/llama_cpp_python-VERSION-py3-none-linux_x86_64.whl"; fi
    shift
  done
fi
""".replace("VERSION", VERSION)

pytestmark = pytest.mark.skipif(
    platform.machine() != "x86_64", reason="the default flags are chosen for x86-64"
)


@pytest.fixture
def fake_venv(tmp_path: Path) -> Path:
    """A real virtualenv (for its python) with the stand-in pip."""
    root = tmp_path / "venv"
    venv.EnvBuilder(with_pip=False, symlinks=True).create(root)
    pip = root / "bin" / "pip"
    pip.write_text(FAKE_PIP, encoding="utf-8")
    pip.chmod(0o755)
    return root


def run_script(
    venv_root: Path, tmp_path: Path, cpu_flags: str, cmake_args: str | None = None
) -> list[tuple[str, str]]:
    """Run the script; return the stand-in pip's calls as (CMAKE_ARGS, arguments)."""
    cpuinfo = tmp_path / "cpuinfo"
    cpuinfo.write_text(f"flags\t\t: fpu sse sse2 {cpu_flags}\n", encoding="utf-8")
    log = tmp_path / "pip.log"
    log.unlink(missing_ok=True)
    env = {
        **os.environ,
        "PIP_LOG": str(log),
        "MEDSAFE_CPUINFO": str(cpuinfo),
        "MEDSAFE_WHEEL_CACHE": str(tmp_path / "cache"),
    }
    env.pop("CMAKE_ARGS", None)
    if cmake_args is not None:
        env["CMAKE_ARGS"] = cmake_args
    subprocess.run(
        ["bash", str(SCRIPT), str(venv_root / "bin" / "pip"), VERSION],
        env=env,
        check=True,
        capture_output=True,
        text=True,
    )
    lines = log.read_text(encoding="utf-8").splitlines() if log.exists() else []
    calls = []
    for line in lines:
        flags, _, args = line.partition("|")
        calls.append((flags.removeprefix("CMAKE_ARGS="), args))
    return calls


def test_builds_a_portable_wheel_without_pips_cache_and_installs_it(
    fake_venv: Path, tmp_path: Path
) -> None:
    calls = run_script(fake_venv, tmp_path, "avx avx2 fma f16c avx512f amx_tile")
    assert [args.split()[0] for _, args in calls] == ["wheel", "install"]
    flags, wheel_args = calls[0]
    assert {"--no-cache-dir", "--no-binary", f"llama-cpp-python=={VERSION}"} <= set(
        wheel_args.split()
    )
    # Portable even on a CPU with AVX-512 and AMX: those are what killed CI on another machine.
    for flag in ("-DGGML_NATIVE=OFF", "-DGGML_AVX2=ON", "-DGGML_AVX512=OFF", "-DGGML_AMX_TILE=OFF"):
        assert flag in flags.split()
    wheels = list((tmp_path / "cache").glob(f"*/llama_cpp_python-{VERSION}-*.whl"))
    assert len(wheels) == 1
    assert wheels[0].parent.joinpath("CMAKE_ARGS").read_text(encoding="utf-8").strip() == flags
    assert calls[1][1].endswith(str(wheels[0]))


def test_a_cpu_without_avx2_gets_a_build_without_it(fake_venv: Path, tmp_path: Path) -> None:
    flags, _ = run_script(fake_venv, tmp_path, "avx")[0]
    assert "-DGGML_AVX2=OFF" in flags.split()
    assert "-DGGML_NATIVE=OFF" in flags.split()


def test_cached_wheel_is_reused_and_other_flags_get_their_own(
    fake_venv: Path, tmp_path: Path
) -> None:
    first = run_script(fake_venv, tmp_path, "avx avx2 fma f16c")
    again = run_script(fake_venv, tmp_path, "avx avx2 fma f16c")
    assert [args.split()[0] for _, args in first] == ["wheel", "install"]
    assert [args.split()[0] for _, args in again] == ["install"]  # no second build
    gpu = run_script(fake_venv, tmp_path, "avx avx2 fma f16c", cmake_args="-DGGML_CUDA=on")
    assert [(flags, args.split()[0]) for flags, args in gpu] == [
        ("-DGGML_CUDA=on", "wheel"),
        ("-DGGML_CUDA=on", "install"),
    ]
    assert len(list((tmp_path / "cache").iterdir())) == 2


def test_nothing_to_do_when_the_same_build_is_installed(fake_venv: Path, tmp_path: Path) -> None:
    run_script(fake_venv, tmp_path, "avx avx2 fma f16c")
    # Make the venv report the version as installed (the stand-in pip installs nothing).
    site = next((fake_venv / "lib").glob("python3*/site-packages"))
    dist = site / f"llama_cpp_python-{VERSION}.dist-info"
    dist.mkdir()
    (dist / "METADATA").write_text(
        f"Metadata-Version: 2.1\nName: llama_cpp_python\nVersion: {VERSION}\n", encoding="utf-8"
    )
    assert run_script(fake_venv, tmp_path, "avx avx2 fma f16c") == []
    # Other flags than the installed build's: installed again.
    assert run_script(fake_venv, tmp_path, "avx") != []


def test_makefile_builds_the_version_pinned_in_pyproject() -> None:
    # The Makefile reads the pin from pyproject.toml; an unreadable pin would pass "" here.
    dry_run = subprocess.run(
        ["make", "-n", "-B", ".venv/.stamp-demo"],
        cwd=ROOT,
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    assert f"bash scripts/llama-wheel.sh .venv/bin/pip {VERSION}\n" in dry_run
    pyproject = (ROOT / "pyproject.toml").read_text(encoding="utf-8")
    assert f'"llama-cpp-python=={VERSION}"' in pyproject
