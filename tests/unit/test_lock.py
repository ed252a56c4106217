"""The lock (``requirements/*.txt``) agrees with ``pyproject.toml``.

A dependency added to ``pyproject.toml`` without ``make lock``, a range that the
locked version no longer satisfies, a requirement without hashes, or an index
address written into a lock fails here, before a fresh machine finds it.
"""

from __future__ import annotations

import re
import tomllib
from dataclasses import dataclass
from pathlib import Path

import pytest
from packaging.requirements import Requirement
from packaging.utils import NormalizedName, canonicalize_name
from packaging.version import Version

ROOT = Path(__file__).resolve().parents[2]
REQUIREMENTS = ROOT / "requirements"
PYPROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text())

LOCKS = {
    "runtime.txt": (),
    "test.txt": ("test",),
    "bench.txt": ("bench",),
}
"""Each lock of the package, by the extras it holds besides the runtime dependencies."""

PIN = re.compile(r"^([A-Za-z0-9][A-Za-z0-9._-]*)==(\S+?)(?: ;(.*?))?\s*\\?$")


@dataclass(frozen=True)
class Pin:
    """One pinned requirement of a lock, with the hashes that follow it."""

    name: NormalizedName
    version: Version
    marker: str | None
    hashes: tuple[str, ...]


def read_lock(path: Path) -> list[Pin]:
    """Every pin of the lock at *path*."""
    pins: list[Pin] = []
    lines = path.read_text().splitlines()
    for index, line in enumerate(lines):
        match = PIN.match(line)
        if match is None:
            continue
        hashes = []
        for following in lines[index + 1 :]:
            hashed = re.match(r"^\s+--hash=(sha256:[0-9a-f]{64})", following)
            if hashed is None:
                break
            hashes.append(hashed.group(1))
        name, version, marker = match.groups()
        pins.append(Pin(canonicalize_name(name), Version(version), marker and marker.strip(), tuple(hashes)))
    return pins


def direct(extras: tuple[str, ...]) -> list[Requirement]:
    """The requirements that a lock for *extras* must satisfy: the package's, its extras', the build's."""
    texts = list(PYPROJECT["project"]["dependencies"])
    for extra in extras:
        texts += PYPROJECT["project"]["optional-dependencies"][extra]
    build_in = (REQUIREMENTS / "build.in").read_text().splitlines()
    texts += [line for line in build_in if line.strip() and not line.startswith("#")]
    return [Requirement(text) for text in texts]


@pytest.mark.parametrize(("lock", "extras"), LOCKS.items())
def test_every_direct_requirement_is_locked_within_its_range(lock: str, extras: tuple[str, ...]) -> None:
    pins = read_lock(REQUIREMENTS / lock)
    versions: dict[NormalizedName, list[Version]] = {}
    for pin in pins:
        versions.setdefault(pin.name, []).append(pin.version)
    for requirement in direct(extras):
        name = canonicalize_name(requirement.name)
        assert name in versions, f"{requirement} is not in requirements/{lock}: run make lock"
        outside = [str(v) for v in versions[name] if not requirement.specifier.contains(v, prereleases=True)]
        assert not outside, f"requirements/{lock} pins {name} {outside}, outside {requirement}: run make lock"


@pytest.mark.parametrize("lock", [*LOCKS, "uv.txt"])
def test_every_pin_has_hashes_and_no_lock_names_an_address(lock: str) -> None:
    text = (REQUIREMENTS / lock).read_text()
    assert "://" not in text, f"requirements/{lock} names an index or a URL; a lock holds names and hashes only"
    pins = read_lock(REQUIREMENTS / lock)
    assert pins, f"requirements/{lock} pins nothing"
    assert [pin.name for pin in pins if not pin.hashes] == []


def test_a_package_shared_by_two_locks_has_one_version() -> None:
    seen: dict[tuple[NormalizedName, str | None], tuple[str, Version]] = {}
    for lock in LOCKS:
        for pin in read_lock(REQUIREMENTS / lock):
            first = seen.setdefault((pin.name, pin.marker), (lock, pin.version))
            assert first[1] == pin.version, f"{pin.name}: {first[1]} in {first[0]}, {pin.version} in {lock}"


def test_the_lock_reader_reads_pins_markers_and_hashes(tmp_path: Path) -> None:
    lock = tmp_path / "lock.txt"
    lock.write_text(
        "# header\n"
        "anyio==4.0.0 \\\n"
        f"    --hash=sha256:{'a' * 64} \\\n"
        f"    --hash=sha256:{'b' * 64}\n"
        "    # via httpx\n"
        "colorama==0.4.6 ; sys_platform == 'win32' \\\n"
        f"    --hash=sha256:{'c' * 64}\n"
        "bare==1.0\n"
    )
    assert read_lock(lock) == [
        Pin(canonicalize_name("anyio"), Version("4.0.0"), None, (f"sha256:{'a' * 64}", f"sha256:{'b' * 64}")),
        Pin(canonicalize_name("colorama"), Version("0.4.6"), "sys_platform == 'win32'", (f"sha256:{'c' * 64}",)),
        Pin(canonicalize_name("bare"), Version("1.0"), None, ()),
    ]
