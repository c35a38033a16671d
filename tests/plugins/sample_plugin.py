"""A third-party style plugin used by the tests: a config section, a REST route, a CLI command
and a startup hook, loaded by module name from a config's `plugins` list."""

from __future__ import annotations

from typing import Any

import click

from chatcore import hookimpl
from chatcore.cli import with_app
from chatcore.routes import Request, Route
from chatcore.server.app import App
from chatcore.settings import Section
from chatcore.state import StateKey

STARTED = StateKey[bool]("sample.started")


class SampleSettings(Section):
    greeting: str = "hello"


@hookimpl
def chatcore_settings_models() -> dict[str, Any]:
    return {"sample": SampleSettings}


@hookimpl
async def chatcore_startup(app: App) -> None:
    app.state[STARTED] = True


async def hello(request: Request) -> dict[str, Any]:
    app = request.app
    assert request.identity is not None
    return {
        "greeting": app.settings.section("sample", SampleSettings).greeting,
        "user_id": request.identity.user_id,
        "started": app.state.get(STARTED, False),
    }


@hookimpl
def chatcore_register_routes(app: App) -> list[Route]:
    return [Route("/sample/hello", hello, summary="Greet the caller")]


@hookimpl
def chatcore_register_commands(cli: click.Group) -> None:
    @cli.command("sample-hello")
    @with_app(start=False)
    def sample_hello(app: App) -> None:
        """Print the configured greeting."""
        click.echo(app.settings.section("sample", SampleSettings).greeting)
