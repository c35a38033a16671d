"""The bare Python relay: the ceiling for a Python WebSocket server (a `make bench` contender).

    python bench/relays/relay.py PORT

It speaks the subset of chatcore's WebSocket protocol the load generator uses, and nothing
else: no storage, no validation beyond parsing, no authorization beyond room membership.

- `{"type": "auth", "token": "USER_ID:ROOM,ROOM"}` -> `{"type": "ready", ...}`: the token *is*
  the user and the rooms they are in (the harness makes them up).
- `{"type": "send", "ref", "room_id", "body"}` -> the message, with the room's next seq, goes
  to every connection in the room (the sender's included) as `{"type": "message", ...}`, then
  `{"type": "ack", ...}` to the sender: chatcore's shapes, key for key.
- `{"type": "ping"}` -> `{"type": "pong"}`.

Fan-out uses `websockets.broadcast`: one encode, then frame and write per connection, which
is what chatcore does too.
"""

from __future__ import annotations

import asyncio
import itertools
import sys
import time
from collections import defaultdict

import orjson
from websockets.asyncio.server import ServerConnection, broadcast, serve
from websockets.exceptions import ConnectionClosed

rooms: defaultdict[str, set[ServerConnection]] = defaultdict(set)
seqs: defaultdict[str, int] = defaultdict(int)
ids = itertools.count(1)


async def handle(ws: ServerConnection) -> None:
    first = orjson.loads(await ws.recv(decode=False))
    user_id, _, room_list = str(first["token"]).partition(":")
    joined = [r for r in room_list.split(",") if r]
    for room_id in joined:
        rooms[room_id].add(ws)
    ready = {
        "type": "ready",
        "user": {"id": user_id, "username": user_id, "display_name": user_id},
        "session_id": str(next(ids)),
        "rooms": [{"room_id": r, "last_seq": seqs[r]} for r in joined],
    }
    await ws.send(orjson.dumps(ready).decode())
    try:
        async for raw in ws:
            frame = orjson.loads(raw)
            kind = frame.get("type")
            if kind == "send":
                room_id = frame["room_id"]
                members = rooms.get(room_id)
                if members is None or ws not in members:
                    error = {
                        "type": "error",
                        "ref": frame.get("ref"),
                        "code": "not_found",
                        "message": "This room does not exist or is not visible to you.",
                    }
                    await ws.send(orjson.dumps(error).decode())
                    continue
                seqs[room_id] += 1
                message = {
                    "id": str(next(ids)),
                    "room_id": room_id,
                    "seq": seqs[room_id],
                    "sender_id": user_id,
                    "ref": frame["ref"],
                    "kind": "text",
                    "body": frame.get("body", ""),
                    "ts": int(time.time() * 1000),
                    "deleted": False,
                }
                broadcast(members, orjson.dumps({"type": "message", "message": message}).decode())
                ack = {"type": "ack", "ref": frame["ref"], "message": message}
                await ws.send(orjson.dumps(ack).decode())
            elif kind == "ping":
                await ws.send('{"type":"pong"}')
    except ConnectionClosed:
        pass  # the load generator drops its connections at the end of a trial
    finally:
        for room_id in joined:
            rooms[room_id].discard(ws)


async def main(port: int) -> None:
    async with serve(handle, "127.0.0.1", port, compression=None, max_size=2**20) as server:
        await server.serve_forever()


if __name__ == "__main__":
    asyncio.run(main(int(sys.argv[1])))
