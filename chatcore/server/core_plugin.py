"""The core's own plugin: what every node serves whatever transports it has.

- `GET /api/v1/asyncapi.json`: the AsyncAPI document of the WebSocket protocol;
- `chatcore stickers import PATH`: load a sticker pack (a folder or a zip) into the service;
- at start-up, the sticker packs other plugins contribute through `chatcore_sticker_packs`.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import click

from chatcore.hookspecs import hookimpl

if TYPE_CHECKING:
    from chatcore.routes import Request, Route
    from chatcore.server.app import App

# The engine's modules are imported where used: every `chatcore` command (`--help` too) loads
# this plugin.


async def asyncapi_document(request: Request) -> dict[str, Any]:
    from chatcore.protocol import asyncapi

    return asyncapi.document(request.app)


@hookimpl
def chatcore_register_routes(app: App) -> list[Route]:
    from chatcore.routes import Route

    return [
        Route(
            "/asyncapi.json",
            asyncapi_document,
            auth=False,
            summary="The AsyncAPI document of the WebSocket protocol",
        )
    ]


@hookimpl
def chatcore_register_commands(cli: click.Group) -> None:
    cli.add_command(_stickers_group())


@hookimpl(trylast=True)
async def chatcore_startup(app: App) -> None:
    if app.media is None or not app.hook.chatcore_sticker_packs.get_hookimpls():
        return
    from chatcore.server.stickers import import_contributed_packs

    await import_contributed_packs(app)


def _stickers_group() -> click.Group:
    from chatcore.cli import with_app  # the CLI imports the app, which loads this plugin

    @click.group()
    def stickers() -> None:
        """Manage sticker packs."""

    @stickers.command("import")
    @click.argument("path", type=click.Path(exists=True))
    @click.option("--name", default=None, help="The pack's name (default: pack.json, else PATH).")
    @with_app()
    async def import_pack(app: App, path: str, name: str | None) -> None:
        """Import a sticker pack from a folder or a zip file (again: replace it)."""
        from chatcore.server.stickers import import_pack as do_import

        pack = await do_import(app, path, name)
        click.echo(f"imported pack {pack.id} ({pack.name}): {len(pack.stickers)} stickers")

    return stickers
