"""Embed a chatcore node in your own asyncio program, with a plugin defined right here.

    .venv/bin/python examples/embed.py

It starts a node on free ports with its state in a temporary folder, registers a user through
the REST API like any client would, shows what the plugin saw, and stops the node.
"""

from __future__ import annotations

import asyncio
import tempfile
from pathlib import Path

import httpx

from chatcore import App, hookimpl
from chatcore.models import User


class Audit:
    """A plugin can be any object with hook methods; here it records new users."""

    def __init__(self) -> None:
        self.registered: list[str] = []

    @hookimpl
    def chatcore_user_registered(self, app: App, user: User) -> None:
        self.registered.append(user.username)


async def main() -> None:
    audit = Audit()
    with tempfile.TemporaryDirectory() as folder:
        data = Path(folder)
        app = App.from_config(
            None,  # no file: defaults plus these overrides
            overrides={
                "server": {"port": 0},  # 0: any free port; the transports report the real one
                "websocket": {"port": 0},
                "storage": {"url": f"sqlite+aiosqlite:///{data / 'chat.db'}"},
                "media": {"url": f"file://{data / 'media'}"},
                "auth": {"secret_file": str(data / "secret")},
            },
            extra_plugins=[audit],
        )
        async with app:
            rest = next(t.url for t in app.transports if t.url.startswith("http"))
            print(f"REST on {rest}, WebSocket on {app.ws_url}")
            async with httpx.AsyncClient(base_url=rest + "/api/v1") as client:
                reply = await client.post(
                    "/auth/register", json={"username": "ada", "password": "analytical engine"}
                )
                print("register:", reply.status_code, reply.json())
                info = (await client.get("/info")).json()
                print("info ws_url:", info["ws_url"])
        print("the plugin saw:", audit.registered)


if __name__ == "__main__":
    asyncio.run(main())
