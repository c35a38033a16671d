"""A complete third-party plugin in one module.

Run a server with it (from the repository root):

    PYTHONPATH=examples CHATCORE_PLUGINS='["hello_plugin"]' .venv/bin/chatcore serve \
        --config config/server.toml

or name it in the config: `plugins = ["hello_plugin"]`. It adds a config section `[hello]`, a
REST endpoint `GET /api/v1/hello`, a command `chatcore hello-stats`, and greets every new user
in the log.
"""

from __future__ import annotations

import logging
from typing import Any

import click

from chatcore import hookimpl
from chatcore.cli import with_app
from chatcore.models import User
from chatcore.routes import Request, Route
from chatcore.server.app import App
from chatcore.settings import Section

log = logging.getLogger("hello_plugin")


class HelloSettings(Section):
    """`[hello]`: unknown keys are rejected, like every section."""

    greeting: str = "Hello"


@hookimpl
def chatcore_settings_models() -> dict[str, Any]:
    return {"hello": HelloSettings}


@hookimpl
async def chatcore_user_registered(app: App, user: User) -> None:
    greeting = app.settings.section("hello", HelloSettings).greeting
    log.info("%s, %s!", greeting, user.display_name)


async def hello(request: Request) -> dict[str, Any]:
    assert request.identity is not None  # routes require a valid access token by default
    user = await request.app.storage.get_user(request.identity.user_id)
    greeting = request.app.settings.section("hello", HelloSettings).greeting
    return {"message": f"{greeting}, {user.display_name if user else 'stranger'}!"}


@hookimpl
def chatcore_register_routes(app: App) -> list[Route]:
    return [Route("/hello", hello, summary="Greet the signed-in user")]


@hookimpl
def chatcore_register_commands(cli: click.Group) -> None:
    @cli.command("hello-stats")
    @with_app()
    async def hello_stats(app: App) -> None:
        """Count the users."""
        users = await app.storage.list_users(10_000)
        click.echo(f"{len(users)} users to greet")
