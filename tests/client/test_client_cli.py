"""`chatcore client ...` end to end: the real command, in fresh processes, against a real server.

Two people (ann and bob), each with a device store of their own, talk through the commands a
script would use; then the server goes away and comes back, and nothing typed meanwhile is lost.
"""

from __future__ import annotations

import json
import os
import select
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import pytest
from cli_support import chatcore_cli, one_error_line

from chatcore.testing.server import (
    TIMEOUT_SCALE,
    ServerProcess,
    picked_port,
    start_server,
    to_toml,
)
from chatcore.testing.users import PASSWORD, unique_username

# Each command is a fresh interpreter (about a second of imports on its own), and a scenario
# here runs dozens of them: in the full parallel suite, with browsers and servers sharing two
# cores, one takes longer than the suite's 120 s guard against a hang. This is the guard, not
# an expectation of speed (bench/ measures that).
pytestmark = pytest.mark.timeout(360 * TIMEOUT_SCALE)

NO_FLOOD_CONTROL = {"rate_per_second": 100_000, "rate_burst": 100_000}
#: Seconds for what should happen at once (a connection, a live message).
WAIT = 20 * TIMEOUT_SCALE


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    folder = tmp_path_factory.mktemp("server")
    with start_server(folder, {"websocket": NO_FLOOD_CONTROL}) as running:
        yield running


class Person:
    """One user with a device of their own: a client config and a device store in a folder."""

    def __init__(self, server: ServerProcess, folder: Path, **client_keys: object) -> None:
        folder.mkdir(parents=True, exist_ok=True)
        self.folder = folder
        self.name = unique_username()
        self.config = folder / "client.toml"
        self.config.write_text(
            to_toml(
                {
                    "role": "client",
                    "client": {
                        "server_url": server.base_url,
                        "reconnect_min_seconds": 0.05,
                        "reconnect_max_seconds": 0.5,
                        **client_keys,
                    },
                    "device_store": {"path": str(folder / "client.db")},
                    "media_cache": {"path": str(folder / "media-cache")},
                }
            )
        )

    def run(self, *args: str, stdin: str | None = None) -> subprocess.CompletedProcess[str]:
        return chatcore_cli("client", *args, "--config", str(self.config), stdin=stdin)

    def ok(self, *args: str, stdin: str | None = None) -> str:
        result = self.run(*args, stdin=stdin)
        assert result.returncode == 0, result.stdout + result.stderr
        assert "Traceback" not in result.stderr, result.stderr
        return result.stdout.strip()

    def json(self, *args: str) -> dict:  # type: ignore[type-arg]
        return json.loads(self.ok(*args, "--json"))

    def sign_up(self) -> None:
        assert self.ok("register", self.name, "--password-stdin", stdin=PASSWORD + "\n")
        assert self.ok("login", self.name, "--password-stdin", stdin=PASSWORD + "\n") == (
            f"logged in as {self.name} ({self.json_user_id()})"
        )

    def json_user_id(self) -> str:
        # The device store holds the account: read it the way a script would.
        return str(self.json("whoami")["user"]["id"])


@pytest.fixture
def ann(server: ServerProcess, tmp_path: Path) -> Person:
    person = Person(server, tmp_path / "ann")
    person.sign_up()
    return person


@pytest.fixture
def bob(server: ServerProcess, tmp_path: Path) -> Person:
    person = Person(server, tmp_path / "bob")
    person.sign_up()
    return person


def test_two_people_talk_through_the_commands(ann: Person, bob: Person) -> None:
    room = ann.ok("open", bob.name)
    assert ann.ok("send", room, "hello bob") == "sent"
    sent = ann.json("send", room, "second line")
    assert sent["state"] == "sent"
    assert sent["message"]["body"] == "second line"

    assert ann.ok("history", room).splitlines()[-1].endswith("second line")
    assert bob.ok("sync") == "synced 1 rooms"
    bodies = [m["body"] for m in bob.json("history", room)["messages"]]
    assert bodies == ["hello bob", "second line"]
    rooms = bob.json("rooms")["rooms"]
    assert [(r["room"]["id"], r["unread"]) for r in rooms] == [(room, 2)]
    found = bob.json("search", "hello")["messages"]
    assert [m["body"] for m in found] == ["hello bob"]
    assert bob.ok("search", "nothing-like-this") == "nothing found"
    # A second sync brings nothing twice.
    assert bob.ok("sync") == "synced 1 rooms"
    assert len(bob.json("history", room)["messages"]) == 2


def test_a_send_to_a_room_the_server_does_not_show_exits_1_with_its_reason(ann: Person) -> None:
    result = ann.run("send", "no-such-room", "hello?", "--wait", "10")
    line = one_error_line(result)
    assert line == (
        "error: The message could not be sent: This room does not exist or is not visible to you."
    ), line
    failed = ann.json("outbox")["outbox"]
    assert [(e["room_id"], e["state"], e["error_code"]) for e in failed] == [
        ("no-such-room", "failed", "not_found")
    ]


def test_what_is_typed_while_the_server_is_down_is_sent_once_when_it_is_back(
    tmp_path: Path,
) -> None:
    with start_server(tmp_path / "server", {"websocket": NO_FLOOD_CONTROL}) as server:
        ann = Person(server, tmp_path / "ann")
        bob = Person(server, tmp_path / "bob")
        ann.sign_up()
        bob.sign_up()
        room = ann.ok("open", bob.name)
        assert ann.ok("send", room, "before") == "sent"

        server.stop()
        assert ann.ok("send", room, "while down", "--wait", "0.5") == "queued"
        assert ann.ok("send", room, "still down", "--wait", "0") == "queued"
        pending = ann.json("outbox")["outbox"]
        assert [(e["body"], e["state"]) for e in pending] == [
            ("while down", "pending"),
            ("still down", "pending"),
        ]
        # The device store answers with the server down.
        assert ann.ok("history", room).splitlines()[-1].endswith("before")
        assert ann.ok("rooms").startswith(room)

        server.start()
        assert ann.ok("sync") == "synced 1 rooms"
        assert ann.ok("outbox") == "outbox empty"
        bob.ok("sync")
        bodies = [m["body"] for m in bob.json("history", room)["messages"]]
        assert bodies == ["before", "while down", "still down"]


def test_tail_prints_each_event_as_a_json_line(ann: Person, bob: Person) -> None:
    room = ann.ok("open", bob.name)
    with subprocess.Popen(
        [sys.executable, "-m", "chatcore", "client", "tail", "--json", "--config", str(bob.config)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        bufsize=0,  # unbuffered: select() sees every byte the command printed
        env=dict(os.environ),
    ) as tail:
        try:
            _watch(tail, ann, bob, room)
        finally:
            tail.terminate()
            tail.wait(timeout=30 * TIMEOUT_SCALE)


def _watch(tail: subprocess.Popen[bytes], ann: Person, bob: Person, room: str) -> None:
    """The tail shows the connection come up, then ann's message to bob, live; a `send` from
    bob's device while the tail holds its connection goes out at once (over REST)."""
    events = _lines_until(tail, lambda e: e["type"] == "connection" and e["state"] == "ready")
    states = [e["state"] for e in events if e["type"] == "connection"]
    assert states[0] == "connecting" and states[-1] == "ready", states
    assert ann.ok("send", room, "live to the tail") == "sent"
    events = _lines_until(tail, lambda e: e.get("type") == "message")
    message = events[-1]
    assert message["live"] is True
    assert message["message"]["body"] == "live to the tail"
    assert message["message"]["room_id"] == room

    assert bob.ok("send", room, "from a second process", "--wait", "10") == "sent"
    events = _lines_until(tail, lambda e: e.get("type") == "message")
    assert events[-1]["message"]["body"] == "from a second process"


def _lines_until(process: subprocess.Popen[bytes], done: Callable[[dict], bool]) -> list[dict]:  # type: ignore[type-arg]
    """JSON lines the process prints, up to the first one `done` accepts; fails after WAIT."""
    assert process.stdout is not None
    seen: list[dict] = []  # type: ignore[type-arg]
    pending = _unread.setdefault(process.pid, bytearray())
    deadline = time.monotonic() + WAIT
    while True:
        while b"\n" in pending:
            line, _, rest = bytes(pending).partition(b"\n")
            pending[:] = rest
            event = json.loads(line)
            seen.append(event)
            if done(event):
                return seen
        left = deadline - time.monotonic()
        if left <= 0 or not select.select([process.stdout], [], [], left)[0]:
            break
        chunk = os.read(process.stdout.fileno(), 65536)
        if not chunk:  # the process ended
            break
        pending += chunk
    process.terminate()
    _, err = process.communicate(timeout=WAIT)
    raise AssertionError(f"tail printed no such line within {WAIT} s: {seen}\n{err.decode()}")


#: Bytes read from a process's output but not yet returned as lines, by pid.
_unread: dict[int, bytearray] = {}


def test_logout_ends_the_login_and_reading_still_works(ann: Person, bob: Person) -> None:
    room = ann.ok("open", bob.name)
    assert ann.ok("send", room, "kept after logout") == "sent"
    assert ann.ok("logout") == "logged out"
    assert ann.ok("history", room).splitlines()[-1].endswith("kept after logout")
    line = one_error_line(ann.run("open", bob.name))
    assert "log in" in line.lower(), line


def test_the_push_receiver_runs_beside_the_app_and_prints_each_push(tmp_path: Path) -> None:
    """`push-receiver` as its own process on bob's device store: the server's signed webhook
    push for ann's message arrives, its message is stored on bob's device and printed."""
    secret = "webhook-secret-" + "s" * 32
    overrides = {
        "websocket": NO_FLOOD_CONTROL,
        "push_webhook": {"secret": secret, "allow_private_endpoints": True},
    }
    with start_server(tmp_path / "server", overrides) as server:
        ann = Person(server, tmp_path / "ann")
        bob = Person(server, tmp_path / "bob", push_webhook_secret=secret)
        ann.sign_up()
        bob.sign_up()
        room = bob.ok("open", ann.name)
        port = picked_port()
        command = [sys.executable, "-m", "chatcore", "client", "push-receiver", "--json"]
        with subprocess.Popen(
            [*command, "--listen", f"127.0.0.1:{port}", "--config", str(bob.config)],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            bufsize=0,
            env=dict(os.environ),
        ) as receiver:
            try:
                _wait_listening(port, receiver)
                endpoint = f"http://127.0.0.1:{port}/push"
                device = bob.json("push-device", "webhook", "--endpoint", endpoint)["device"]
                assert (device["platform"], device["endpoint"]) == ("webhook", endpoint)
                assert ann.ok("send", room, "are you there?") == "sent"
                [push] = _lines_until(receiver, lambda e: e["type"] == "push")
                assert push["notice"]["room_id"] == room
                assert push["notice"]["message"]["body"] == "are you there?"
            finally:
                receiver.terminate()
                receiver.wait(timeout=WAIT)
        assert bob.ok("history", room).splitlines()[-1].endswith("are you there?")


def _wait_listening(port: int, process: subprocess.Popen[bytes]) -> None:
    """Until something answers on `port` (the receiver started), or the process ended."""
    deadline = time.monotonic() + WAIT
    while time.monotonic() < deadline and process.poll() is None:
        try:
            httpx.get(f"http://127.0.0.1:{port}/", timeout=1)
            return
        except httpx.TransportError:
            time.sleep(0.05)  # polling a process we do not control; bounded by the deadline
    raise AssertionError(f"the push receiver did not listen: {process.stderr.read()!r}")  # type: ignore[union-attr]


def test_with_no_subcommand_it_opens_the_ui_a_plugin_provides(ann: Person) -> None:
    """`chatcore client` alone runs the `chatcore_client_ui` provider; with none (the built-in
    terminal client turned off) it says how to get one, in one line."""
    config = ann.folder / "no-ui.toml"
    config.write_text('disabled_plugins = ["chatcore_tui"]\n' + ann.config.read_text())
    line = one_error_line(chatcore_cli("client", "--config", str(config)))
    assert "no plugin provides a user interface" in line and "chatcore[tui]" in line, line


def test_reply_to_push_refuses_what_is_not_a_push(ann: Person) -> None:
    line = one_error_line(ann.run("reply-to-push", stdin='{"hello": "world"}'))
    assert "push" in line, line
    line = one_error_line(ann.run("reply-to-push", stdin="not json"))
    assert "not JSON" in line, line
