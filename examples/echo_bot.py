"""A bot with `chatcore_message_stored`: it answers every message in the rooms it is in.

    plugins = ["echo_bot"]             # with examples/ on PYTHONPATH

    [echo_bot]
    username = "echo"

At start-up the bot's account is created if missing. Open a direct room with the user `echo`
and talk to it. The observer runs after the message is committed and delivered, so a slow or
failing bot never delays anyone's `ack`. Its reply uses the ref `echo:<message id>`, so a
retried observer can never answer twice.
"""

from __future__ import annotations

import logging
import secrets
from typing import Any

from chatcore import ChatError, hookimpl
from chatcore.models import Message
from chatcore.server import messages
from chatcore.server.app import App
from chatcore.settings import Section
from chatcore.state import StateKey

log = logging.getLogger("echo_bot")

#: The bot's user id, known once `chatcore_startup` has found or made its account.
BOT_ID = StateKey[str]("echo_bot.user_id")


class EchoBotSettings(Section):
    username: str = "echo"


@hookimpl
def chatcore_settings_models() -> dict[str, Any]:
    return {"echo_bot": EchoBotSettings}


@hookimpl
async def chatcore_startup(app: App) -> None:
    username = app.settings.section("echo_bot", EchoBotSettings).username
    found = await app.storage.get_credentials(username)
    if found is None:
        # Nobody logs in as the bot: a random password nobody knows.
        bot = await app.auth.register(username, secrets.token_urlsafe(32), "Echo bot")
    else:
        bot = found.user
    app.state[BOT_ID] = bot.id


@hookimpl
async def chatcore_message_stored(app: App, message: Message) -> None:
    bot_id = app.state.get(BOT_ID)
    if bot_id is None or message.sender_id == bot_id or message.kind != "text":
        return
    room = await app.storage.get_room(message.room_id)
    if room is None or bot_id not in room.member_ids:
        return
    try:
        await messages.send(
            app,
            bot_id,
            message.room_id,
            {"ref": f"echo:{message.id}", "body": f"echo: {message.body}", "reply_to": message.id},
        )
    except ChatError as exc:
        log.warning("echo bot could not answer in %s: %s", message.room_id, exc.message)
