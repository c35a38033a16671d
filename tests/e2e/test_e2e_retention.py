"""Retention (docs/protocol.md "Retention"), black-box against real server processes: a room's
own setting and who may change it, a pass (`chatcore retention run`, "now" given in the future
instead of waiting days) deleting old messages and the media nothing uses any more, history
and catch-up over the deleted range without a gap, the client engine catching up past it, and
on a cluster the lease that lets one node at a time run the job."""

from __future__ import annotations

import asyncio
import io
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from cli_support import chatcore_cli
from e2e_support import Crowd, Json, Person, config_of, expect
from engine_support import engine_client, signed_up, synced

from chatcore.clock import now_ms
from chatcore.testing.cluster import ClusterProcess, start_cluster
from chatcore.testing.server import ServerProcess, start_server
from chatcore.testing.services import postgres_fetch, postgres_storage_section
from chatcore.testing.wsclient import WSClient

pytestmark = [pytest.mark.anyio, pytest.mark.e2e]

DAY_MS = 86_400_000


def retention_path(room: Json) -> str:
    return f"/rooms/{room['id']}/retention"


async def cli(*args: str) -> subprocess.CompletedProcess[str]:
    """A `chatcore` command in a process of its own, off the event loop (sessions go on)."""
    return await asyncio.to_thread(chatcore_cli, *args)


async def run_pass(config: Path, days_ahead: float) -> subprocess.CompletedProcess[str]:
    """`chatcore retention run` as if it were `days_ahead` days from now."""
    future = now_ms() + int(days_ahead * DAY_MS)
    return await cli("retention", "run", "--config", str(config), "--now-ms", str(future))


async def promote_and_disable(crowd: Crowd, config: Path, admin: Person, disabled: Person) -> None:
    """Make `admin` a server admin and disable `disabled` with the console commands; return
    once the server knows (the disabled user's session closed)."""
    session = await crowd.session(disabled)
    for args in (
        ("user", "promote", admin.user.username),
        ("user", "disable", disabled.user.username),
    ):
        done = await cli(*args, "--config", str(config))
        assert done.returncode == 0, done.stderr
    await session.wait_closed(timeout=10)


def png(color: str = "red") -> bytes:
    from PIL import Image

    out = io.BytesIO()
    Image.new("RGB", (80, 60), color).save(out, "PNG")
    return out.getvalue()


async def upload(person: Person, data: bytes) -> Json:
    reply = await person.http.post(
        person.api + "/media",
        headers=person.user.headers,
        files={"file": ("photo.png", data, "image/png")},
    )
    assert reply.status_code == 201, reply.text  # (`expect` reads the request: not streamed)
    media: Json = reply.json()
    return media


async def send_media(person: Person, room: Json, media: Json) -> Json:
    body = {"ref": f"media-{media['id']}", "kind": "media", "media_id": media["id"]}
    message: Json = expect(await person.post(f"/rooms/{room['id']}/messages", body), 201)
    return message


# --- the setting and who may change it -----------------------------------------------------------


@pytest.fixture(scope="module")
def retention_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    """One node with a server default of 30 days; a login ended by a console command is
    noticed within a fifth of a second."""
    overrides = {"retention": {"default_days": 30}, "auth": {"revocation_sync_seconds": 0.2}}
    with start_server(tmp_path_factory.mktemp("retention"), overrides) as node:
        yield node


async def test_who_may_read_and_change_a_rooms_retention(retention_server: ServerProcess) -> None:
    """The authorization matrix: the owner and a room admin change it, a plain member only
    reads it, everyone else does not see the room; each change is in the room log and the
    audit log."""
    async with Crowd(retention_server) as crowd:
        owner, admin, member, outsider, banned, disabled, server_admin = await crowd.people(7)
        room = await owner.group("team", [admin, member, banned, disabled])
        path = retention_path(room)
        expect(
            await owner.call(
                "PUT", f"/rooms/{room['id']}/members/{admin.id}/role", json={"role": "admin"}
            ),
            200,
        )
        expect(await owner.call("PUT", f"/rooms/{room['id']}/bans/{banned.id}"), 200)
        await promote_and_disable(crowd, config_of(retention_server), server_admin, disabled)

        initial = {"days": None, "effective_days": 30, "first_seq": 1}
        for reader in (owner, admin, member):
            assert expect(await reader.get(path), 200) == initial
        set_by_owner = expect(await owner.call("PUT", path, json={"days": 7}), 200)
        assert set_by_owner == {"days": 7, "effective_days": 7, "first_seq": 1}
        set_by_admin = expect(await admin.call("PUT", path, json={"days": 90}), 200)
        assert set_by_admin["days"] == 90
        expect(await member.call("PUT", path, json={"days": 1}), 403, "forbidden")
        # Not members (the server admin neither: a room's own routes go by membership).
        for stranger in (outsider, banned, server_admin):
            expect(await stranger.get(path), 404, "not_found")
            expect(await stranger.call("PUT", path, json={"days": 1}), 404, "not_found")
        expect(await disabled.get(path), 401, "unauthorized")
        expect(await disabled.call("PUT", path, json={"days": 1}), 401, "unauthorized")
        anonymous = await crowd.http.get(retention_server.api + path)
        expect(anonymous, 401, "unauthorized")
        expect(await crowd.http.put(retention_server.api + path, json={"days": 1}), 401)
        expect(await owner.get("/rooms/no-such-room/retention"), 404, "not_found")
        assert expect(await owner.get(path), 200)["days"] == 90  # the refusals changed nothing

        back = expect(await owner.call("PUT", path, json={"days": None}), 200)
        assert back == initial

        # A room admin of this room is a plain member of another one, and nobody in a third.
        other = await owner.group("other", [admin])
        expect(await admin.call("PUT", retention_path(other), json={"days": 1}), 403, "forbidden")
        third = await member.group("third", [])
        expect(await admin.call("PUT", retention_path(third), json={"days": 1}), 404, "not_found")

        log = expect(await member.get(f"/rooms/{room['id']}/log"), 200)
        changes = [e for e in log["entries"] if e["action"] == "room.retention"]
        assert [(e["actor_id"], e["details"]["days"]) for e in changes] == [
            (owner.id, None),
            (admin.id, 90),
            (owner.id, 7),
        ]
        audit = await cli("audit", "--config", str(config_of(retention_server)))
        assert audit.stdout.count("room.retention") == 3, audit.stdout


async def test_bad_retention_values_are_refused(retention_server: ServerProcess) -> None:
    async with Crowd(retention_server) as crowd:
        (owner,) = await crowd.people(1)
        room = await owner.group("team", [])
        path = retention_path(room)
        for body in (
            {"days": 0},
            {"days": 36501},
            {"days": -1},
            {"days": "7"},
            {"days": True},
            {"days": 1.5},
            {},
            [7],
            "7",
        ):
            reply = expect(await owner.call("PUT", path, json=body), 400, "bad_request")
            assert "days" in reply["error"]["message"] or "object" in reply["error"]["message"]
        for days in (1, 36500):
            assert expect(await owner.call("PUT", path, json={"days": days}), 200)["days"] == days
        # Unknown fields are ignored, as everywhere (newer clients keep working).
        reply = expect(await owner.call("PUT", path, json={"days": 3, "color": "red"}), 200)
        assert reply["days"] == 3


async def test_either_member_sets_a_direct_rooms_retention(retention_server: ServerProcess) -> None:
    async with Crowd(retention_server) as crowd:
        ann, ben, cid = await crowd.people(3)
        room = await ann.direct(ben)
        path = retention_path(room)
        assert expect(await ann.call("PUT", path, json={"days": 2}), 200)["days"] == 2
        assert expect(await ben.call("PUT", path, json={"days": 5}), 200)["days"] == 5
        assert expect(await ann.get(path), 200)["effective_days"] == 5
        expect(await cid.call("PUT", path, json={"days": 1}), 404, "not_found")


# --- a pass -------------------------------------------------------------------------------------


async def test_a_pass_deletes_old_messages_and_unused_media(tmp_path: Path) -> None:
    """A room with 1 day loses its messages (and the media only they used) to a pass two days
    ahead; a room on the default (keep forever) keeps everything; history and catch-up
    start where the room now begins, without a gap error, and new messages go on numbering."""
    with start_server(tmp_path / "node") as server:
        async with Crowd(server) as crowd:
            alice, bob = await crowd.people(2)
            short = await alice.group("short", [bob])
            kept = await alice.group("kept", [bob])
            expect(await alice.call("PUT", retention_path(short), json={"days": 1}), 200)
            only_here = await upload(alice, png("red"))
            also_kept = await upload(alice, png("blue"))
            thumb = await alice.get(f"/media/{only_here['id']}/thumbnail", params={"size": 64})
            assert thumb.status_code == 200, thumb.text
            await send_media(alice, short, only_here)
            await send_media(alice, short, also_kept)
            await send_media(alice, kept, also_kept)
            for n in range(4):
                await bob.send_rest(short["id"], f"old {n}")
                await bob.send_rest(kept["id"], f"kept {n}")
            blobs, thumbs = server.folder / "media" / "blobs", server.folder / "media" / "thumbs"
            stored = {p.name for p in blobs.rglob("*") if p.is_file()}
            assert stored == {only_here["sha256"], also_kept["sha256"]}
            assert len(list(thumbs.rglob("*.png"))) == 1

            early = await run_pass(server.config_path, 0.5)  # not old enough yet
            assert early.returncode == 0, early.stderr
            assert "deleted 0 messages" in early.stdout
            done = await run_pass(server.config_path, 2)
            assert done.returncode == 0, done.stderr
            assert done.stdout.strip() == "deleted 6 messages in 1 rooms, 1 media (1 stored files)"

            # The deleted range: history holds what remains, with nothing more before it.
            assert await alice.all_messages(short["id"]) == []
            assert expect(await alice.get(retention_path(short)), 200)["first_seq"] == 7
            page = await alice.history(short["id"], before_seq=4)
            assert page == {"messages": [], "has_more": False}
            assert len(await alice.all_messages(kept["id"])) == 5
            assert "last_message" not in await alice.room(short["id"])
            # Search forgets what was deleted.
            found = expect(await bob.get("/search/messages", params={"q": "old"}), 200)
            assert found["messages"] == []
            found = expect(await bob.get("/search/messages", params={"q": "kept"}), 200)
            assert len(found["messages"]) == 4
            # Media: the one only the deleted messages used is gone with its bytes and
            # thumbnail; the one another room still shows stays.
            expect(await alice.get(f"/media/{only_here['id']}"), 404, "not_found")
            assert (await bob.get(f"/media/{also_kept['id']}")).status_code == 200
            assert not list(thumbs.rglob("*.png"))
            assert {p.name for p in blobs.rglob("*") if p.is_file()} == {also_kept["sha256"]}

            # The seqs go on: nothing is reused.
            new = await bob.send_rest(short["id"], "new")
            assert new["seq"] == 7
            assert expect(await alice.get(retention_path(short)), 200)["first_seq"] == 7
            history = await alice.history(short["id"])
            assert [m["seq"] for m in history["messages"]] == [7] and not history["has_more"]
            assert (await alice.room(short["id"]))["last_seq"] == 7

            # Catch-up from before the deleted range, or from inside it: what remains, and
            # `first_seq` saying where the room now starts (no gap for the client to wait on).
            ws = await crowd.session(bob)
            for cursor in (0, 3):
                result = await ws.sync({short["id"]: cursor, kept["id"]: 5})
                assert result.seqs(short["id"]) == [7]
                assert result.synced["rooms"][short["id"]] == 7
                assert result.synced["first_seq"] == {short["id"]: 7}
                assert not result.synced["has_more"]
            # From the end of the range on: an ordinary catch-up, without `first_seq`.
            result = await ws.sync({short["id"]: 6, kept["id"]: 5})
            assert result.seqs(short["id"]) == [7] and "first_seq" not in result.synced

            audit = await cli("audit", "--config", str(server.config_path))
            purges = [line for line in audit.stdout.splitlines() if "retention.purge" in line]
            assert len(purges) == 1, audit.stdout  # the pass that deleted nothing left no entry
            assert '"messages":6' in purges[0] and "console" in purges[0], purges


async def test_a_room_whose_every_message_was_deleted_syncs_to_its_last_seq(tmp_path: Path) -> None:
    with start_server(tmp_path / "node", {"retention": {"default_days": 1}}) as server:
        async with Crowd(server) as crowd:
            alice, bob = await crowd.people(2)
            room = await alice.direct(bob)
            for n in range(3):
                await alice.send_rest(room["id"], f"m{n}")
            done = await run_pass(server.config_path, 2)
            assert "deleted 3 messages in 1 rooms" in done.stdout, done.stdout + done.stderr
            ws = await crowd.session(bob)
            result = await ws.sync({room["id"]: 1})
            assert result.seqs(room["id"]) == []
            assert result.synced["first_seq"] == {room["id"]: 4}
            assert result.synced["rooms"][room["id"]] == 1
            # A live message afterwards arrives as usual.
            sent = await alice.send_rest(room["id"], "after")
            event = await ws.recv("message", timeout=10)
            assert event["message"]["id"] == sent["id"] and sent["seq"] == 4


async def test_the_client_engine_catches_up_past_deleted_messages(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """A device that had seen nothing of a room catches up from 0: its cursor jumps the
    deleted seqs and reaches the room's last one, over several rounds (`has_more`), instead
    of waiting for messages that no longer exist."""
    overrides = {"limits": {"max_sync_messages": 5}, "websocket": {"rate_burst": 1000}}
    with start_server(tmp_path / "node", overrides) as server:
        async with Crowd(server) as crowd:
            (alice,) = await crowd.people(1)
            async with engine_client(server, tmp_path / "device", connect=False) as (bob, _log):
                bob_id = await signed_up(bob)
                room = expect(
                    await alice.post(
                        "/rooms", {"kind": "group", "name": "g", "member_ids": [bob_id]}
                    ),
                    201,
                )
                path = retention_path(room)
                expect(await alice.call("PUT", path, json={"days": 1}), 200)
                for n in range(4):
                    await alice.send_rest(room["id"], f"old {n}")
                done = await run_pass(server.config_path, 2)
                assert "deleted 4 messages" in done.stdout, done.stdout + done.stderr
                for n in range(12):
                    await alice.send_rest(room["id"], f"new {n}")
                await synced(bob)
                cursors = await bob.store.cursors()
                assert cursors[room["id"]] == 16
                stored = await bob.history(room["id"], limit=100)
                assert [m.seq for m in stored] == list(range(16, 4, -1))
                # No round ended with rooms whose cursors would not move.
                assert "cursors do not move" not in caplog.text


# --- a cluster ----------------------------------------------------------------------------------


@pytest.fixture
def pg_cluster(tmp_path: Path) -> Iterator[tuple[ClusterProcess, dict[str, Any]]]:
    """Two nodes on a fresh PostgreSQL schema and Redis, and their `[storage]` section."""
    with (
        postgres_storage_section() as storage,
        start_cluster(tmp_path / "cluster", "redis", storage) as cluster,
    ):
        yield cluster, storage


async def test_one_node_of_a_cluster_runs_a_pass_at_a_time(
    pg_cluster: tuple[ClusterProcess, dict[str, Any]],
) -> None:
    """Two nodes on PostgreSQL and Redis: while the lease is held (here by a holder standing
    for a node busy with a pass), a pass elsewhere does nothing; once it is free, a pass on
    the other node deletes, and both nodes serve what remains."""
    cluster, storage = pg_cluster
    node_a, node_b = cluster.nodes
    async with Crowd(node_a) as crowd_a, Crowd(node_b) as crowd_b:
        alice = await crowd_a.person()
        bob_on_b = await crowd_b.person()
        room = await alice.group("team", [bob_on_b])
        expect(await alice.call("PUT", retention_path(room), json={"days": 1}), 200)
        for n in range(5):
            await alice.send_rest(room["id"], f"m{n}")

        schema = storage["schema"]
        await postgres_fetch(
            storage["url"],
            f'INSERT INTO "{schema}".job_leases (name, holder, until_ts) VALUES ($1, $2, $3)',
            "retention",
            "a-node-busy-with-a-pass",
            now_ms() + 600_000,
        )
        refused = await run_pass(node_a.config_path, 2)
        assert refused.returncode == 1
        assert "another node is running the retention job" in refused.stderr
        assert len(await bob_on_b.all_messages(room["id"])) == 5  # nothing deleted
        await postgres_fetch(storage["url"], f'DELETE FROM "{schema}".job_leases')

        done = await run_pass(node_b.config_path, 2)
        assert done.returncode == 0, done.stderr
        assert "deleted 5 messages in 1 rooms" in done.stdout
        rows = await postgres_fetch(storage["url"], f'SELECT * FROM "{schema}".job_leases')
        assert rows == []  # a finished pass frees the lease at once

        new = await alice.send_rest(room["id"], "after")
        assert new["seq"] == 6
        for person, crowd in ((alice, crowd_a), (bob_on_b, crowd_b)):
            assert [m["seq"] for m in await person.all_messages(room["id"])] == [6]
            ws: WSClient = await crowd.session(person)
            result = await ws.sync({room["id"]: 0})
            assert result.seqs(room["id"]) == [6]
            assert result.synced["first_seq"] == {room["id"]: 6}


async def test_the_retention_routes_are_in_the_openapi_document(
    retention_server: ServerProcess,
) -> None:
    """Both routes, with their bodies, replies and every status they answer (403 for a plain
    member's change); a real reply matches its documented schema."""
    async with Crowd(retention_server) as crowd:
        reply = await crowd.http.get(retention_server.api + "/openapi.json")
        openapi: Json = expect(reply, 200)
        operations = openapi["paths"]["/api/v1/rooms/{room_id}/retention"]
        body_ref = {"$ref": "#/components/schemas/RetentionBody"}
        for method, statuses in (("get", {"401", "404"}), ("put", {"400", "401", "403", "404"})):
            operation = operations[method]
            assert operation["summary"] and operation["security"] == [{"bearer": []}]
            assert statuses | {"200", "500"} <= set(operation["responses"]), method
            content = operation["responses"]["200"]["content"]["application/json"]
            assert content["schema"] == body_ref
        request = operations["put"]["requestBody"]["content"]["application/json"]["schema"]
        assert request == {"$ref": "#/components/schemas/RetentionRequest"}
        assert (
            "retention"
            in expect(await crowd.http.get(retention_server.api + "/info"), 200)["features"]
        )

        validators = pytest.importorskip("openapi_schema_validator")
        (owner,) = await crowd.people(1)
        room = await owner.group("team", [])
        schema = {**body_ref, "components": openapi["components"]}
        for reply in (
            await owner.get(retention_path(room)),
            await owner.call("PUT", retention_path(room), json={"days": 3}),
        ):
            validators.validate(expect(reply, 200), schema, cls=validators.OAS31Validator)
