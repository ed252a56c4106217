"""Check the package as users get it: build it, inspect it, install it into a fresh venv and run it.

    python scripts/check_package.py                                  from any directory
    python scripts/check_package.py --lock requirements/runtime.txt  the dependencies from the lock
    python scripts/check_package.py --keep   keep the temporary directory (printed) for debugging

The test suite imports ``broadcast_cli`` from the repository, so it cannot notice a
file that is missing from the distributions (the browser client, the demo's static
files, the Redis functions, ``py.typed``), a broken entry point or a dependency that
is only installed in the dev environment. This check uses the real tools, no mocks:

1. ``python -m build`` builds the sdist, then the wheel *from the sdist* (which
   proves that the sdist is complete), into a fresh temporary directory. With a
   lock, the build backend is the one locked into the running environment
   (``--no-isolation``); without, ``build`` fetches the newest one.
2. The wheel must hold every file of ``broadcast_cli/`` (``git ls-files``, untracked
   but not ignored files included; without git, the tree without ``__pycache__``)
   and the ``broadcast`` console script; the sdist must hold what
   ``[tool.hatch.build.targets.sdist] include`` in ``pyproject.toml`` lists.
3. The wheel is installed with pip into a fresh virtual environment: with
   ``--lock`` (or ``BROADCAST_LOCK``, which ``make test`` sets), its dependencies
   are exactly the lock's, hash-checked; without, they are the newest releases
   that its ranges allow, as ``pip install broadcast-cli`` would give a user.
4. From the temporary directory, so that the repository's sources cannot be
   imported by accident, the installed ``broadcast`` prints its version and help,
   serves ``/client.js`` and ``/client.d.ts`` (identical to the repository's files)
   and ``/health``, and carries one message from ``broadcast publish`` to
   ``broadcast subscribe``; the server then exits 0 on SIGTERM.

Progress goes to stderr; the last line on stdout is a one-line summary. Exits 0 on
success, 1 with ``package: FAILED: <what>`` on stderr otherwise. Standard library only.
"""

from __future__ import annotations

import argparse
import configparser
import hashlib
import json
import os
import re
import shutil
import subprocess
import sys
import tarfile
import tempfile
import threading
import time
import tomllib
import traceback
import urllib.error
import urllib.request
import zipfile
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = "broadcast_cli"
PACKAGE_DIR = ROOT / PACKAGE
CLIENT_JS = PACKAGE_DIR / "static" / "broadcast.js"
"""What ``GET /client.js`` must serve, byte for byte."""
CLIENT_TYPES = PACKAGE_DIR / "static" / "broadcast.d.ts"
"""What ``GET /client.d.ts`` must serve, byte for byte."""
REQUIRED_IN_WHEEL = (
    f"{PACKAGE}/py.typed",
    f"{PACKAGE}/static/broadcast.js",
    f"{PACKAGE}/static/broadcast.d.ts",
    f"{PACKAGE}/backends/redis_functions.lua",
)
"""Files the wheel needs whatever git says (the demo's static files are added from the tree)."""
DEMO_STATIC = f"{PACKAGE}/demo/static/"
ENTRY_POINT = ("broadcast", "broadcast_cli.cli.app:main")
CHANNEL, EVENT, PAYLOAD = "pkg", "pkg.check", {"ok": True}

BUILD_TIMEOUT = 600.0
INSTALL_TIMEOUT = 600.0
COMMAND_TIMEOUT = 60.0
START_TIMEOUT = 30.0
SUBSCRIBE_TIMEOUT = 30.0
STOP_TIMEOUT = 20.0
"""Longer than the server's default shutdown timeout (10 s), which it may use to drain."""
HTTP_TIMEOUT = 10.0


class CheckFailed(Exception):
    """A check failed; the message says what."""


def status(message: str) -> None:
    """A progress line on stderr."""
    print(f"package: {message}", file=sys.stderr, flush=True)


def tail(text: str, lines: int = 40) -> str:
    """The last *lines* lines of *text*, indented, for failure messages."""
    kept = text.rstrip().splitlines()[-lines:]
    return "\n".join("    " + line for line in kept)


def child_env() -> dict[str, str]:
    """The environment of every command: this one without what could redirect the package or the CLI.

    ``BROADCAST_*`` variables would change the CLI's defaults, ``PYTHONPATH`` could make
    the repository importable, and a proxy must never be asked for 127.0.0.1.
    """
    env = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith(("BROADCAST_", "COVERAGE_")) and key not in {"PYTHONPATH", "PYTHONHOME", "VIRTUAL_ENV"}
    }
    no_proxy = ",".join(filter(None, ["127.0.0.1", "localhost", env.get("NO_PROXY"), env.get("no_proxy")]))
    env["NO_PROXY"] = env["no_proxy"] = no_proxy
    return env


def run(command: Sequence[str | Path], *, cwd: Path, timeout: float, what: str) -> str:
    """Run *command* in *cwd* within *timeout* seconds; return its stdout, or fail naming *what*."""
    try:
        result = subprocess.run(
            [str(part) for part in command],
            cwd=cwd,
            env=child_env(),
            stdin=subprocess.DEVNULL,
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )
    except subprocess.TimeoutExpired as error:
        raise CheckFailed(f"{what} took longer than {timeout:g} s") from error
    except OSError as error:
        raise CheckFailed(f"{what} could not start: {error}") from error
    if result.returncode != 0:
        output = tail(result.stdout + result.stderr)
        raise CheckFailed(f"{what} exited with status {result.returncode}:\n{output}")
    return result.stdout


# -- what the distributions must contain ---------------------------------------------------------


def repo_files(directory: str) -> set[str]:
    """The files under *directory* (relative to the repository) that a build must include.

    Files git tracks or would track (untracked but not ignored), that exist in the
    working tree; without git, every file of the tree outside ``__pycache__``.
    """
    git = shutil.which("git")
    if git is not None and (ROOT / ".git").exists():
        listing = subprocess.run(
            [git, "ls-files", "--cached", "--others", "--exclude-standard", "-z", "--", directory],
            cwd=ROOT,
            capture_output=True,
            text=True,
            timeout=COMMAND_TIMEOUT,
            check=False,
        )
        if listing.returncode == 0:
            names = {name for name in listing.stdout.split("\0") if name}
            return {name for name in names if not _is_cache(name) and (ROOT / name).is_file()}
    return {
        path.relative_to(ROOT).as_posix()
        for path in (ROOT / directory).rglob("*")
        if path.is_file() and not _is_cache(path.relative_to(ROOT).as_posix())
    }


def _is_cache(name: str) -> bool:
    return "__pycache__" in PurePosixPath(name).parts or name.endswith((".pyc", ".pyo"))


def sdist_includes() -> list[str]:
    """What ``[tool.hatch.build.targets.sdist] include`` lists in ``pyproject.toml``."""
    with (ROOT / "pyproject.toml").open("rb") as file:
        pyproject: dict[str, Any] = tomllib.load(file)
    include = pyproject.get("tool", {}).get("hatch", {}).get("build", {}).get("targets", {}).get("sdist", {})
    names = include.get("include", [])
    if not isinstance(names, list) or not all(isinstance(name, str) for name in names):
        raise CheckFailed("pyproject.toml: [tool.hatch.build.targets.sdist] include is not a list of paths")
    return [name.strip("/") for name in names]


def expected_in_sdist(includes: Sequence[str]) -> set[str]:
    """The files the sdist must hold: every file of each included path, and the metadata files."""
    expected = {"pyproject.toml", "README.md", "PKG-INFO"}
    for name in includes:
        if (ROOT / name).is_dir():
            files = repo_files(name)
            if not files:
                raise CheckFailed(f"pyproject.toml includes {name}/ in the sdist, but it has no files")
            expected |= files
        else:
            expected.add(name)
    return expected


def missing(what: str, expected: set[str], present: set[str]) -> None:
    """Fail if some of *expected* are not in *present*, naming them."""
    absent = sorted(expected - present)
    if absent:
        shown = "\n".join(f"    {name}" for name in absent[:50])
        more = f"\n    … and {len(absent) - 50} more" if len(absent) > 50 else ""
        raise CheckFailed(f"{len(absent)} file(s) missing from the {what}:\n{shown}{more}")


# -- building and inspecting ---------------------------------------------------------------------


@dataclass
class Distributions:
    """The built sdist and wheel."""

    sdist: Path
    wheel: Path

    @property
    def version(self) -> str:
        """The version in the wheel's file name (``broadcast_cli-<version>-py3-none-any.whl``)."""
        return self.wheel.name.split("-")[1]


def build(out: Path, work: Path, *, isolated: bool) -> Distributions:
    """``python -m build``: the sdist, then the wheel from the sdist, into *out*.

    When not *isolated*, the build backend is the running environment's (the locked one).
    """
    status("building the sdist, then the wheel from it (python -m build)…")
    start = time.monotonic()
    run(
        [sys.executable, "-m", "build", *([] if isolated else ["--no-isolation"]), "--outdir", out, ROOT],
        cwd=work,
        timeout=BUILD_TIMEOUT,
        what="python -m build",
    )
    sdists = sorted(out.glob("*.tar.gz"))
    wheels = sorted(out.glob("*.whl"))
    if len(sdists) != 1 or len(wheels) != 1:
        found = ", ".join(path.name for path in out.iterdir()) or "nothing"
        raise CheckFailed(f"python -m build should make one sdist and one wheel, it made: {found}")
    status(f"built in {time.monotonic() - start:.1f} s")
    return Distributions(sdists[0], wheels[0])


def check_wheel(wheel: Path) -> tuple[int, dict[str, bytes]]:
    """Check the wheel's files and entry point; return its file count and its static assets."""
    if not re.fullmatch(r"broadcast_cli-[^-]+-py3-none-any\.whl", wheel.name):
        raise CheckFailed(f"the wheel should be pure Python (…-py3-none-any.whl), it is {wheel.name}")
    with zipfile.ZipFile(wheel) as archive:
        names = {info.filename for info in archive.infolist() if not info.is_dir()}
        package = repo_files(PACKAGE)
        demo = {name for name in package if name.startswith(DEMO_STATIC)}
        if not demo:
            raise CheckFailed(f"the repository has no {DEMO_STATIC} files (the demo's static files)")
        missing("wheel", {*REQUIRED_IN_WHEEL, *demo, *package}, names)
        cached = sorted(name for name in names if _is_cache(name))
        if cached:
            raise CheckFailed("the wheel contains compiled files: " + ", ".join(cached[:10]))
        entry_points = [name for name in names if re.fullmatch(r"[^/]+\.dist-info/entry_points\.txt", name)]
        if not entry_points:
            raise CheckFailed("the wheel has no *.dist-info/entry_points.txt")
        check_entry_point(archive.read(entry_points[0]).decode())
        assets = {name: archive.read(name) for name in (f"{PACKAGE}/static/broadcast.js",)}
    return len(names), assets


def check_entry_point(text: str) -> None:
    """``entry_points.txt`` must declare the ``broadcast`` console script."""
    parser = configparser.ConfigParser(delimiters=("=",), interpolation=None)
    parser.optionxform = str  # type: ignore[assignment,method-assign]
    parser.read_string(text)
    name, target = ENTRY_POINT
    found = parser.get("console_scripts", name, fallback=None)
    if found is None or found.replace(" ", "") != target:
        raise CheckFailed(
            f"entry_points.txt should declare [console_scripts] {name} = {target}, it says:\n{tail(text)}"
        )


def check_sdist(sdist: Path, includes: Sequence[str]) -> int:
    """Check that the sdist holds what ``pyproject.toml`` includes; return its file count."""
    with tarfile.open(sdist) as archive:
        members = [member.name for member in archive.getmembers() if member.isfile()]
    top = sdist.name.removesuffix(".tar.gz") + "/"
    outside = [name for name in members if not name.startswith(top)]
    if outside:
        raise CheckFailed(f"the sdist has files outside {top}: {', '.join(outside[:10])}")
    names = {name.removeprefix(top) for name in members}
    missing("sdist", expected_in_sdist(includes), names)
    return len(names)


# -- installing and running ----------------------------------------------------------------------


@dataclass
class Venv:
    """A fresh virtual environment with the wheel installed."""

    path: Path

    @property
    def bin(self) -> Path:
        return self.path / ("Scripts" if os.name == "nt" else "bin")

    @property
    def python(self) -> Path:
        return self.bin / ("python.exe" if os.name == "nt" else "python")

    @property
    def broadcast(self) -> Path:
        return self.bin / ("broadcast.exe" if os.name == "nt" else "broadcast")


def install(wheel: Path, work: Path, lock: Path | None) -> Venv:
    """A fresh virtual environment in *work* with *wheel* installed by its own pip.

    With a *lock*, every dependency is the lock's, hash-checked, and so is the wheel.
    """
    venv = Venv(work / "venv")
    start = time.monotonic()
    run([sys.executable, "-m", "venv", venv.path], cwd=work, timeout=COMMAND_TIMEOUT, what="python -m venv")
    what: list[str | Path] = [wheel]
    if lock is not None:
        digest = hashlib.sha256(wheel.read_bytes()).hexdigest()
        requirements = work / "requirements.txt"
        requirements.write_text(f"-r {lock}\n{wheel} --hash=sha256:{digest}\n")
        what = ["--require-hashes", "-r", requirements]
    run(
        [venv.python, "-m", "pip", "install", "--quiet", "--disable-pip-version-check", *what],
        cwd=work,
        timeout=INSTALL_TIMEOUT,
        what=f"pip install {wheel.name} (in a fresh venv{f', pinned by {lock.name}' if lock else ''})",
    )
    status(f"installed into a fresh venv in {time.monotonic() - start:.1f} s")
    return venv


def check_installed(venv: Venv, version: str, work: Path) -> None:
    """The package imports from the venv; ``broadcast --version`` and ``--help`` work."""
    location = run(
        [venv.python, "-c", f"import {PACKAGE}; print({PACKAGE}.__file__)"],
        cwd=work,
        timeout=COMMAND_TIMEOUT,
        what=f"import {PACKAGE}",
    ).strip()
    if not Path(location).resolve().is_relative_to(venv.path.resolve()):
        raise CheckFailed(f"{PACKAGE} was imported from {location}, not from the fresh venv {venv.path}")
    printed = run([venv.broadcast, "--version"], cwd=work, timeout=COMMAND_TIMEOUT, what="broadcast --version").strip()
    if printed != f"broadcast-cli {version}":
        raise CheckFailed(f"broadcast --version printed {printed!r}, expected 'broadcast-cli {version}' (the wheel's)")
    run([venv.broadcast, "--help"], cwd=work, timeout=COMMAND_TIMEOUT, what="broadcast --help")
    status(f"{PACKAGE} imports from the venv, broadcast --version says {printed!r}, --help works")


@dataclass
class Server:
    """A ``broadcast serve`` process and the URLs it announced on stderr."""

    process: subprocess.Popen[str]
    lines: list[str] = field(default_factory=list)
    urls: dict[str, str] = field(default_factory=dict)
    announced: threading.Event = field(default_factory=threading.Event)
    reader: threading.Thread | None = None

    def read(self) -> None:
        """Collect stderr (the reader thread), noting the URLs as they are announced."""
        assert self.process.stderr is not None
        for line in self.process.stderr:
            self.lines.append(line)
            if "serving on " in line:
                self.urls["http"] = line.split("serving on ", 1)[1].strip()
            elif line.strip().startswith("WebSocket"):
                self.urls["ws"] = line.split()[-1]
                self.announced.set()
        self.announced.set()

    def output(self) -> str:
        return tail("".join(self.lines))


@contextmanager
def serve(venv: Venv, work: Path) -> Iterator[Server]:
    """``broadcast serve --port 0`` from the venv, once it announced its URLs; killed at the end if still running."""
    process = subprocess.Popen(
        [str(venv.broadcast), "serve", "--port", "0", "--log-level", "warning"],
        cwd=work,
        env=child_env(),
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    server = Server(process)
    server.reader = threading.Thread(target=server.read, daemon=True)
    server.reader.start()
    try:
        if not server.announced.wait(START_TIMEOUT) or "ws" not in server.urls or "http" not in server.urls:
            state = "exited" if process.poll() is not None else f"did not within {START_TIMEOUT:g} s"
            raise CheckFailed(f"broadcast serve did not announce its URLs ({state}):\n{server.output()}")
        yield server
    finally:
        kill(process)
        server.reader.join(STOP_TIMEOUT)
        if process.stderr is not None:
            process.stderr.close()


def kill(process: subprocess.Popen[str]) -> None:
    """Kill *process* if it still runs, and reap it."""
    if process.poll() is None:
        process.kill()
        process.wait(STOP_TIMEOUT)


def stop(server: Server) -> None:
    """SIGTERM: the server must drain and exit 0 in time."""
    server.process.terminate()
    try:
        code = server.process.wait(STOP_TIMEOUT)
    except subprocess.TimeoutExpired as error:
        raise CheckFailed(f"broadcast serve did not exit within {STOP_TIMEOUT:g} s of SIGTERM") from error
    if server.reader is not None:
        server.reader.join(STOP_TIMEOUT)
    if code != 0:
        raise CheckFailed(f"broadcast serve exited with status {code} on SIGTERM:\n{server.output()}")


_OPENER = urllib.request.build_opener(urllib.request.ProxyHandler({}))


def get(url: str) -> tuple[int, str, bytes]:
    """``GET`` *url* (never through a proxy): its status, content type and body."""
    try:
        with _OPENER.open(url, timeout=HTTP_TIMEOUT) as response:
            return int(response.status), str(response.headers.get("Content-Type", "")), bytes(response.read())
    except urllib.error.HTTPError as error:
        return int(error.code), str(error.headers.get("Content-Type", "")), bytes(error.read())
    except (urllib.error.URLError, OSError) as error:
        raise CheckFailed(f"GET {url} failed: {error}") from error


def check_asset(server: Server, path: str, expected: Path, wheel_assets: dict[str, bytes]) -> int:
    """``GET path`` answers 200 with *expected*'s bytes; return their count."""
    code, content_type, body = get(server.urls["http"] + path)
    if code != 200:
        raise CheckFailed(f"GET {path} answered {code}: {body[:200]!r}")
    if path.endswith(".js") and not re.match(r"(text|application)/javascript\b", content_type):
        raise CheckFailed(f"GET {path} has Content-Type {content_type!r}, not JavaScript")
    want = expected.read_bytes()
    if body != want:
        packaged = f"{PACKAGE}/{expected.relative_to(PACKAGE_DIR).as_posix()}"
        hint = " (the wheel's copy; the repository's file changed since the build?)"
        same = hint if wheel_assets.get(packaged) == body else ""
        raise CheckFailed(f"GET {path} served {len(body)} bytes{same}, not the {len(want)} bytes of {expected}")
    return len(body)


def check_http(server: Server, wheel_assets: dict[str, bytes]) -> int:
    """``/client.js``, ``/client.d.ts`` and ``/health``; return the size of ``/client.js``."""
    size = check_asset(server, "/client.js", CLIENT_JS, wheel_assets)
    check_asset(server, "/client.d.ts", CLIENT_TYPES, wheel_assets)
    code, _, body = get(server.urls["http"] + "/health")
    if code != 200:
        raise CheckFailed(f"GET /health answered {code}: {body[:200]!r}")
    status(f"broadcast serve from the wheel serves /client.js ({size} bytes, identical), /client.d.ts, /health")
    return size


def subscribers(server: Server, channel: str) -> int:
    """How many subscribers *channel* has on the server (``GET /channels``)."""
    code, _, body = get(server.urls["http"] + "/channels")
    if code != 200:
        raise CheckFailed(f"GET /channels answered {code}: {body[:200]!r}")
    listing = json.loads(body)
    return sum(int(item["subscribers"]) for item in listing["channels"] if item["channel"] == channel)


def check_round_trip(venv: Venv, server: Server, work: Path) -> None:
    """``broadcast subscribe`` gets the one message ``broadcast publish`` sends, both from the venv."""
    subscriber = subprocess.Popen(
        [str(venv.broadcast), "subscribe", "--channel", CHANNEL, "--count", "1", "--url", server.urls["ws"]],
        cwd=work,
        env=child_env(),
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        wait_subscribed(server, subscriber)
        run(
            [venv.broadcast, "publish", CHANNEL, EVENT, json.dumps(PAYLOAD), "--url", server.urls["http"]],
            cwd=work,
            timeout=COMMAND_TIMEOUT,
            what="broadcast publish",
        )
        try:
            out, err = subscriber.communicate(timeout=SUBSCRIBE_TIMEOUT)
        except subprocess.TimeoutExpired as error:
            raise CheckFailed(f"broadcast subscribe --count 1 did not exit within {SUBSCRIBE_TIMEOUT:g} s") from error
    finally:
        kill(subscriber)
        subscriber.communicate()
    if subscriber.returncode != 0:
        raise CheckFailed(f"broadcast subscribe exited with status {subscriber.returncode}:\n{tail(out + err)}")
    check_event(out)
    status(f"broadcast publish → broadcast subscribe: {EVENT} on {CHANNEL} arrived")


def wait_subscribed(server: Server, subscriber: subprocess.Popen[str]) -> None:
    """Poll ``GET /channels`` until *subscriber* is subscribed; fail if it exits or the deadline passes."""
    deadline = time.monotonic() + START_TIMEOUT
    while subscribers(server, CHANNEL) < 1:
        if subscriber.poll() is not None:
            out, err = subscriber.communicate()
            raise CheckFailed(f"broadcast subscribe exited with status {subscriber.returncode}:\n{tail(out + err)}")
        if time.monotonic() > deadline:
            raise CheckFailed(f"broadcast subscribe did not subscribe to {CHANNEL!r} within {START_TIMEOUT:g} s")
        time.sleep(0.05)


def check_event(out: str) -> None:
    """The subscriber printed exactly one JSON line: the message published."""
    lines = out.strip().splitlines()
    if len(lines) != 1:
        raise CheckFailed(f"broadcast subscribe --count 1 printed {len(lines)} lines, not 1:\n{tail(out)}")
    try:
        event = json.loads(lines[0])
    except json.JSONDecodeError as error:
        raise CheckFailed(f"broadcast subscribe printed a line that is not JSON: {lines[0]!r}") from error
    got = {key: event.get(key) for key in ("channel", "event", "payload")} if isinstance(event, dict) else event
    want = {"channel": CHANNEL, "event": EVENT, "payload": PAYLOAD}
    if got != want:
        raise CheckFailed(f"broadcast subscribe printed {lines[0]!r}, expected {want}")


# -- the whole check -----------------------------------------------------------------------------


def check(work: Path, lock: Path | None) -> str:
    """Every check, in *work*, with the dependencies of *lock* if given; returns the summary line."""
    start = time.monotonic()
    includes = sdist_includes()
    dists = build(work / "dist", work, isolated=lock is None)
    wheel_files, assets = check_wheel(dists.wheel)
    sdist_files = check_sdist(dists.sdist, includes)
    status(
        f"wheel {dists.wheel.name} ({wheel_files} files, {dists.wheel.stat().st_size / 1000:.0f} kB), "
        f"sdist {dists.sdist.name} ({sdist_files} files, {dists.sdist.stat().st_size / 1000:.0f} kB): "
        f"nothing missing ({', '.join(includes)})"
    )
    venv = install(dists.wheel, work, lock)
    check_installed(venv, dists.version, work)
    with serve(venv, work) as server:
        size = check_http(server, assets)
        check_round_trip(venv, server, work)
        stop(server)
    status("broadcast serve exited 0 on SIGTERM")
    return (
        f"package: wheel + sdist built, wheel installed in a fresh venv ({lock.name if lock else 'newest deps'}), "
        f"broadcast --version/serve/publish/subscribe OK, /client.js served ({size} bytes) "
        f"in {time.monotonic() - start:.1f} s"
    )


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0] if __doc__ else None)
    parser.add_argument("--keep", action="store_true", help="keep the temporary directory (printed) for debugging")
    parser.add_argument(
        "--lock",
        type=Path,
        default=os.environ.get("BROADCAST_LOCK") or None,
        help="install the dependencies from this lock, e.g. requirements/runtime.txt (default: $BROADCAST_LOCK; "
        "none: the newest releases)",
    )
    args = parser.parse_args(argv)
    lock: Path | None = (ROOT / args.lock).resolve() if args.lock else None
    if lock is not None and not lock.is_file():
        print(f"package: FAILED: no lock {lock}", file=sys.stderr, flush=True)
        return 1
    work = Path(tempfile.mkdtemp(prefix="broadcast-package-")).resolve()
    failure: str | None = None
    try:
        summary = check(work, lock)
    except CheckFailed as error:
        failure = str(error)
    except Exception as error:  # a bug here, or an answer this check did not expect: still one clear line
        traceback.print_exc()
        failure = f"unexpected {type(error).__name__}: {error}"
    finally:
        if args.keep:
            status(f"kept {work}")
        else:
            shutil.rmtree(work, ignore_errors=True)
    if failure is not None:
        print(f"package: FAILED: {failure}", file=sys.stderr, flush=True)
        return 1
    print(summary, flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
