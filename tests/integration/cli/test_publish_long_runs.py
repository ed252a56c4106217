"""``broadcast publish --count`` over time, as a user runs it: Ctrl-C, --rate, --sleep, progress, stdin.

Real ``broadcast serve`` processes and real ``broadcast`` commands; the
terminal is a pseudo-terminal where it matters.
"""

from __future__ import annotations

import itertools
import re
import signal
import socket
import subprocess
from collections.abc import Callable, Iterator

import httpx
import orjson
import pytest
from typer.testing import CliRunner

from broadcast_cli.cli.app import app
from broadcast_cli.cli.status import ExitStatus
from tests.conftest import scaled
from tests.integration.cli.terminal import COMMAND, Terminal, collect, run_in_terminal, wait_for
from tests.integration.conftest import ServerProcess, ThreadedServer


def start(*args: str) -> subprocess.Popen[str]:
    """``broadcast ARGS`` in the background, its stdout and stderr piped."""
    return subprocess.Popen(
        [*COMMAND, *args], stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )


@pytest.fixture
def processes() -> Iterator[list[subprocess.Popen[str]]]:
    """Processes a test starts; those still running at its end are killed."""
    started: list[subprocess.Popen[str]] = []
    yield started
    for process in started:
        if process.poll() is None:
            process.kill()
        process.communicate()


def subscribed(server: ServerProcess, channel: str) -> bool:
    channels = httpx.get(f"{server.http_url}/channels", timeout=scaled(10)).json()["channels"]
    return any(item["channel"] == channel and item["subscribers"] > 0 for item in channels)


def receipts(lines: list[str]) -> list[dict[str, object]]:
    return [orjson.loads(line) for line in lines]


def test_ctrl_c_says_how_many_the_server_acknowledged_and_subscribers_got_exactly_those(
    start_server: Callable[..., ServerProcess], processes: list[subprocess.Popen[str]]
) -> None:
    server = start_server()
    subscriber = start("subscribe", "--channel", "long", "--url", server.ws_url)
    processes.append(subscriber)
    wait_for(lambda: subscribed(server, "long"), "the subscriber")
    publisher = start("publish", "long", "tick", '{"n": {{count}}}', "--count", "200000", "--rate", "2000/s",
                      "--url", server.http_url)  # fmt: skip
    processes.append(publisher)
    assert publisher.stdout is not None and publisher.stderr is not None
    published: list[str] = []
    reader = collect(publisher.stdout, published)
    wait_for(lambda: len(published) >= 200, "200 receipts")

    publisher.send_signal(signal.SIGINT)
    assert publisher.wait(scaled(30)) == ExitStatus.INTERRUPTED
    reader.join(scaled(10))
    stderr = publisher.stderr.read()
    # When a batch was in flight, a line says the run waits for its answer first.
    waiting = r"(broadcast: stopping: waiting for the server's answer about the \d+ messages? in flight \(.*\)\n)?"
    match = re.fullmatch(waiting + r"broadcast: interrupted after (\d+) of 200000 published\n", stderr)
    assert match is not None, stderr
    acknowledged = int(match.group(2))
    assert 200 <= acknowledged < 200000
    assert [receipt["seq"] for receipt in receipts(published)] == list(range(1, acknowledged + 1))

    # A last message marks the end: the subscriber must have got every acknowledged one before it, and no more.
    end = subprocess.run([*COMMAND, "publish", "long", "end", "-u", server.http_url], capture_output=True, check=False)
    assert end.returncode == 0, end.stderr
    assert subscriber.stdout is not None
    events: list[str] = []
    collect(subscriber.stdout, events)
    wait_for(lambda: any('"event":"end"' in line for line in events), "the last message")
    received = receipts(events)
    assert received[-1]["event"] == "end"
    assert [(event["seq"], event["payload"]) for event in received[:-1]] == [
        (n, {"n": n}) for n in range(1, acknowledged + 1)
    ]


def test_ctrl_c_ends_a_pause_at_once(
    start_server: Callable[..., ServerProcess], processes: list[subprocess.Popen[str]]
) -> None:
    server = start_server()
    publisher = start("publish", "slow", "e", "--count", "5", "--sleep", "1h", "--url", server.http_url)
    processes.append(publisher)
    assert publisher.stdout is not None
    first = publisher.stdout.readline()  # the first message goes at once, then an hour's pause
    assert orjson.loads(first)["seq"] == 1
    publisher.send_signal(signal.SIGINT)
    stdout, stderr = publisher.communicate(timeout=scaled(30))
    assert (publisher.returncode, stdout, stderr) == (130, "", "broadcast: interrupted after 1 of 5 published\n")


def test_a_second_ctrl_c_stops_at_once_and_says_what_had_no_answer(processes: list[subprocess.Popen[str]]) -> None:
    with socket.create_server(("127.0.0.1", 0)) as silent:  # accepts, reads, never answers
        port = silent.getsockname()[1]
        publisher = start("publish", "c", "e", "{{count}}", "--count", "3", "--timeout", "60",
                          "--url", f"http://127.0.0.1:{port}")  # fmt: skip
        processes.append(publisher)
        silent.settimeout(scaled(30))
        connection, _ = silent.accept()
        with connection:
            assert connection.recv(65536).startswith(b"POST /publish")  # the batch is in flight
            assert publisher.stderr is not None
            publisher.send_signal(signal.SIGINT)  # a clean stop waits for the answer, and says so
            assert publisher.stderr.readline() == (
                "broadcast: stopping: waiting for the server's answer about the 3 messages in flight "
                "(Ctrl-C again stops at once)\n"
            )
            publisher.send_signal(signal.SIGINT)
            stdout, stderr = publisher.communicate(timeout=scaled(30))
    assert publisher.returncode == ExitStatus.INTERRUPTED
    assert stderr == (
        "broadcast: interrupted after 0 of 3 published; 3 more had no answer yet and may or may not have been "
        "published\n"
    )
    assert stdout == ""


def test_rate_holds_the_pace(runner: CliRunner, server: ThreadedServer) -> None:
    args = ["publish", "paced", "e", "{{count}}", "-c", "60", "--rate", "40/s", "-u", server.http_url]
    result = runner.invoke(app, args)
    assert result.exit_code == 0, result.output
    stamps = [receipt["ts"] for receipt in receipts(result.stdout.splitlines())]
    assert len(stamps) == 60
    span = (stamps[-1] - stamps[0]) / 1000
    # 59 intervals of 25 ms: 1.475 s. As fast as possible it would take a few ms; the bounds are generous.
    assert 59 / (40 * 1.3) <= span <= 59 / 40 + scaled(5)


def test_sleep_pauses_after_each_answer(runner: CliRunner, server: ThreadedServer) -> None:
    result = runner.invoke(app, ["publish", "slow", "e", "-c", "3", "--sleep", "300ms", "-u", server.http_url])
    assert result.exit_code == 0, result.output
    stamps = [receipt["ts"] for receipt in receipts(result.stdout.splitlines())]
    gaps = [later - earlier for earlier, later in itertools.pairwise(stamps)]
    assert len(gaps) == 2 and all(300 <= gap <= 300 + scaled(5000) for gap in gaps), gaps


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--rate", "5"], "--rate and --sleep pace the messages of --count N: give --count"),
        (["-c", "2", "--rate", "5", "--sleep", "1s"], "give --rate or --sleep, not both"),
        (["-c", "2", "--rate", "fast"], "'fast' is not a rate: write 200, 200/s, 600/m or 36/h"),
        (["-c", "2", "--sleep", "0"], "a pause must be above 0"),
        (["--ndjson", "--rate", "5"], "give --count"),
    ],
)
def test_bad_pacing_is_a_usage_error(runner: CliRunner, args: list[str], message: str) -> None:
    result = runner.invoke(app, ["publish", *(["c", "e"] if "--ndjson" not in args else []), *args])
    assert result.exit_code == ExitStatus.USAGE
    assert message in " ".join(result.stderr.replace("│", " ").split()), result.stderr


def test_progress_shows_on_a_terminal_only(server: ThreadedServer) -> None:
    args = ["publish", "bar", "e", "{{count}}", "-c", "3000", "--rate", "3000/s", "-u", server.http_url]
    code, shown, _ = run_in_terminal(*args)
    assert code == 0, shown
    assert "publishing" in shown and "/3000" in shown  # the bar, on stderr
    assert "published 3000 messages" in shown  # the summary, on stdout
    # stdout piped, stderr on the terminal: receipts to the pipe, the bar still on the terminal
    code, shown, stdout = run_in_terminal(*args, stdout_terminal=False)
    assert code == 0 and "publishing" in shown and len(stdout.splitlines()) == 3000
    # --no-progress: no bar
    code, shown, _ = run_in_terminal(*args, "--no-progress")
    assert code == 0 and "publishing" not in shown and "published 3000 messages" in shown
    # piped: no bar
    result = subprocess.run([*COMMAND, *args], capture_output=True, text=True, timeout=scaled(60))
    assert (result.returncode, result.stderr) == (0, "")
    assert len(result.stdout.splitlines()) == 3000


@pytest.mark.parametrize(
    ("args", "typed", "hint"),
    [
        (["publish", "typed", "e", "-"], '{"typed": true}\n', "broadcast: reading the payload from stdin"),
        (["publish", "--ndjson"], '{"channel": "typed", "event": "e", "payload": {"typed": true}}\n',
         "broadcast: reading messages from stdin, one JSON object per line"),
    ],
)  # fmt: skip
def test_reading_stdin_from_a_terminal_says_so(args: list[str], typed: str, hint: str, server: ThreadedServer) -> None:
    terminal = Terminal()
    try:
        process = subprocess.Popen(
            [*COMMAND, *args, "-u", server.http_url],
            stdin=terminal.slave,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        terminal.started()
        assert process.stderr is not None
        said = process.stderr.readline()
        assert said.startswith(hint), said
        assert "Ctrl-D" in said
        terminal.write(typed)
        terminal.write("\x04")  # Ctrl-D on a line of its own: the end of the input
        stdout, stderr = process.communicate(timeout=scaled(30))
    finally:
        terminal.close()
    assert (process.returncode, stderr) == (0, "")
    assert orjson.loads(stdout)["channel"] == "typed"
    history = server.call(server.hub.history("typed", since=0))
    assert [message.payload for message in history.messages] == [{"typed": True}]


def test_no_hint_when_stdin_is_piped(runner: CliRunner, server: ThreadedServer) -> None:
    result = runner.invoke(app, ["publish", "piped", "e", "-", "-u", server.http_url], input="[1]\n")
    assert (result.exit_code, result.stderr) == (0, "")
