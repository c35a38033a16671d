"""Routing and sending pushes inside one node (`chatcore.server.push.routing`,
`chatcore.server.push.dispatch`): a real app on SQLite, messages sent through the real writer, and a
push adapter plugin whose provider answers what each test scripts.

What a provider receives over the network is the adapters' own tests (tests/plugins/); the
whole way over real servers is tests/e2e/test_e2e_push.py.
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import AsyncIterator, Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

import chatcore_auth
import chatcore_memory
import chatcore_redis
import chatcore_sql
from chatcore.hookspecs import hookimpl
from chatcore.metrics import metrics_registry
from chatcore.models import Device, PushResult, User
from chatcore.server import messages
from chatcore.server.app import App
from chatcore.testing.server import FAST_AUTH
from chatcore.testing.services import redis_url, require_url, unique_name

pytestmark = pytest.mark.anyio
WAIT = 10


@dataclass
class Sent:
    device: Device
    push: dict[str, Any]
    at: float
    in_flight: int  # sends under way when it started, itself included


@dataclass
class ScriptedProvider:
    """A push adapter of platform "fcm": each send is recorded, then answered by `answers`
    (a PushResult, or an exception to raise); `gate`, when set, holds sends until it opens.

    It runs where adapters run, on the dispatcher's own loop and thread: what it records goes
    to the test's loop thread-safely, and its gate is a threading.Event."""

    loop: asyncio.AbstractEventLoop
    platform: str = "fcm"
    max_payload_bytes: int = 4096
    answers: list[PushResult | Exception] = field(default_factory=list)
    sent: asyncio.Queue[Sent] = field(default_factory=asyncio.Queue)
    gate: threading.Event | None = None
    in_flight: int = 0
    most_in_flight: int = 0

    async def start(self) -> None: ...

    async def close(self) -> None: ...

    async def send(self, device: Device, push: Mapping[str, Any]) -> PushResult:
        self.in_flight += 1
        self.most_in_flight = max(self.most_in_flight, self.in_flight)
        try:
            sent = Sent(device, dict(push), time.monotonic(), self.in_flight)
            self.loop.call_soon_threadsafe(self.sent.put_nowait, sent)
            if self.gate is not None:
                await asyncio.to_thread(self.gate.wait, WAIT)
            answer = self.answers.pop(0) if self.answers else PushResult(outcome="sent")
            if isinstance(answer, Exception):
                raise answer
            return answer
        finally:
            self.in_flight -= 1

    async def next(self) -> Sent:
        return await asyncio.wait_for(self.sent.get(), WAIT)


class Plugin:
    """Offers the provider, and applies `notify` as a `chatcore_notify` implementation."""

    def __init__(self, provider: ScriptedProvider) -> None:
        self.provider = provider
        self.notify: Callable[[dict[str, Any], str], Any] = lambda push, user_id: None

    @hookimpl
    def chatcore_push_adapters(self, app: App) -> list[Any]:
        return [self.provider]

    @hookimpl
    def chatcore_notify(self, push: dict[str, Any], user_id: str) -> Any:
        return self.notify(push, user_id)


@dataclass
class Node:
    app: App
    provider: ScriptedProvider
    plugin: Plugin
    alice: User
    bob: User
    carol: User
    room_id: str

    async def send(self, body: str = "hello", sender: User | None = None) -> Any:
        sender = sender or self.alice
        fields = {"ref": f"r{time.monotonic_ns()}", "body": body}
        return (await messages.send(self.app, sender.id, self.room_id, fields)).message

    async def device(self, user: User, token: str) -> Device:
        device = Device(id=token, user_id=user.id, platform="fcm", token=token, created_ts=1)
        await self.app.storage.add_device(device, max_devices=5)
        return device

    def counted(self, outcome: str) -> float:
        labels = {"platform": "fcm", "outcome": outcome}
        value = metrics_registry(self.app).get_sample_value("chatcore_pushes_total", labels)
        return value or 0.0

    async def queue_empty(self) -> bool:
        far = int(time.time() * 1000) + 10**9
        return await self.app.storage.claim_pushes(far, 1, 10) == []


def make_app(folder: Path, plugin: Plugin, **config: Any) -> App:
    """A node on the SQLite file in `folder`, with the scripted provider's plugin."""
    overrides: dict[str, Any] = {
        "storage": {"url": f"sqlite+aiosqlite:///{folder}/chat.db"},
        "broker": {"url": "memory://"},
        "auth": {"secret": "s" * 40, **FAST_AUTH},
        "push": {
            "poll_seconds": 30,  # retries are woken for by the node that set them
            "retry_base_seconds": 0.02,
            "retry_max_seconds": 0.05,
            "max_attempts": 3,
            "concurrency": 2,
        },
    }
    for section, values in config.items():
        overrides[section] = {**overrides.get(section, {}), **values}
    return App.from_config(
        None,
        overrides=overrides,
        entry_points=False,
        extra_plugins=[chatcore_sql, chatcore_auth, chatcore_memory, chatcore_redis, plugin],
    )


async def people_and_room(app: App) -> tuple[User, User, User, str]:
    storage = app.storage
    alice, bob, carol = [
        await storage.create_user(name, "hash", name.title()) for name in ("alice", "bob", "carol")
    ]
    room = await storage.create_group_room(alice.id, "Team", [bob.id, carol.id], 1)
    return alice, bob, carol, room.id


@pytest.fixture
async def node(tmp_path: Path) -> AsyncIterator[Node]:
    provider = ScriptedProvider(asyncio.get_running_loop())
    plugin = Plugin(provider)
    app = make_app(tmp_path, plugin)
    await app.start(listen=False)
    try:
        yield Node(app, provider, plugin, *await people_and_room(app))
    finally:
        await app.stop()


async def test_a_node_that_does_not_send_wakes_the_one_that_does(tmp_path: Path) -> None:
    # [push] send = false: the chat node routes and queues, and wakes the push node over the
    # broker (a real Redis); both poll only every 30 s, so the push arrives by that wake.
    require_url("Redis", redis_url())
    broker = {"url": redis_url(), "channel_prefix": unique_name("push") + ":"}
    loop = asyncio.get_running_loop()
    idle = ScriptedProvider(loop)
    sender = ScriptedProvider(loop)
    chat = make_app(tmp_path, Plugin(idle), broker=broker, push={"send": False})
    pusher = make_app(tmp_path, Plugin(sender), broker=broker)
    await pusher.start(listen=False)
    await chat.start(listen=False)
    try:
        node = Node(chat, idle, Plugin(idle), *await people_and_room(chat))
        await node.device(node.bob, "bob-phone")
        message = await node.send("over the wire")
        got = await sender.next()
        assert (got.device.id, got.push["message_id"]) == ("bob-phone", message.id)
        assert idle.sent.empty()  # the chat node sends nothing itself
    finally:
        await chat.stop()
        await pusher.stop()


async def test_each_device_of_each_offline_member_gets_the_push(node: Node) -> None:
    phone = await node.device(node.bob, "bob-phone")
    tablet = await node.device(node.bob, "bob-tablet")
    carols = await node.device(node.carol, "carol-phone")
    await node.device(node.alice, "alice-phone")  # the sender gets none
    message = await node.send("hi @carol")
    got = [await node.provider.next() for _ in range(3)]
    by_device = {sent.device.id: sent.push for sent in got}
    assert set(by_device) == {phone.id, tablet.id, carols.id}
    assert by_device[carols.id] == {
        "type": "message",
        "room_id": node.room_id,
        "message_id": message.id,
        "seq": message.seq,
        "ts": message.ts,
        "sender_id": node.alice.id,
        "sender_name": "Alice",
        "room_name": "Team",
        "preview": "hi @carol",
        "direct": False,
        "mention": True,
    }
    assert by_device[phone.id]["mention"] is False
    await asyncio.wait_for(_until(lambda: node.counted("sent") == 3), WAIT)
    assert await node.queue_empty()


async def test_a_plugin_changes_or_vetoes_a_push(node: Node) -> None:
    await node.device(node.bob, "bob-phone")
    await node.device(node.carol, "carol-phone")

    def notify(push: dict[str, Any], user_id: str) -> Any:
        if user_id == node.bob.id:
            return False
        return {**push, "preview": push["preview"].upper()}

    node.plugin.notify = notify
    await node.send("quiet please")
    sent = await node.provider.next()
    assert (sent.device.id, sent.push["preview"]) == ("carol-phone", "QUIET PLEASE")
    vetoed = metrics_registry(node.app).get_sample_value("chatcore_pushes_vetoed_total")
    assert vetoed == 1
    # The recipient's own settings apply after the plugin: carol turns previews off.
    await node.app.storage.put_settings(node.carol.id, {"push": {"preview": False}})
    node.plugin.notify = lambda push, user_id: notify({**push, "preview": "changed"}, user_id)
    message = await node.send("second")
    sent = await node.provider.next()
    assert sent.push == {
        "type": "message",
        "room_id": node.room_id,
        "message_id": message.id,
        "seq": message.seq,
    }


async def test_a_failing_plugin_is_skipped_not_fatal(node: Node) -> None:
    await node.device(node.bob, "bob-phone")

    def broken(push: dict[str, Any], user_id: str) -> Any:
        raise RuntimeError("plugin bug")

    node.plugin.notify = broken
    await node.send("still pushed")
    assert (await node.provider.next()).push["preview"] == "still pushed"


async def test_passing_failures_are_retried_with_backoff_until_sent(node: Node) -> None:
    await node.device(node.bob, "bob-phone")
    retry = PushResult(outcome="retry", retry_after_seconds=0.3)
    node.provider.answers = [retry, RuntimeError("adapter bug")]
    await node.send()
    first, second, third = [await node.provider.next() for _ in range(3)]
    # Never sooner than the provider's Retry-After; an adapter that raised is retried too.
    assert second.at - first.at >= 0.3
    assert first.push == second.push == third.push
    await asyncio.wait_for(_until(lambda: node.counted("sent") == 1), WAIT)
    assert node.counted("retried") == 2
    assert await node.queue_empty()


async def test_every_retry_comes_back_on_time_not_at_the_next_poll(node: Node) -> None:
    # Two pushes retried at different times: the node wakes for each (it polls only every
    # 30 s here, longer than the waits below).
    await node.device(node.bob, "bob-phone")
    await node.device(node.carol, "carol-phone")
    node.provider.answers = [
        PushResult(outcome="retry", retry_after_seconds=0.05),
        PushResult(outcome="retry", retry_after_seconds=0.4),
    ]
    await node.send()
    firsts = [await node.provider.next() for _ in range(2)]
    retried = [await node.provider.next() for _ in range(2)]
    assert {s.device.id for s in retried} == {s.device.id for s in firsts}
    await asyncio.wait_for(_until(lambda: node.counted("sent") == 2), WAIT)


async def test_a_push_is_dropped_after_its_last_try(node: Node) -> None:
    await node.device(node.bob, "bob-phone")
    node.provider.answers = [PushResult(outcome="retry")] * 3
    await node.send()
    for _ in range(3):  # max_attempts
        await node.provider.next()
    await asyncio.wait_for(_until(lambda: node.counted("dropped") == 1), WAIT)
    assert node.counted("retried") == 2
    assert await node.queue_empty()


async def test_failed_pushes_are_dropped_and_gone_devices_removed(node: Node) -> None:
    await node.device(node.bob, "bob-phone")
    await node.device(node.carol, "carol-phone")
    node.provider.answers = [
        PushResult(outcome="gone", detail="HTTP 410"),
        PushResult(outcome="failed", detail="HTTP 400"),
    ]
    await node.send()
    await node.provider.next()
    await node.provider.next()
    await asyncio.wait_for(_until(lambda: node.counted("gone") + node.counted("failed") == 2), WAIT)
    assert node.counted("gone") == node.counted("failed") == 1
    storage = node.app.storage
    remaining = [*await storage.list_devices(node.bob.id)]
    remaining += await storage.list_devices(node.carol.id)
    assert len(remaining) == 1  # whichever got the 410 is gone
    assert await node.queue_empty()


async def test_at_most_concurrency_pushes_are_in_flight(node: Node) -> None:
    await node.device(node.bob, "bob-phone")
    node.provider.gate = threading.Event()
    for i in range(3):
        await node.send(f"m{i}")
    first, second = await node.provider.next(), await node.provider.next()
    assert (first.in_flight, second.in_flight) == (1, 2)
    # The third waits for a free slot: it starts only once the gate lets the others finish.
    node.provider.gate.set()
    await node.provider.next()
    assert node.provider.most_in_flight == 2
    await asyncio.wait_for(_until(lambda: node.counted("sent") == 3), WAIT)


async def test_delivery_does_not_wait_for_a_stuck_provider(node: Node) -> None:
    await node.device(node.bob, "bob-phone")
    node.provider.gate = threading.Event()
    await node.send("first")
    await node.provider.next()  # stuck at the provider
    stored = [await asyncio.wait_for(node.send(f"m{i}"), WAIT) for i in range(5)]
    assert [m.seq for m in stored] == [2, 3, 4, 5, 6]
    node.provider.gate.set()


async def _until(condition: Callable[[], bool]) -> None:
    """Wait for a counter the dispatcher sets after the provider answered (it has no event of
    its own to wait on); bounded by the callers' wait_for."""
    while not condition():  # noqa: ASYNC110
        await asyncio.sleep(0.01)
