"""The client role: a chat app's engine (REST, WebSocket, outbox, catch-up), device store, media
cache.

`chatcore.Client` (`chatcore.client.app`) is the entry point. This package imports the kernel
and `chatcore.protocol`, never `chatcore.server`.
"""
