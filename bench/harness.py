"""`make bench`: chatcore against a bare Python relay and a Node relay, in the same run.

    .venv/bin/python bench/harness.py [--trials 3] [--seconds 2] [--quick] [--no-postgres]

Every contender is a real server process on loopback, pinned to core 0; the load generator
(bench/node/loadgen.mjs, Node's `ws`) is pinned to core 1, since cross-core wake-ups dominate
latency on a 2-core machine. Trials of the contenders are interleaved (A B C A B C ...) and each
ratio is the median of the per-trial ratios, so a slow moment of the machine hits everyone.

Contenders:
- chatcore: as users run it (SQLite on a file, durable acks, default plugins; the per-session
  flood limit is raised, since one benchmark session sends thousands of frames a second);
- relay-py: bench/relays/relay.py, a bare `websockets` relay (parse, wrap, broadcast; no
  storage): the ceiling for Python, and the baseline of every ratio;
- relay-node: bench/node/relay.mjs, the same relay on Node's `ws`;
- chatcore with storage off (bench/volatile_storage.py), and chatcore on PostgreSQL, for (d).

Scenarios (see docs/performance.md for the targets): (a) 1:1 relay at saturation, and latency at
a fixed 2,000 msg/s with 1,000 idle authenticated connections held; (b) fan-out in rooms of 100
and 1,000 members; (c) memory per idle authenticated connection and handshake CPU; (d) durable
sends with storage on and off; (e) catch-up of 10,000 missed messages.

The table is printed and saved as bench/results/<time>.md. A scenario where the load generator
used more than 90% of its core is flagged: there the figure may be the generator's limit.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import datetime as dt
import json
import os
import platform
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import httpx

from chatcore.testing.server import ServerProcess, free_port, server_config

BENCH = Path(__file__).resolve().parent
NODE_DIR = BENCH / "node"
RESULTS = BENCH / "results"
SERVER_CORE, LOAD_CORE = 0, 1
POSTGRES_URL = "postgresql+asyncpg://postgres@127.0.0.1:5432/test"
PASSWORD = "bench password 1"
SATURATED = 0.9  # load generator CPU share above which a figure is flagged


# --- sizes -------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Sizes:
    trials: int = 3
    warmup: float = 0.5
    seconds: float = 2.0
    pairs: int = 20  # 1:1 senders, each in its own direct room with its own receiver
    window: int = 8  # incomplete sends per sender at saturation
    rate: int = 2000  # msg/s of the fixed-rate latency run
    idle: int = 1000  # idle authenticated connections held during it
    fanout: tuple[int, ...] = (100, 1000)
    fanout_senders: int = 4  # members of the room who send (each with `fanout_window`)
    fanout_window: int = 4
    catchup: int = 10_000

    @property
    def members(self) -> int:
        return max(self.idle, *self.fanout)


QUICK = Sizes(trials=1, warmup=0.2, seconds=0.5, pairs=4, idle=20, fanout=(10, 20), catchup=200)


# --- processes ---------------------------------------------------------------------------------


def pin(pid: int, core: int) -> None:
    """Pin every thread of `pid` (threads made later inherit it)."""
    with contextlib.suppress(OSError):
        for tid in os.listdir(f"/proc/{pid}/task"):
            with contextlib.suppress(OSError):
                os.sched_setaffinity(int(tid), {core})


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process, all its threads (10 ms resolution)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def rss_bytes(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
    raise RuntimeError("no VmRSS")


def wait_port(port: int, process: subprocess.Popen[bytes], timeout: float = 15) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"relay exited with {process.returncode}")
        with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), 0.2):
            return
        time.sleep(0.02)  # polling a process we started; bounded by the deadline
    raise TimeoutError(f"nothing listens on {port}")


# --- contenders --------------------------------------------------------------------------------


@dataclass
class Contender:
    """A running server and how the load generator reaches its users and rooms."""

    name: str
    url: str
    pid: int
    tokens: dict[str, str] = field(default_factory=dict)  # user name -> auth token
    rooms: dict[str, str] = field(default_factory=dict)  # room name -> room id
    stop: Callable[[], None] = lambda: None
    log: Path | None = None  # the server's log, searched for errors at the end


class World:
    """The users and rooms every contender gets (names; each contender maps them to ids).

    `m0..m{N-1}`: members of the fan-out rooms (`fan100`: the first 100) and the idle
    connections; `a{k}`/`b{k}`: the 1:1 pairs in room `pair{k}`; `c0`/`c1` in room `catchup`.
    """

    def __init__(self, sizes: Sizes) -> None:
        self.members = [f"m{i}" for i in range(sizes.members)]
        self.pairs = [(f"a{k}", f"b{k}") for k in range(sizes.pairs)]
        self.fanout = {f"fan{n}": self.members[:n] for n in sizes.fanout}
        self.users = [*self.members, *(u for pair in self.pairs for u in pair), "c0", "c1"]
        self.direct = {f"pair{k}": pair for k, pair in enumerate(self.pairs)}
        self.direct["catchup"] = ("c0", "c1")

    def rooms_of(self, user: str) -> list[str]:
        groups = [name for name, members in self.fanout.items() if user in members]
        return groups + [name for name, pair in self.direct.items() if user in pair]


def start_relay(name: str, world: World) -> Contender:
    port = free_port()
    if name == "relay-py":
        command = [sys.executable, str(BENCH / "relays" / "relay.py"), str(port)]
    else:
        command = ["node", str(NODE_DIR / "relay.mjs"), str(port)]
    process = subprocess.Popen(command, stdout=subprocess.DEVNULL)
    wait_port(port, process)
    tokens = {u: f"{u}:{','.join(world.rooms_of(u))}" for u in world.users}
    rooms = {r: r for r in [*world.fanout, *world.direct]}

    def stop() -> None:
        process.terminate()
        process.wait(10)

    return Contender(name, f"ws://127.0.0.1:{port}", process.pid, tokens, rooms, stop)


async def populate(api: str, world: World) -> tuple[dict[str, str], dict[str, str]]:
    """Register and log in every user, create every room; (tokens, room ids)."""
    run = uuid.uuid4().hex[:6]
    limits = httpx.Limits(max_connections=8)
    async with httpx.AsyncClient(base_url=api, limits=limits, timeout=60) as http:
        semaphore = asyncio.Semaphore(8)

        async def account(user: str) -> tuple[str, str, str]:
            credentials = {"username": f"{user}_{run}", "password": PASSWORD}
            async with semaphore:
                (await http.post("/auth/register", json=credentials)).raise_for_status()
                reply = await http.post("/auth/login", json=credentials)
            reply.raise_for_status()
            body = reply.json()
            return user, body["user"]["id"], body["access_token"]

        accounts = await asyncio.gather(*(account(u) for u in world.users))
        ids = {user: user_id for user, user_id, _ in accounts}
        tokens = {user: token for user, _, token in accounts}

        async def room(name: str, body: dict[str, Any], owner: str) -> tuple[str, str]:
            headers = {"Authorization": f"Bearer {tokens[owner]}"}
            async with semaphore:
                reply = await http.post("/rooms", json=body, headers=headers)
            reply.raise_for_status()
            return name, reply.json()["id"]

        made = [
            room(
                name, {"kind": "group", "name": name, "member_ids": [ids[m] for m in ms[1:]]}, ms[0]
            )
            for name, ms in world.fanout.items()
        ] + [
            room(name, {"kind": "direct", "user_id": ids[b]}, a)
            for name, (a, b) in world.direct.items()
        ]
        rooms = dict(await asyncio.gather(*made))
    return tokens, rooms


def start_chatcore(
    name: str, folder: Path, storage: dict[str, Any], *, volatile: bool = False
) -> ServerProcess:
    overrides: dict[str, Any] = {
        "storage": storage,
        # One benchmark session sends thousands of frames a second; users' default is 20.
        "websocket": {"rate_per_second": 1e9, "rate_burst": 1e9},
        "auth": {"access_token_ttl": 3600, "refresh_token_ttl": 7200},
        "logging": {"level": "WARNING"},
    }
    env = {}
    if volatile:
        overrides["plugins"] = ["volatile_storage"]
        env["PYTHONPATH"] = os.pathsep.join([str(BENCH), os.environ.get("PYTHONPATH", "")])
    folder.mkdir(parents=True, exist_ok=True)
    config = server_config(folder, overrides)
    return ServerProcess(folder / name, config, env)


def chatcore_contenders(
    names: list[str], folder: Path, storage: dict[str, Any], world: World
) -> list[Contender]:
    """chatcore servers sharing one database (and so one set of users and rooms).

    The first name runs as users run it, the others (if any) with storage off; they share the
    auth secret, so a token works on each.
    """
    contenders = []
    servers = []
    for i, name in enumerate(names):
        (folder / name).mkdir(parents=True, exist_ok=True)
        server = start_chatcore(name, folder, storage, volatile=i > 0).start(timeout=60)
        servers.append(server)
    tokens, rooms = asyncio.run(populate(servers[0].api, world))
    for name, server in zip(names, servers, strict=True):
        assert server.process is not None
        contenders.append(
            Contender(
                name, server.ws_url, server.process.pid, tokens, rooms, server.stop, server.log_path
            )
        )
    return contenders


# --- running the load generator ----------------------------------------------------------------


class LoadGen:
    """One run of bench/node/loadgen.mjs, pinned to the load core, driven phase by phase."""

    def __init__(self, config: dict[str, Any], folder: Path) -> None:
        path = folder / f"loadgen-{uuid.uuid4().hex[:8]}.json"
        path.write_text(json.dumps(config))
        self.process = subprocess.Popen(
            ["taskset", "-c", str(LOAD_CORE), "node", str(NODE_DIR / "loadgen.mjs"), str(path)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
        )

    def expect(self, event: str) -> dict[str, Any]:
        assert self.process.stdout is not None
        line = self.process.stdout.readline()
        if not line:
            raise RuntimeError(f"the load generator ended before {event!r}")
        reply: dict[str, Any] = json.loads(line)
        if reply["event"] != event:
            raise RuntimeError(f"the load generator said {reply} (waiting for {event!r})")
        return reply

    def go(self) -> None:
        assert self.process.stdin is not None
        self.process.stdin.write(b"go\n")
        self.process.stdin.flush()

    def finish(self) -> None:
        self.process.wait(30)


def load_trial(
    contender: Contender,
    folder: Path,
    sizes: Sizes,
    *,
    senders: list[tuple[str, str]],
    receivers: list[str],
    expect: int,
    window: int,
    rate: int = 0,
    idle: list[str] | None = None,
) -> dict[str, Any]:
    """One measured run; the result adds server CPU per delivery, idle memory and handshake."""
    config = {
        "mode": "load",
        "url": contender.url,
        "idle": [contender.tokens[u] for u in idle or []],
        "senders": [{"token": contender.tokens[u], "room": contender.rooms[r]} for u, r in senders],
        "receivers": [contender.tokens[u] for u in receivers],
        "expect": expect,
        "window": window,
        "rate": rate,
        "warmup": sizes.warmup,
        "duration": sizes.seconds,
    }
    pid = contender.pid
    rss0, cpu0 = rss_bytes(pid), cpu_seconds(pid)
    gen = LoadGen(config, folder)
    gen.expect("idle")
    rss1, cpu1 = rss_bytes(pid), cpu_seconds(pid)
    gen.go()
    gen.expect("active")
    gen.go()
    gen.expect("measure")
    cpu2 = cpu_seconds(pid)
    result = gen.expect("result")
    cpu3 = cpu_seconds(pid)
    gen.finish()
    deliveries = result["deliveries_per_s"] * result["seconds"]
    result["server_cpu"] = (cpu3 - cpu2) / result["seconds"]
    result["cpu_us_per_delivery"] = (cpu3 - cpu2) * 1e6 / deliveries if deliveries else None
    if idle:
        result["idle_bytes_each"] = (rss1 - rss0) / len(idle)
        result["handshake_cpu_us"] = (cpu1 - cpu0) * 1e6 / len(idle)
    return result


def one_shot(config: dict[str, Any], folder: Path) -> dict[str, Any]:
    gen = LoadGen(config, folder)
    result = gen.expect("result")
    gen.finish()
    return result


# --- scenarios ---------------------------------------------------------------------------------

Trial = Callable[[Contender], dict[str, Any]]


def interleave(
    contenders: list[Contender], trial: Trial, trials: int
) -> dict[str, list[dict[str, Any]]]:
    """Run `trial` A B C A B C ...; every contender's results in trial order."""
    results: dict[str, list[dict[str, Any]]] = {c.name: [] for c in contenders}
    for _ in range(trials):
        for contender in contenders:
            results[contender.name].append(trial(contender))
    return results


@dataclass
class Row:
    scenario: str
    metric: str
    values: dict[str, float | None]  # contender -> median
    ratio: float | None = None  # chatcore / baseline, median of per-trial ratios
    target: str = ""
    flags: list[str] = field(default_factory=list)


def median(values: list[float | None]) -> float | None:
    present = [v for v in values if v is not None]
    return statistics.median(present) if present else None


def summarize(
    scenario: str,
    metric: str,
    results: dict[str, list[dict[str, Any]]],
    key: str,
    subject: str = "chatcore",
    baseline: str | None = "relay-py",
    target: str = "",
    flag: bool = True,
) -> Row:
    """One table row: the median of `key` per contender, the median ratio subject/baseline,
    and (with `flag`) the runs where the load generator saturated, errors came or sends lagged
    behind a fixed pace."""
    values = {name: median([r.get(key) for r in runs]) for name, runs in results.items()}
    ratio = None
    if baseline is not None and baseline in results:
        pairs = zip(results[subject], results[baseline], strict=True)
        ratio = median([a[key] / b[key] if a.get(key) and b.get(key) else None for a, b in pairs])
    if not flag:
        return Row(scenario, metric, values, ratio, target)
    flags = sorted(
        {
            f"{name}: load generator at {r['loadgen_cpu']:.0%} of its core"
            for name, runs in results.items()
            for r in runs
            if r.get("loadgen_cpu", 0) > SATURATED
        }
        | {
            f"{name}: {r['errors']} errors, e.g. {r['first_error']}"
            for name, runs in results.items()
            for r in runs
            if r.get("errors")
        }
        | {
            f"{name}: {r['behind']} sends behind the {metric} pace"
            for name, runs in results.items()
            for r in runs
            if r.get("behind")
        }
    )
    return Row(scenario, metric, values, ratio, target, flags)


def run_all(sizes: Sizes, postgres: bool, folder: Path) -> tuple[list[Row], list[str]]:
    world = World(sizes)
    notes: list[str] = []
    os.sched_setaffinity(0, {SERVER_CORE})  # servers inherit the server core
    contenders: list[Contender] = []
    try:
        t0 = time.monotonic()
        main = chatcore_contenders(
            ["chatcore", "chatcore-storage-off"],
            folder / "sqlite",
            {"url": f"sqlite+aiosqlite:///{folder / 'sqlite' / 'chat.db'}"},
            world,
        )
        contenders += main
        contenders += [start_relay("relay-py", world), start_relay("relay-node", world)]
        pg: list[Contender] = []
        if postgres:
            schema = f"bench_{uuid.uuid4().hex[:8]}"
            pg = chatcore_contenders(
                ["chatcore-pg", "chatcore-pg-storage-off"],
                folder / "pg",
                {"url": POSTGRES_URL, "schema": schema},
                world,
            )
            contenders += pg
        notes.append(
            f"setup (servers, {len(world.users)} users per database): {time.monotonic() - t0:.1f} s"
        )
        for contender in contenders:
            pin(contender.pid, SERVER_CORE)
        os.sched_setaffinity(0, {LOAD_CORE})
        by_name = {c.name: c for c in contenders}
        trio = [by_name[n] for n in ("chatcore", "relay-py", "relay-node")]
        rows = scenarios(sizes, world, trio, by_name, folder)
        notes += logged_errors(contenders)
    finally:
        for contender in contenders:
            with contextlib.suppress(Exception):
                contender.stop()
    return rows, notes


def logged_errors(contenders: list[Contender]) -> list[str]:
    """The first error line each server logged (a benchmark of a failing server means little)."""
    notes = []
    for contender in contenders:
        if contender.log is None or not contender.log.exists():
            continue
        lines = contender.log.read_text(errors="replace").splitlines()
        errors = [line for line in lines if "ERROR" in line or "Traceback" in line]
        if errors:
            notes.append(f"{contender.name} logged {len(errors)} errors, first: {errors[0]}")
    return notes


def scenarios(
    sizes: Sizes, world: World, trio: list[Contender], by_name: dict[str, Contender], folder: Path
) -> list[Row]:
    rows: list[Row] = []
    pair_senders = [(a, f"pair{k}") for k, (a, _) in enumerate(world.pairs)]
    pair_receivers = [b for _, b in world.pairs]

    def pairs(contender: Contender, rate: int = 0, idle: list[str] | None = None) -> dict[str, Any]:
        return load_trial(
            contender,
            folder,
            sizes,
            senders=pair_senders,
            receivers=pair_receivers,
            expect=2,
            window=sizes.window if rate == 0 else 64,
            rate=rate,
            idle=idle,
        )

    # (a) 1:1 at saturation
    sat = interleave(trio, pairs, sizes.trials)
    rows.append(summarize("a 1:1 saturated", "messages/s", sat, "messages_per_s", target=">= 0.5x"))

    # (a) + (c) latency at a fixed rate with idle connections held; their memory and handshakes
    fixed = interleave(
        trio, lambda c: pairs(c, sizes.rate, world.members[: sizes.idle]), sizes.trials
    )
    where = f"a 1:1 at {sizes.rate:,} msg/s, {sizes.idle:,} idle"
    rows.append(summarize(where, "delivery p50 ms", fixed, "delivery_p50_ms", target="<= 1.3x"))
    rows.append(
        summarize(where, "delivery p99 ms", fixed, "delivery_p99_ms", target="<= 2x", flag=False)
    )
    rows.append(
        summarize(
            where, "ack p99 ms", fixed, "ack_p99_ms", target="<= 10 ms (chatcore)", flag=False
        )
    )
    first = {name: runs[:1] for name, runs in fixed.items()}  # allocators reuse freed memory
    rows.append(
        summarize(
            "c idle connections",
            "bytes each",
            first,
            "idle_bytes_each",
            target="<= 24 KB (chatcore)",
            flag=False,
        )
    )
    rows.append(
        summarize(
            "c idle connections", "handshake + auth CPU µs", fixed, "handshake_cpu_us", flag=False
        )
    )

    # (b) fan-out
    per_delivery: dict[int, float | None] = {}
    for n in sizes.fanout:
        room, members = f"fan{n}", world.fanout[f"fan{n}"]

        def fan(
            contender: Contender, room: str = room, members: list[str] = members
        ) -> dict[str, Any]:
            return load_trial(
                contender,
                folder,
                sizes,
                senders=[(m, room) for m in members[: sizes.fanout_senders]],
                receivers=members[sizes.fanout_senders :],
                expect=len(members),
                window=sizes.fanout_window,
            )

        result = interleave(trio, fan, sizes.trials)
        rows.append(
            summarize(
                f"b fan-out, {n:,} members",
                "deliveries/s",
                result,
                "deliveries_per_s",
                target=">= 0.75x",
            )
        )
        row = summarize(
            f"b fan-out, {n:,} members",
            "server CPU µs per delivery",
            result,
            "cpu_us_per_delivery",
            flag=False,
        )
        rows.append(row)
        per_delivery[n] = row.values.get("chatcore")
    small, large = min(sizes.fanout), max(sizes.fanout)
    if per_delivery.get(small) and per_delivery.get(large):
        growth = per_delivery[large] / per_delivery[small]  # type: ignore[operator]
        rows.append(
            Row(
                f"b fan-out cost {large:,} vs {small:,}",
                "chatcore CPU per delivery",
                {"chatcore": growth},
                None,
                "<= 1.2",
            )
        )

    # (d) durable sends, storage on vs off
    for on, off in (
        ("chatcore", "chatcore-storage-off"),
        ("chatcore-pg", "chatcore-pg-storage-off"),
    ):
        if on not in by_name:
            continue
        result = interleave([by_name[on], by_name[off]], pairs, sizes.trials)
        target = ">= 0.8x" if on == "chatcore" else ">= 0.6x"
        rows.append(
            summarize(
                f"d storage on/off ({on})",
                "messages/s",
                result,
                "messages_per_s",
                subject=on,
                baseline=off,
                target=target,
            )
        )
    if "chatcore-pg" in by_name:
        result = interleave([by_name["chatcore-pg"]], lambda c: pairs(c, sizes.rate), sizes.trials)
        rows.append(
            summarize(
                f"d PostgreSQL at {sizes.rate:,} msg/s",
                "ack p99 ms",
                result,
                "ack_p99_ms",
                subject="chatcore-pg",
                baseline=None,
                target="<= 10 ms",
            )
        )

    # (e) catch-up
    for name in ("chatcore", "chatcore-pg"):
        if name not in by_name:
            continue
        contender = by_name[name]
        room = contender.rooms["catchup"]
        filled = one_shot(
            {
                "mode": "fill",
                "url": contender.url,
                "fill": {
                    "token": contender.tokens["c0"],
                    "room": room,
                    "count": sizes.catchup,
                    "window": 64,
                },
            },
            folder,
        )
        assert filled["messages"] == sizes.catchup
        runs = {
            name: [
                one_shot(
                    {
                        "mode": "catchup",
                        "url": contender.url,
                        "catchup": {"token": contender.tokens["c1"], "room": room, "after_seq": 0},
                    },
                    folder,
                )
                for _ in range(sizes.trials)
            ]
        }
        for run in runs[name]:
            if run["messages"] != sizes.catchup:
                raise RuntimeError(f"catch-up got {run['messages']} of {sizes.catchup} messages")
        rows.append(
            summarize(
                f"e catch-up of {sizes.catchup:,} ({name})",
                "sync ms",
                runs,
                "sync_ms",
                subject=name,
                baseline=None,
                target="<= 150 ms",
            )
        )
    return rows


# --- output ------------------------------------------------------------------------------------

COLUMNS = [
    "chatcore",
    "relay-py",
    "relay-node",
    "chatcore-storage-off",
    "chatcore-pg",
    "chatcore-pg-storage-off",
]


def fmt(value: float | None) -> str:
    if value is None:
        return ""
    if abs(value) >= 100:
        return f"{value:,.0f}"
    return f"{value:.2f}" if abs(value) < 10 else f"{value:.1f}"


def table(rows: list[Row]) -> str:
    used = [c for c in COLUMNS if any(c in r.values and r.values[c] is not None for r in rows)]
    lines = [
        "| scenario | metric | " + " | ".join(used) + " | ratio | target |",
        "|---|---|" + "---:|" * len(used) + "---:|---|",
    ]
    for r in rows:
        cells = [fmt(r.values.get(c)) for c in used]
        ratio = f"{r.ratio:.2f}x" if r.ratio is not None else ""
        lines.append(
            f"| {r.scenario} | {r.metric} | " + " | ".join(cells) + f" | {ratio} | {r.target} |"
        )
    flags = [f"- {r.scenario}, {r.metric}: {f}" for r in rows for f in r.flags]
    if flags:
        lines += ["", "Flags:", *flags]
    return "\n".join(lines)


def machine() -> str:
    model = next(
        (
            line.split(":", 1)[1].strip()
            for line in Path("/proc/cpuinfo").read_text().splitlines()
            if line.startswith("model name")
        ),
        platform.processor() or "unknown CPU",
    )
    node = subprocess.run(["node", "--version"], capture_output=True, text=True).stdout.strip()
    return (
        f"{model}, {os.cpu_count()} cores, Linux {platform.release()}, "
        f"Python {platform.python_version()}, Node {node}"
    )


def reachable(url: str) -> bool:
    """Whether something listens where `url` points (a database the rows of d and e need)."""
    parts = urlsplit(url)
    try:
        with socket.create_connection((parts.hostname or "127.0.0.1", parts.port or 5432), 1):
            return True
    except OSError:
        return False


def check_tools() -> None:
    for tool in ("node", "taskset"):
        if shutil.which(tool) is None:
            sys.exit(f"make bench needs `{tool}` on PATH")
    if not (NODE_DIR / "node_modules" / "ws").is_dir():
        sys.exit("run `npm ci --prefix bench/node` first (make bench does)")
    if len(os.sched_getaffinity(0)) < 2:
        sys.exit("make bench pins servers and the load generator to two different cores")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--trials", type=int)
    parser.add_argument("--seconds", type=float, help="measured seconds per trial")
    parser.add_argument("--quick", action="store_true", help="tiny sizes: checks that it runs")
    parser.add_argument("--no-postgres", action="store_true")
    parser.add_argument("--output", type=Path, help="where to save the table")
    args = parser.parse_args()
    check_tools()
    sizes = QUICK if args.quick else Sizes()
    if args.trials or args.seconds:
        sizes = Sizes(
            **{
                **sizes.__dict__,
                **{k: v for k, v in (("trials", args.trials), ("seconds", args.seconds)) if v},
            }
        )
    postgres = not args.no_postgres and reachable(POSTGRES_URL)
    started = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="chatcore-bench-") as tmp:
        rows, notes = run_all(sizes, postgres, Path(tmp))
    if not postgres:
        notes.append("PostgreSQL was not used (--no-postgres, or nothing listens on 5432)")
    elapsed = time.monotonic() - started
    when = dt.datetime.now(dt.UTC)
    report = "\n".join(
        [
            f"# make bench, {when:%Y-%m-%d %H:%M} UTC",
            "",
            f"Machine: {machine()}. Servers pinned to core {SERVER_CORE}, the load generator "
            f"(Node `ws`) to core {LOAD_CORE}; PostgreSQL itself is not pinned.",
            f"Sizes: {sizes}. Medians of {sizes.trials} interleaved trials; ratios are medians of "
            "per-trial ratios against the baseline (relay-py, or storage off for d).",
            "",
            table(rows),
            "",
            *[f"- {note}" for note in notes],
            f"- whole run: {elapsed:.0f} s",
            "",
        ]
    )
    print(report)
    output = args.output or RESULTS / f"{when:%Y-%m-%dT%H%M}.md"
    output.parent.mkdir(parents=True, exist_ok=True)
    output.write_text(report)
    print(f"saved {output}", file=sys.stderr)


if __name__ == "__main__":
    main()
