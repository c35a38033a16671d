"""The console's administration commands (docs/administration.md): `chatcore user promote`,
`demote`, `disable`, `enable`, `erase`, `reset-password`, `logins`, and `chatcore audit`.

Each command runs in this process through click's runner, on a SQLite database of its own;
logins are made, and the database checked, by an App on the same config, as a server node
would.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any, TypeVar

import pytest
from cli_support import node_config
from click.testing import CliRunner, Result

from chatcore.cli import build_cli
from chatcore.errors import ChatError, ErrorCode
from chatcore.server.app import App

PASSWORD = "correct horse battery"
T = TypeVar("T")


@pytest.fixture
def config(tmp_path: Path) -> Path:
    path = node_config(tmp_path)
    upgraded = run(path, "db", "upgrade")
    assert upgraded.exit_code == 0, upgraded.output
    for name in ("ann", "bob"):
        created = run(path, "user", "create", name, "--password-stdin", input=PASSWORD + "\n")
        assert created.exit_code == 0, created.output
    return path


def run(config: Path, *args: str, input: str | None = None) -> Result:
    return CliRunner().invoke(build_cli(str(config)), [*args, "--config", str(config)], input=input)


def with_app(config: Path, work: Callable[[App], Awaitable[T]]) -> T:
    """`work` on a started App of the config (its backends, no listening), as a node does."""

    async def go() -> T:
        app = App.from_config(str(config))
        await app.start(listen=False, migrate=False)
        try:
            return await work(app)
        finally:
            await app.stop()

    return asyncio.run(go())


def login(config: Path, name: str, password: str = PASSWORD) -> Any:
    """A TokenPair, or the ChatError the login answered."""

    async def work(app: App) -> Any:
        try:
            return await app.auth.login(name, password, None)
        except ChatError as exc:
            return exc

    return with_app(config, work)


def audit_lines(config: Path) -> list[str]:
    result = run(config, "audit")
    assert result.exit_code == 0, result.output
    return result.output.splitlines()


def one_error(result: Result) -> str:
    assert result.exit_code == 1, result.output
    lines = result.output.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), result.output
    assert "Traceback" not in result.output
    return lines[0]


def test_promote_and_demote_show_in_the_list_and_the_audit_log(config: Path) -> None:
    result = run(config, "user", "promote", "ANN")  # usernames match case-insensitively
    assert (result.exit_code, result.output) == (0, "ann is a server admin\n")
    listed = run(config, "user", "list").output.splitlines()
    assert [line.endswith("  admin") for line in listed] == [True, False]

    result = run(config, "user", "demote", "ann")
    assert (result.exit_code, result.output) == (0, "ann is no longer a server admin\n")
    assert not any(line.endswith("admin") for line in run(config, "user", "list").output.split())

    demote, promote = audit_lines(config)[:2]  # newest first
    assert "  console  user.demote  user " in demote and '"via":"console"' in demote
    assert "  console  user.promote  user " in promote


def test_disable_ends_the_logins_and_refuses_new_ones_until_enabled(config: Path) -> None:
    first, second = login(config, "ann"), login(config, "ann")
    others = login(config, "bob")
    listed = run(config, "user", "logins", "ann").output.splitlines()
    assert len(listed) == 2 and all(line.endswith("live") for line in listed)

    result = run(config, "user", "disable", "ann")
    assert (result.exit_code, result.output) == (0, "ann is disabled; their logins have ended\n")
    listed = run(config, "user", "logins", "ann").output.splitlines()
    assert len(listed) == 2 and all("  ended " in line for line in listed)
    refused = login(config, "ann")
    assert isinstance(refused, ChatError) and refused.code is ErrorCode.FORBIDDEN
    assert refused.message == "This account is disabled; ask the server's admins."
    wrong = login(config, "ann", "not the password")  # a guesser learns nothing
    assert isinstance(wrong, ChatError) and wrong.code is ErrorCode.UNAUTHORIZED

    async def refresh(app: App) -> Any:
        try:
            return await app.auth.refresh(first.refresh_token)
        except ChatError as exc:
            return exc

    assert with_app(config, refresh).code is ErrorCode.UNAUTHORIZED
    assert run(config, "user", "list").output.splitlines()[0].endswith("  disabled")
    assert not run(config, "user", "logins", "bob").output.count("ended")  # bob untouched
    del second, others

    result = run(config, "user", "enable", "ann")
    assert (result.exit_code, result.output) == (0, "ann is enabled\n")
    assert not isinstance(login(config, "ann"), ChatError)
    actions = [line.split("  ")[3] for line in audit_lines(config)[:2]]
    assert actions == ["user.enable", "user.disable"]


def test_logins_end_one_or_all(config: Path) -> None:
    assert run(config, "user", "logins", "bob").output == "bob has no logins\n"
    first, second, third = (login(config, "bob") for _ in range(3))
    del first, second, third
    ids = [line.split()[0] for line in run(config, "user", "logins", "bob").output.splitlines()]
    assert len(ids) == 3

    result = run(config, "user", "logins", "bob", "--end", ids[0])
    assert (result.exit_code, result.output) == (0, "ended 1 logins of bob\n")
    states = run(config, "user", "logins", "bob").output.splitlines()
    assert ["live" not in states[0], "live" in states[1], "live" in states[2]] == [True] * 3

    assert "This login does not exist" in one_error(
        run(config, "user", "logins", "ann", "--end", ids[1])
    )
    result = run(config, "user", "logins", "bob", "--end-all")
    assert (result.exit_code, result.output) == (0, "ended 2 logins of bob\n")
    assert not any(
        line.endswith("live") for line in run(config, "user", "logins", "bob").output.splitlines()
    )
    assert "not both" in one_error(run(config, "user", "logins", "bob", "--end", "x", "--end-all"))


def test_reset_password(config: Path) -> None:
    result = run(
        config, "user", "reset-password", "bob", "--password-stdin", input="a new password\n"
    )
    assert (result.exit_code, result.output) == (0, "the password of bob is changed\n")
    assert isinstance(login(config, "bob"), ChatError)  # the old one no longer works
    assert not isinstance(login(config, "bob", "a new password"), ChatError)
    short = run(config, "user", "reset-password", "bob", "--password-stdin", input="short\n")
    assert "8 to 1024" in one_error(short)
    assert "user.reset_password" in audit_lines(config)[0]


def test_erase_asks_first_and_frees_the_username(config: Path) -> None:
    async def setup(app: App) -> tuple[str, str, str]:
        ann = await app.storage.get_user_by_username("ann")
        bob = await app.storage.get_user_by_username("bob")
        assert ann is not None and bob is not None
        room = await app.storage.create_group_room(ann.id, "plans", [bob.id], now_ts=1)
        return ann.id, bob.id, room.id

    ann_id, bob_id, room_id = with_app(config, setup)
    declined = run(config, "user", "erase", "ann", "--messages", "remove", input="n\n")
    assert "nothing erased" in declined.output and declined.exit_code == 1
    assert "ann" in run(config, "user", "list").output

    result = run(config, "user", "erase", "ann", "--messages", "remove", "--yes")
    assert result.exit_code == 0, result.output
    assert result.output == f"erased {ann_id}: left 1 rooms, 0 messages removed\n"
    assert "ann" not in run(config, "user", "list").output.replace(ann_id, "")
    assert "no user named 'ann'" in one_error(run(config, "user", "erase", "ann", "--yes"))

    async def after(app: App) -> None:
        assert await app.storage.get_user(ann_id) is None
        tomb = await app.storage.get_tombstone(ann_id)
        assert tomb is not None and tomb.wire() == {
            "id": ann_id,
            "username": "",
            "display_name": "Deleted user",
            "deleted": True,
        }
        room = await app.storage.get_room(room_id)
        assert room is not None and room.member_ids == (bob_id,) and room.owner_id == bob_id

    with_app(config, after)
    again = run(config, "user", "create", "ann", "--password-stdin", input=PASSWORD + "\n")
    assert again.exit_code == 0, again.output  # the username is free again
    entry = audit_lines(config)[0]
    assert "  user.erase  user " + ann_id in entry
    assert '"messages":"remove"' in entry and "ann" not in entry.replace(ann_id, "")


def test_unknown_users_and_self_checks(config: Path) -> None:
    for command in ("promote", "demote", "disable", "enable", "logins"):
        assert one_error(run(config, "user", command, "nobody")) == "error: no user named 'nobody'"
    # The console is nobody's self: it may disable an admin, and demote the last one.
    assert run(config, "user", "promote", "ann").exit_code == 0
    assert run(config, "user", "disable", "ann").exit_code == 0
    assert run(config, "user", "demote", "ann").exit_code == 0


def test_audit_limit_and_paging(config: Path) -> None:
    assert run(config, "audit").output == "the audit log has no entries\n"
    for _ in range(3):
        assert run(config, "user", "promote", "bob").exit_code == 0
    newest = run(config, "audit", "--limit", "2").output.splitlines()
    assert len(newest) == 2
    older = run(config, "audit", "--before", newest[-1].split()[0]).output.splitlines()
    assert len(older) == 1 and older[0] not in newest
    oldest = older[0].split()[0]
    assert run(config, "audit", "--before", oldest).output == (
        "the audit log has no entries before that one\n"
    )
