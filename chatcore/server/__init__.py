"""The server role: the `App` that assembles a node from its plugins, and the server's services
(accounts, profile, contacts and blocks, rooms, messages and their writer, media, stickers,
push devices), each a module of functions over the `Storage` interface.

`realtime/` holds the live side (sessions, frame handlers, the hub and its fan-out, cluster
presence, per-room ordering); `push/` the pushes to offline devices (routing, user rules, the
dispatcher, the endpoint client and its SSRF checks). It may import the kernel and
`chatcore.protocol`; never a concrete backend (plugins provide those), never `chatcore.client`.
"""
