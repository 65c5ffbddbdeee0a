"""The one wheel cache: wheels of a requirement and all its dependencies, for the images' platform.

No registry is reachable from a build, so pip fetches manylinux wheels on the host into
`~/.cache/live-tests/wheels/<package>-<version>-<recipe>/`, once; builds copy them into their
context. The folder name carries a hash of the pip commands, so new flags mean new wheels.
"""

from __future__ import annotations

import contextlib
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from live_tests.images.build import ImageBuildError, log, sha256

# Wheels must run on the bases: CPython 3.11, glibc <= 2.36 (Debian bookworm).
WHEEL_PYTHON_VERSION = "3.11"
MAX_GLIBC = (2, 36)
PIP_TIMEOUT_S = 900


def wheel_platforms(architecture: str = "x86_64") -> tuple[str, ...]:
    return (
        *(f"manylinux_2_{minor}_{architecture}" for minor in range(MAX_GLIBC[1], 4, -1)),
        f"manylinux2014_{architecture}",
        f"manylinux2010_{architecture}",
        f"manylinux1_{architecture}",
    )


def wheel_cache_dir() -> Path:
    cache_home = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(cache_home) / "live-tests" / "wheels"


@dataclass(frozen=True)
class WheelSet:
    """package==version with its dependencies; with `overrides`, the package comes without its
    dependencies and the overrides (with theirs) replace them."""

    package: str
    version: str
    overrides: tuple[str, ...] = ()
    # Pure-Python requirements published only as sdists: a wheel built on the host installs
    # anywhere, and lets the rest be fetched binary-only.
    pure_sdists: tuple[str, ...] = ()
    architecture: str = "x86_64"

    def steps(self) -> list[tuple[list[str], bool]]:
        """(requirements, with their dependencies?) to fetch, in order."""
        if not self.overrides:
            return [([f"{self.package}=={self.version}"], True)]
        return [([f"{self.package}=={self.version}"], False), (list(self.overrides), True)]

    def commands(self, dest: Path) -> list[list[str]]:
        """Every pip command this set may run (the wheel fallback included)."""
        pure = [_pip_wheel_command(list(self.pure_sdists), False, dest)] if self.pure_sdists else []
        fetch = [
            command
            for requirements, with_deps in self.steps()
            for command in (
                _pip_download_command(requirements, with_deps, dest, self),
                _pip_wheel_command(requirements, with_deps, dest),
            )
        ]
        return pure + fetch

    def recipe(self) -> str:
        """Hash of how the wheels are fetched: known before anything is downloaded."""
        args = [arg for command in self.commands(Path("DEST")) for arg in command]
        return sha256("\0".join(arg for arg in args if arg != sys.executable).encode())


def download_wheels(wheels: WheelSet, cache_dir: Path | None = None) -> Path:
    """The folder holding the set's wheels, fetched with pip on the host once and reused after."""
    cache = (cache_dir or wheel_cache_dir()) / f"{wheels.package}-{wheels.version}-{wheels.recipe()[:12]}"
    if (cache / ".complete").exists():
        return cache
    cache.parent.mkdir(parents=True, exist_ok=True)
    started = time.monotonic()
    partial = Path(tempfile.mkdtemp(prefix=f".{wheels.package}-{wheels.version}-", dir=cache.parent))
    try:
        if wheels.pure_sdists and (error := _pip(_pip_wheel_command(list(wheels.pure_sdists), False, partial))):
            raise ImageBuildError(f"pip could not build wheels for {' '.join(wheels.pure_sdists)}: {error}")
        for requirements, with_deps in wheels.steps():
            error = _pip(_pip_download_command(requirements, with_deps, partial, wheels))
            if error and _host_matches_images(wheels.architecture):
                # Some dependency has no wheel (only an sdist): let pip build it here, which is
                # only right because this host is the images' platform (CPython 3.11, Linux).
                log.info("not every dependency has a wheel (%s); building the missing ones", error[:200])
                error = _pip(_pip_wheel_command(requirements, with_deps, partial))
            if error:
                raise ImageBuildError(
                    f"pip could not get wheels for {' '.join(requirements)}: {error} "
                    f"(is that version on PyPI, with wheels for CPython 3.11 on Linux {wheels.architecture}?)"
                )
        (partial / ".complete").write_text(f"{wheels.package}=={wheels.version} {' '.join(wheels.overrides)}\n")
        # OSError: another build finished the same download first.
        with contextlib.suppress(OSError):
            partial.rename(cache)
    finally:
        shutil.rmtree(partial, ignore_errors=True)
    log.info("got %s==%s wheels in %.0fs", wheels.package, wheels.version, time.monotonic() - started)
    return cache


def copy_wheels(wheels: Path, target: Path) -> None:
    """The wheels into a build context (hard links when possible)."""
    target.mkdir(parents=True, exist_ok=True)
    for wheel in wheels.glob("*.whl"):
        try:
            os.link(wheel, target / wheel.name)
        except OSError:  # another filesystem
            shutil.copyfile(wheel, target / wheel.name)


def _pip_download_command(requirements: list[str], with_deps: bool, dest: Path, wheels: WheelSet) -> list[str]:
    # The pure wheels built first are found beside the rest.
    find_links = ["--find-links", str(dest)] if wheels.pure_sdists else []
    return [
        sys.executable, "-m", "pip", "download", "--disable-pip-version-check", "--quiet",
        "--only-binary=:all:", "--implementation", "cp", "--python-version", WHEEL_PYTHON_VERSION,
        *(arg for platform in wheel_platforms(wheels.architecture) for arg in ("--platform", platform)),
        *find_links, *([] if with_deps else ["--no-deps"]), "--dest", str(dest), *requirements,
    ]  # fmt: skip


def _pip_wheel_command(requirements: list[str], with_deps: bool, dest: Path) -> list[str]:
    return [
        sys.executable, "-m", "pip", "wheel", "--disable-pip-version-check", "--quiet",
        *([] if with_deps else ["--no-deps"]), "--wheel-dir", str(dest), *requirements,
    ]  # fmt: skip


def _host_matches_images(architecture: str) -> bool:
    glibc = platform.libc_ver()
    return (
        sys.implementation.name == "cpython"
        and f"{sys.version_info.major}.{sys.version_info.minor}" == WHEEL_PYTHON_VERSION
        and sys.platform == "linux"
        and platform.machine() == architecture
        and glibc[0] == "glibc"
        and tuple(int(part) for part in glibc[1].split(".")[:2]) <= MAX_GLIBC
    )


def _pip(command: list[str]) -> str | None:
    """Run pip; None on success, else its last error lines."""
    try:
        result = subprocess.run(command, capture_output=True, text=True, timeout=PIP_TIMEOUT_S)
    except subprocess.TimeoutExpired:
        return f"pip took over {PIP_TIMEOUT_S}s"
    if result.returncode == 0:
        return None
    lines = result.stderr.splitlines()
    errors = [line for line in lines if line.startswith("ERROR")] or lines[-2:]
    return " ".join(errors[-2:])[:400]
