"""Embed a chatcore node in your own asyncio program, with a plugin defined right here.

    .venv/bin/python examples/embed.py

It starts a node on free ports with its state in a temporary folder, registers a user through
the REST API like any client would, then serves until Ctrl-C (or SIGTERM), stops the node
cleanly and says what the plugin saw.
"""

from __future__ import annotations

import asyncio
import signal
import tempfile

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


def stop_on_signals() -> asyncio.Event:
    """An event that Ctrl-C or SIGTERM sets: handled so, neither interrupts with a traceback."""
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    return stop


async def main() -> None:
    stop = stop_on_signals()  # first: a Ctrl-C during start-up stops the node cleanly too
    audit = Audit()
    with tempfile.TemporaryDirectory() as data:
        app = App.from_config(
            None,  # no file: the built-in defaults plus these overrides
            overrides={
                "server": {"port": 0},  # 0: any free port; app.rest_url has the real one
                "websocket": {"port": 0},  # and app.ws_url
                "storage": {"url": f"sqlite+aiosqlite:///{data}/chat.db"},
                "media": {"url": f"file://{data}/media"},
                "auth": {"secret_file": f"{data}/auth_secret"},
            },
            extra_plugins=[audit],
        )
        async with app:  # backends started, transports listening
            print(f"REST on {app.rest_url}, WebSocket on {app.ws_url}")
            async with httpx.AsyncClient(base_url=f"{app.rest_url}/api/v1") as client:
                reply = await client.post(
                    "/auth/register", json={"username": "ada", "password": "analytical engine"}
                )
                print("register:", reply.status_code, reply.json())
                info = (await client.get("/info")).json()
                print("info ws_url:", info["ws_url"])
            print("serving; press Ctrl-C to stop", flush=True)
            await stop.wait()  # your program goes on here
        print("the plugin saw:", audit.registered)


if __name__ == "__main__":
    asyncio.run(main())
