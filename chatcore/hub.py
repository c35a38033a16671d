"""The live WebSocket sessions of this node, and the events that reach them from any node."""

from __future__ import annotations

import logging
import time
from collections import OrderedDict, defaultdict
from typing import TYPE_CHECKING

import orjson

if TYPE_CHECKING:
    from chatcore.app import App
    from chatcore.interfaces import Subscription
    from chatcore.session import Session

log = logging.getLogger("chatcore.hub")

#: Broker channel announcing ended logins: `{"login_id": ...}`. Every node closes that login's
#: sessions with 4401 and stops accepting its access tokens.
LOGINS_CHANNEL = "chatcore.logins"

CLOSE_LOGIN_ENDED = 4401

#: How long, and how many, ended logins a node remembers to catch a session that was being
#: authenticated while its login ended (its token verified just before the news arrived).
RECENT_LOGINS_SECONDS = 300.0
RECENT_LOGINS_MAX = 10_000


def login_ended_event(login_id: str) -> bytes:
    return orjson.dumps({"login_id": login_id})


def parse_login_ended(data: bytes) -> str | None:
    """The login id of a `login_ended_event`, or None (logged) when the event is malformed."""
    try:
        login_id = orjson.loads(data)["login_id"]
    except (orjson.JSONDecodeError, KeyError, TypeError):
        login_id = None
    if isinstance(login_id, str) and login_id:
        return login_id
    log.warning("ignoring a malformed event on %s", LOGINS_CHANNEL)
    return None


class Hub:
    """Sessions by user and by login. Transports add and remove sessions; the hub routes."""

    def __init__(self, app: App) -> None:
        self.app = app
        self.by_user: dict[str, set[Session]] = defaultdict(set)
        self.by_login: dict[str, set[Session]] = defaultdict(set)
        self._subscription: Subscription | None = None
        self._recently_ended: OrderedDict[str, float] = OrderedDict()

    async def start(self) -> None:
        self._subscription = await self.app.broker.subscribe(LOGINS_CHANNEL, self._on_login_event)

    async def stop(self) -> None:
        if self._subscription is not None:
            await self._subscription.unsubscribe()
            self._subscription = None

    def add(self, session: Session) -> None:
        identity = session.identity
        assert identity is not None, "only authenticated sessions join the hub"
        self.by_user[identity.user_id].add(session)
        self.by_login[identity.login_id].add(session)

    def remove(self, session: Session) -> None:
        identity = session.identity
        if identity is None:
            return
        for index, key in ((self.by_user, identity.user_id), (self.by_login, identity.login_id)):
            sessions = index.get(key)
            if sessions is not None:
                sessions.discard(session)
                if not sessions:
                    del index[key]

    def login_ended_recently(self, login_id: str) -> bool:
        """True when this node heard within `RECENT_LOGINS_SECONDS` that the login ended."""
        self._forget_old(time.monotonic())
        return login_id in self._recently_ended

    def _forget_old(self, now: float) -> None:
        recent = self._recently_ended
        while recent and (
            len(recent) > RECENT_LOGINS_MAX
            or next(iter(recent.values())) < now - RECENT_LOGINS_SECONDS
        ):
            recent.popitem(last=False)

    def is_online(self, user_id: str) -> bool:
        return bool(self.by_user.get(user_id))

    @property
    def session_count(self) -> int:
        return sum(len(s) for s in self.by_user.values())

    def _on_login_event(self, data: bytes) -> None:
        login_id = parse_login_ended(data)
        if login_id is None:
            return
        now = time.monotonic()
        self._recently_ended.pop(login_id, None)
        self._recently_ended[login_id] = now
        self._forget_old(now)
        for session in list(self.by_login.get(login_id, ())):
            session.close(CLOSE_LOGIN_ENDED, "login ended")
