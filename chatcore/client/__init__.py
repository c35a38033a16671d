"""The client role: a chat app's engine (REST, WebSocket, outbox, catch-up), device store, media
cache.

`chatcore.Client` (`chatcore.client.app`) is the entry point; docs/client.md is its guide. This
package imports the kernel and `chatcore.protocol`, never `chatcore.server`. Its REST client
needs httpx, from the `client` extra (`EXTRA`); the rest comes with the base install.
"""

from chatcore.extras import Extra

EXTRA = Extra("client", "the client role", {"httpx": "httpx"})
