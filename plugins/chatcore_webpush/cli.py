"""`chatcore push ...`: commands of the Web Push plugin."""

from __future__ import annotations

import json

import click

__all__ = ["push"]

EXAMPLE_SUBJECT = "mailto:admin@example.com"


@click.group()
def push() -> None:
    """Push notifications (chatcore_webpush)."""


@push.command("vapid-keys")
@click.option("--json", "as_json", is_flag=True, help="Print the keys as one JSON object.")
def vapid_keys(as_json: bool) -> None:
    """Make a new VAPID key pair for Web Push: config lines and the browsers' public key.

    Keep the private key secret and the same on every node; a new key orphans every existing
    browser subscription (they were made with the old public key).
    """
    from chatcore_webpush import EXTRA  # keys are made with cryptography: the `webpush` extra

    EXTRA.require()
    from chatcore_webpush.vapid import generate_private_key, private_key_text, public_key_text

    key = generate_private_key()
    private, public = private_key_text(key), public_key_text(key)
    if as_json:
        data = {
            "vapid_private_key": private,
            "vapid_subject": EXAMPLE_SUBJECT,
            "application_server_key": public,
        }
        click.echo(json.dumps(data, indent=2))
        return
    click.echo("# Add to the server config (set vapid_subject to your own contact):")
    click.echo("[webpush]")
    click.echo(f'vapid_private_key = "{private}"')
    click.echo(f'vapid_subject = "{EXAMPLE_SUBJECT}"')
    click.echo("")
    click.echo("# Public key for browsers (PushManager.subscribe applicationServerKey):")
    click.echo(public)
