"""Why an I/O call failed, in a few words a person can act on: for one-line start-up errors.

Client libraries wrap the operating system's error in their own ("Error 111 connecting to
127.0.0.1:1. Connect call failed ('127.0.0.1', 1).", "nats: no servers available"); the words
that matter are the operating system's: "Connection refused".
"""

from __future__ import annotations

import os
import socket

__all__ = ["one_line", "reason"]

#: How asyncio words the errors of connect() and bind(): around the address, which the
#: message names already, and the operating system's words, which `reason` gives instead.
_ASYNCIO_WORDS = ("Connect call failed", "error while attempting to bind")


def reason(exc: BaseException) -> str:
    """The words of the first `OSError` along `exc` and its causes, without its errno and
    address ("Connection refused", "Name or service not known", "timed out"); else `exc` on
    one line."""
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        if isinstance(current, socket.gaierror) and current.strerror:
            return current.strerror  # its errno is the resolver's, not an errno.h one
        if isinstance(current, TimeoutError):
            return "timed out"
        if isinstance(current, OSError) and current.errno and current.errno > 0:
            words = current.strerror or ""
            if not words or words.startswith(_ASYNCIO_WORDS):
                words = os.strerror(current.errno)
            return words
        current = current.__cause__ or current.__context__
    return one_line(exc)


def one_line(exc: BaseException) -> str:
    """`exc`'s text with its lines and runs of spaces joined (its type's name when empty)."""
    return " ".join(str(exc).split()) or type(exc).__name__
