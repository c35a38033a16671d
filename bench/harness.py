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

Users, their logins and rooms are written into each database before its servers start
(bench/accounts.py): registering them over REST took most of the set-up. The harness lifts its
limit of open files to the hard limit (the servers and the load generator inherit it) and says so.

Scenarios (see docs/performance.md for the targets): (a) 1:1 relay at saturation, and latency at
a fixed rate (a quarter of chatcore's saturated rate in the same run, so that a slow machine does
not turn a latency test into a saturation test) with 1,000 idle authenticated connections held;
(b) fan-out in rooms of 100 and 1,000 members; (c) memory per idle authenticated connection and
handshake CPU, then 10,000 idle authenticated sessions on one chatcore node (a fresh one; the
relays are not run there) and a fan-out to 1,000 of them while the rest stay connected;
(d) durable sends with storage on and off, and the PostgreSQL ack p99 at 2,000 msg/s (flagged
when that is over half of chatcore-pg's saturated rate); (e) catch-up of 10,000 missed
messages; (p) pushes (bench/push_bench.py's `measure`, in a process of its own).

Progress goes to stderr, a line per phase and trial with the time since the start. The table is
printed and saved as bench/results/<time>.md. A scenario where the load generator used more than
90% of its core is flagged: there the figure may be the generator's limit.
"""

from __future__ import annotations

import argparse
import contextlib
import datetime as dt
import json
import os
import platform
import resource
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor, wait
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import accounts
import volatile_storage

from chatcore.testing.server import ServerProcess, free_port, server_config

BENCH = Path(__file__).resolve().parent
NODE_DIR = BENCH / "node"
RESULTS = BENCH / "results"
SERVER_CORE, LOAD_CORE = 0, 1
POSTGRES_URL = "postgresql+asyncpg://postgres@127.0.0.1:5432/test"
PASSWORD = "bench password 1"
SATURATED = 0.9  # load generator CPU share above which a figure is flagged
PUSH_TIMEOUT = 600  # seconds bench/push_bench.py's measure() may take


class Progress:
    """What the harness is doing, a line at a time on stderr, with the time since the start."""

    def __init__(self) -> None:
        self.started = time.monotonic()

    def __call__(self, message: str) -> None:
        print(f"[{time.monotonic() - self.started:4.0f}s] {message}", file=sys.stderr, flush=True)


say = Progress()


# --- sizes -------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Sizes:
    trials: int = 3
    warmup: float = 0.5
    seconds: float = 2.0
    pairs: int = 20  # 1:1 senders, each in its own direct room with its own receiver
    window: int = 8  # incomplete sends per sender at saturation
    rate_share: float = 0.25  # the fixed-rate latency run's rate, a share of the saturated one
    rate: int | None = None  # that rate given instead (--rate: the same rate for two commits)
    idle: int = 1000  # idle authenticated connections held during it
    pg_rate: int = 2000  # msg/s at which the PostgreSQL ack p99 is taken (its target's rate)
    fanout: tuple[int, ...] = (100, 1000)
    fanout_senders: int = 4  # members of the room who send (each with `fanout_window`)
    fanout_window: int = 4
    catchup: int = 10_000
    connections: int = 10_000  # idle authenticated sessions held on one chatcore node
    connections_room: int = 1000  # ... of which these are one room, for a fan-out

    @property
    def members(self) -> int:
        return max(self.idle, *self.fanout)


QUICK = Sizes(
    trials=1,
    warmup=0.2,
    seconds=0.5,
    pairs=4,
    idle=20,
    fanout=(10, 20),
    catchup=200,
    connections=60,
    connections_room=20,
)


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
    env = volatile_storage.load_in(overrides) if volatile else {}
    folder.mkdir(parents=True, exist_ok=True)
    config = server_config(folder, overrides)
    return ServerProcess(folder / name, config, env)


def chatcore_contenders(
    names: list[str], folder: Path, storage: dict[str, Any], world: World, notes: list[str]
) -> list[Contender]:
    """chatcore servers sharing one database (and so one set of users and rooms).

    The first name runs as users run it, the others (if any) with storage off; they share the
    auth secret, so a token works on each.
    """
    servers = []
    for i, name in enumerate(names):
        (folder / name).mkdir(parents=True, exist_ok=True)
        servers.append(start_chatcore(name, folder, storage, volatile=i > 0))
    made = accounts.write_accounts(
        storage, servers[0].config["auth"], PASSWORD, world.users, world.fanout, world.direct
    )
    notes.append(
        f"{names[0]}: {len(world.users):,} users, their logins and {len(made.rooms)} rooms "
        f"written straight into the database in {made.seconds:.1f} s (bench/accounts.py)"
    )
    start_all(servers)
    return [
        Contender(
            name,
            server.ws_url,
            pid_of(server),
            made.tokens,
            made.rooms,
            server.stop,
            server.log_path,
        )
        for name, server in zip(names, servers, strict=True)
    ]


def pid_of(server: ServerProcess) -> int:
    assert server.process is not None, "the server is not started"
    return server.process.pid


def start_all(servers: list[ServerProcess]) -> None:
    """Start the servers side by side (a start is mostly imports); all of them or none."""
    with ThreadPoolExecutor(len(servers)) as pool:
        starting = [pool.submit(server.start, 60) for server in servers]
        wait(starting)
    if any(done.exception() for done in starting):
        for server in servers:
            with contextlib.suppress(Exception):
                server.stop()
        for done in starting:
            done.result()  # raises the first failure


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
    concurrency: int = 50,
    duration: float | None = None,
) -> dict[str, Any]:
    """One measured run; the result adds server CPU per delivery, idle memory and handshake
    (of the idle connections, and `all_*`: of every connection the run opened)."""
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
        "duration": duration or sizes.seconds,
        "concurrency": concurrency,
    }
    pid = contender.pid
    rss0, cpu0 = rss_bytes(pid), cpu_seconds(pid)
    gen = LoadGen(config, folder)
    idled = gen.expect("idle")
    rss1, cpu1 = rss_bytes(pid), cpu_seconds(pid)
    gen.go()
    active = gen.expect("active")
    rss_all, cpu_all = rss_bytes(pid), cpu_seconds(pid)
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
    connections = idled["connections"] + active["connections"]
    result["all_connections"] = connections
    result["all_rss_mb"] = rss_all / 2**20
    result["all_bytes_each"] = (rss_all - rss0) / connections
    result["all_open_s"] = (idled["open_ms"] + active["open_ms"]) / 1000
    result["all_handshake_cpu_s"] = cpu_all - cpu0
    return result


def one_shot(config: dict[str, Any], folder: Path) -> dict[str, Any]:
    gen = LoadGen(config, folder)
    result = gen.expect("result")
    gen.finish()
    return result


# --- scenarios ---------------------------------------------------------------------------------

Trial = Callable[[Contender], dict[str, Any]]


def interleave(
    label: str, contenders: list[Contender], trial: Trial, trials: int
) -> dict[str, list[dict[str, Any]]]:
    """Run `trial` A B C A B C ...; every contender's results in trial order."""
    results: dict[str, list[dict[str, Any]]] = {c.name: [] for c in contenders}
    for n in range(1, trials + 1):
        for contender in contenders:
            say(f"{label}: trial {n}/{trials}, {contender.name}")
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


def run_all(sizes: Sizes, postgres: bool, folder: Path, quick: bool) -> tuple[list[Row], list[str]]:
    world = World(sizes)
    notes: list[str] = []
    # Set-up (server starts, writing the accounts) may use both cores: each server is pinned to
    # the server core once it is up, before anything is measured.
    os.sched_setaffinity(0, {SERVER_CORE, LOAD_CORE})
    contenders: list[Contender] = []
    pool = ThreadPoolExecutor(2)
    # The node of the many-connections scenario is made and started meanwhile; it idles (pinned)
    # until its turn, after the others have stopped.
    crowd = pool.submit(crowded_node, sizes, folder / "connections", notes)
    # --quick only checks that everything runs: there the pushes are measured meanwhile too.
    pushes = pool.submit(measure_pushes, quick) if quick else None
    measured = False
    schema = f"bench_{uuid.uuid4().hex[:8]}"  # of PostgreSQL, dropped at the end
    try:
        t0 = time.monotonic()
        say(f"setup: chatcore on SQLite, {len(world.users):,} users")
        main = chatcore_contenders(
            ["chatcore", "chatcore-storage-off"],
            folder / "sqlite",
            {"url": f"sqlite+aiosqlite:///{folder / 'sqlite' / 'chat.db'}"},
            world,
            notes,
        )
        contenders += main
        say("setup: relay-py and relay-node")
        contenders += [start_relay("relay-py", world), start_relay("relay-node", world)]
        pg: list[Contender] = []
        if postgres:
            say(f"setup: chatcore on PostgreSQL, {len(world.users):,} users")
            pg = chatcore_contenders(
                ["chatcore-pg", "chatcore-pg-storage-off"],
                folder / "pg",
                {"url": POSTGRES_URL, "schema": schema},
                world,
                notes,
            )
            contenders += pg
        notes.append(
            f"setup (servers, {len(world.users):,} users per database): "
            f"{time.monotonic() - t0:.1f} s"
        )
        wait([crowd])  # nothing starts up while the others are measured
        for contender in contenders:
            pin(contender.pid, SERVER_CORE)
        os.sched_setaffinity(0, {LOAD_CORE})
        by_name = {c.name: c for c in contenders}
        trio = [by_name[n] for n in ("chatcore", "relay-py", "relay-node")]
        rows = scenarios(sizes, world, trio, by_name, folder)
        notes += logged_errors(contenders)
        measured = True
    finally:
        pool.shutdown(wait=False)
        wait([crowd])  # the crowded node is up, or failed, from here on
        if not measured:
            stop_crowded_node(crowd)
        for contender in contenders:
            with contextlib.suppress(Exception):
                contender.stop()
        if postgres:
            with contextlib.suppress(Exception):
                accounts.drop_schema(POSTGRES_URL, schema)
    try:
        rows += connections_scenario(sizes, crowd.result(), folder, notes)
    except Exception as exc:  # the rows measured so far are still worth printing
        why = (str(exc).strip().splitlines() or [repr(exc)])[0]
        rows.append(Row(f"c {sizes.connections:,} idle connections", f"not measured: {why}", {}))
    finally:
        stop_crowded_node(crowd)
    if pushes is None:
        say("p pushes: bench/push_bench.py's measure(), in a process of its own")
        t0 = time.monotonic()
        rows += push_rows(measure_pushes(quick))
        notes.append(
            f"pushes (bench/push_bench.py: its own servers, on both cores): "
            f"{time.monotonic() - t0:.0f} s"
        )
    else:
        rows += push_rows(pushes.result())
        notes.append("--quick: the pushes were measured alongside the other scenarios")
    return rows, notes


def raise_file_limit() -> str:
    """Lift this process's soft limit of open files to its hard limit (servers and the load
    generator, started later, inherit it); a note saying so."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft == hard:
        return f"open files (RLIMIT_NOFILE): {soft:,}, the hard limit, for every process"
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    return f"open files (RLIMIT_NOFILE): raised from {soft:,} to the hard limit, {hard:,}"


@dataclass
class CrowdedNode:
    """A fresh chatcore node (SQLite, as users run it) whose database holds `count` users with
    a login each; the first `room_size` share a group room."""

    contender: Contender
    count: int
    room_size: int


def crowded_node(sizes: Sizes, folder: Path, notes: list[str]) -> CrowdedNode:
    soft, _ = resource.getrlimit(resource.RLIMIT_NOFILE)
    count = min(sizes.connections, soft - 1000)  # the server's own files, its databases
    room_size = min(sizes.connections_room, count)
    if count < sizes.connections:
        notes.append(f"c: only {count:,} connections, for the limit of open files ({soft:,})")
    say(f"setup: c, a fresh chatcore node with {count:,} users")
    (folder / "chatcore").mkdir(parents=True)
    storage = {"url": f"sqlite+aiosqlite:///{folder / 'chat.db'}"}
    server = start_chatcore("chatcore", folder, storage)
    names = [f"k{i}" for i in range(count)]
    made = accounts.write_accounts(
        storage, server.config["auth"], PASSWORD, names, {"room": names[:room_size]}, {}
    )
    notes.append(
        f"c: {count:,} users and their logins written straight into the database in "
        f"{made.seconds:.1f} s (bench/accounts.py; over REST it would take minutes)"
    )
    server.start(timeout=60)
    contender = Contender(
        "chatcore",
        server.ws_url,
        pid_of(server),
        made.tokens,
        made.rooms,
        server.stop,
        server.log_path,
    )
    pin(contender.pid, SERVER_CORE)
    return CrowdedNode(contender, count, room_size)


def stop_crowded_node(crowd: Future[CrowdedNode]) -> None:
    if crowd.done() and crowd.exception() is None:
        with contextlib.suppress(Exception):
            crowd.result().contender.stop()


def connections_scenario(
    sizes: Sizes, crowd: CrowdedNode, folder: Path, notes: list[str]
) -> list[Row]:
    """Many idle authenticated sessions on one node: its memory and the time to hand-shake and
    authenticate them all, then a fan-out to a room of some of them while the others stay
    connected."""
    count, room_size, contender = crowd.count, crowd.room_size, crowd.contender
    names = list(contender.tokens)  # the room's members first
    senders = min(sizes.fanout_senders, room_size)
    scenario = f"c {count:,} idle connections, one node"
    say(f"{scenario}: handshake + auth of all {count:,}, then a fan-out to {room_size:,} of them")
    result = load_trial(
        contender,
        folder,
        sizes,
        senders=[(name, "room") for name in names[:senders]],
        receivers=names[senders:room_size],
        expect=room_size,
        window=sizes.fanout_window,
        idle=names[room_size:],
        duration=sizes.seconds * sizes.trials,
    )
    notes += logged_errors([contender])
    results = {"chatcore": [result]}
    notes.append(
        f"c: {count:,} connections from 127.0.0.1 to one port take as many ports of the "
        f"ephemeral range ({ephemeral_ports():,} ports): one source address suffices"
    )

    def row(scenario: str, metric: str, key: str, target: str = "") -> Row:
        return summarize(scenario, metric, results, key, baseline=None, target=target, flag=False)

    fanout = f"c fan-out to {room_size:,} of the {count:,}"
    return [
        row(scenario, "server RSS MB, all held", "all_rss_mb", "<= 300 MB"),
        row(scenario, "bytes each (RSS growth / n)", "all_bytes_each"),
        row(scenario, "handshake + auth of all, s", "all_open_s", "<= 15 s"),
        row(scenario, "handshake + auth of all, server CPU s", "all_handshake_cpu_s"),
        summarize(fanout, "deliveries/s", results, "deliveries_per_s", baseline=None),
        row(fanout, "server CPU µs per delivery", "cpu_us_per_delivery"),
    ]


def ephemeral_ports() -> int:
    low, high = Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split()
    return int(high) - int(low) + 1


#: Runs in a process of its own, so that push_bench's servers and event loops do not share the
#: harness's; on every core (the harness itself is pinned to the load generator's).
PUSH_MEASURE = """
import json, os, sys
os.sched_setaffinity(0, range(os.cpu_count()))
sys.path.insert(0, sys.argv[1])
import push_bench
if not hasattr(push_bench, "measure"):
    print(json.dumps("bench/push_bench.py has no measure()"))
else:
    print(json.dumps(push_bench.measure(quick=sys.argv[2] == "quick")))
"""
PUSH_KEYS = ("sends_off", "sends_on", "pushes_per_s", "ack_push_p50_ms", "ack_push_p99_ms")


def measure_pushes(quick: bool, module_dir: Path = BENCH) -> dict[str, float] | str:
    """`push_bench.measure(quick)` of `module_dir`: its figures, or why there are none. Its
    progress (stderr) is passed on as the harness's own."""
    command = [sys.executable, "-c", PUSH_MEASURE, str(module_dir), "quick" if quick else "full"]
    killed = threading.Event()
    last = "no output"
    with tempfile.TemporaryFile("w+") as stdout:
        # A session of its own: on a timeout its servers and receiver go with it.
        process = subprocess.Popen(
            command, stdout=stdout, stderr=subprocess.PIPE, text=True, start_new_session=True
        )

        def kill() -> None:
            killed.set()
            with contextlib.suppress(ProcessLookupError):
                os.killpg(process.pid, signal.SIGKILL)

        timer = threading.Timer(PUSH_TIMEOUT, kill)
        timer.start()
        try:
            assert process.stderr is not None
            for line in process.stderr:  # until it ends
                last = line.rstrip() or last
                say(f"p pushes: {line.rstrip()}")
            process.wait()
        finally:
            timer.cancel()
        stdout.seek(0)
        output = stdout.read()
    if killed.is_set():
        return f"bench/push_bench.py's measure() took over {PUSH_TIMEOUT} s"
    if process.returncode != 0:
        return f"bench/push_bench.py's measure() failed: {last}"
    try:
        answer = json.loads(output.strip().splitlines()[-1])
    except (ValueError, IndexError):
        return "bench/push_bench.py's measure() printed no figures"
    if isinstance(answer, str):
        return answer
    missing = [key for key in PUSH_KEYS if not isinstance(answer.get(key), int | float)]
    if missing:
        return f"bench/push_bench.py's measure() gave no {', '.join(missing)}"
    return {key: float(answer[key]) for key in PUSH_KEYS}


def push_rows(figures: dict[str, float] | str) -> list[Row]:
    """The push rows: sends with pushes on against off (one offline member per message, the
    chat node sending), pushes per second to one webhook receiver, ack -> push latency."""
    sends = "p sends, pushes on/off, 1 offline member each"
    rate = "p pushes, one node to one webhook receiver"
    delay = "p ack -> push at 100 pushes/s"
    if isinstance(figures, str):
        return [
            Row(scenario, f"{metric}: not measured: {figures}", {}, None, target)
            for scenario, metric, target in (
                (sends, "sends/s", ">= 0.7x"),
                (rate, "pushes/s", ">= 3,000"),
                (delay, "p50 ms", "<= 20 ms"),
                (delay, "p99 ms", ""),
            )
        ]
    off, on = figures["sends_off"], figures["sends_on"]
    return [
        Row(
            sends,
            f"sends/s with pushes on (off: {fmt(off)})",
            {"chatcore": on},
            on / off if off else None,
            ">= 0.7x",
        ),
        Row(rate, "pushes/s", {"chatcore": figures["pushes_per_s"]}, None, ">= 3,000"),
        Row(delay, "p50 ms", {"chatcore": figures["ack_push_p50_ms"]}, None, "<= 20 ms"),
        Row(delay, "p99 ms", {"chatcore": figures["ack_push_p99_ms"]}, None),
    ]


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
    sat = interleave("a 1:1 saturated", trio, pairs, sizes.trials)
    rows.append(summarize("a 1:1 saturated", "messages/s", sat, "messages_per_s", target=">= 0.6x"))

    # (a) + (c) latency at a fixed rate with idle connections held; their memory and handshakes
    if sizes.rate:
        rate, share = sizes.rate, "given with --rate"
    else:
        rate = fixed_rate(rows[-1].values.get("chatcore"), sizes.rate_share)
        share = f"{sizes.rate_share:.0%} of chatcore's saturated"
    where = f"a 1:1 at {rate:,} msg/s ({share}), {sizes.idle:,} idle"
    fixed = interleave(
        where, trio, lambda c: pairs(c, rate, world.members[: sizes.idle]), sizes.trials
    )
    rows.append(summarize(where, "delivery p50 ms", fixed, "delivery_p50_ms", target="<= 2x"))
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

        result = interleave(f"b fan-out, {n:,} members", trio, fan, sizes.trials)
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
    pg_saturated: float | None = None
    for on, off in (
        ("chatcore", "chatcore-storage-off"),
        ("chatcore-pg", "chatcore-pg-storage-off"),
    ):
        if on not in by_name:
            continue
        result = interleave(
            f"d storage on/off ({on})", [by_name[on], by_name[off]], pairs, sizes.trials
        )
        target = ">= 0.85x" if on == "chatcore" else ">= 0.6x"
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
        if on == "chatcore-pg":
            pg_saturated = rows[-1].values.get(on)
    if "chatcore-pg" in by_name:
        where = f"d PostgreSQL at {sizes.pg_rate:,} msg/s"
        result = interleave(
            where, [by_name["chatcore-pg"]], lambda c: pairs(c, sizes.pg_rate), sizes.trials
        )
        row = summarize(
            where,
            "ack p99 ms",
            result,
            "ack_p99_ms",
            subject="chatcore-pg",
            baseline=None,
            target="<= 10 ms",
        )
        if pg_saturated and sizes.pg_rate > pg_saturated / 2:
            row.flags.append(
                f"{sizes.pg_rate:,} msg/s is over half of chatcore-pg's saturated rate in this "
                f"run ({pg_saturated:,.0f} msg/s): the p99 includes queueing"
            )
        rows.append(row)

    # (e) catch-up
    for name in ("chatcore", "chatcore-pg"):
        if name not in by_name:
            continue
        contender = by_name[name]
        room = contender.rooms["catchup"]
        say(f"e catch-up ({name}): filling a room with {sizes.catchup:,} messages")
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
        say(f"e catch-up ({name}): {sizes.trials} catch-ups")
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
                target="<= 100 ms",
            )
        )
    return rows


def fixed_rate(saturated: float | None, share: float) -> int:
    """The fixed-rate run's msg/s: `share` of chatcore's saturated rate, rounded to 100."""
    if not saturated:
        raise RuntimeError("chatcore's saturated rate was not measured")
    return max(100, int(round(saturated * share, -2)))


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
    parser.add_argument(
        "--rate",
        type=int,
        help="msg/s of the fixed-rate 1:1 run (default: a quarter of chatcore's saturated rate "
        "in the same run); give one to compare two commits at the same rate",
    )
    parser.add_argument("--output", type=Path, help="where to save the table")
    args = parser.parse_args()
    check_tools()
    sizes = QUICK if args.quick else Sizes()
    given = {"trials": args.trials, "seconds": args.seconds, "rate": args.rate}
    if any(given.values()):
        sizes = Sizes(**{**sizes.__dict__, **{k: v for k, v in given.items() if v}})
    postgres = not args.no_postgres and reachable(POSTGRES_URL)
    limit = raise_file_limit()
    say(limit)
    started = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="chatcore-bench-") as tmp:
        rows, notes = run_all(sizes, postgres, Path(tmp), args.quick)
    notes.insert(0, limit)
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
