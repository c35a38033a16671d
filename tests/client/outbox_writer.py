"""A client program that queues messages and is then killed: the fault tests run it as a process.

    python outbox_writer.py SERVER_URL DATA_DIR ROOM_ID COUNT MODE SETTINGS_JSON

It opens the device store in DATA_DIR (logged in by the test beforehand) with the `[client]`
keys of SETTINGS_JSON, and prints one JSON line per step:

- MODE `offline` (the server unreachable): queue COUNT messages ("queued 000", "queued 001",
  ...), print `{"step": "queued", "refs": [...]}`.
- MODE `in-flight`: wait until the connection is ready, print `{"step": "ready"}`, read one line
  from stdin (the test has frozen the network meanwhile), queue the messages, wait until every
  one is on the wire with no ack (`transmitted`), print `{"step": "queued", "refs": [...]}`.

Then it waits to be killed; it never ends by itself.
"""

from __future__ import annotations

import asyncio
import json
import sys

from chatcore.client.app import Client


def say(step: str, **fields: object) -> None:
    print(json.dumps({"step": step, **fields}), flush=True)


async def all_transmitted(client: Client) -> bool:
    return all(entry.transmitted for entry in await client.outbox())


async def main(server_url: str, data_dir: str, room_id: str, count: int, mode: str) -> None:
    settings = json.loads(sys.argv[6])
    client = Client.for_server(server_url, data_dir, **settings)
    await client.start()
    if mode == "in-flight":
        async with asyncio.timeout(30):
            await client.wait_for_state("ready")
        say("ready")
        await asyncio.to_thread(sys.stdin.readline)
    refs = [(await client.send(room_id, f"queued {i:03}")).ref for i in range(count)]
    if mode == "in-flight":
        # Going on the wire is not an event (only the store knows): look until all are.
        async with asyncio.timeout(30):
            while not await all_transmitted(client):  # noqa: ASYNC110 (no event to wait on)
                await asyncio.sleep(0.02)
    say("queued", refs=refs)
    await asyncio.Event().wait()  # until SIGKILL


if __name__ == "__main__":
    url, folder, room, how_many, how = sys.argv[1:6]
    asyncio.run(main(url, folder, room, int(how_many), how))
