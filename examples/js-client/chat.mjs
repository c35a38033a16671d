#!/usr/bin/env node
// A chatcore client in plain JavaScript, written only from the wire contract (docs/protocol.md).
// No dependencies: global fetch and WebSocket (Node 20 needs --experimental-websocket).
//
//   node --experimental-websocket chat.mjs http://127.0.0.1:8080
//
// It registers two users, logs them in, opens a direct room, connects both over WebSocket,
// exchanges messages, retries a send with the same ref, disconnects one user, sends while it is
// away, reconnects and syncs, then prints a JSON summary. Exit code 0 only if every check passed.

const TIMEOUT_MS = Number(process.env.CHAT_TIMEOUT_MS ?? 10000);
const base = (process.argv[2] ?? process.env.CHATCORE_URL ?? "http://127.0.0.1:8080").replace(/\/$/, "");
const api = `${base}/api/v1`;

const checks = [];
function check(name, ok, detail = undefined) {
  checks.push(detail === undefined ? { name, ok: Boolean(ok) } : { name, ok: Boolean(ok), detail });
  return Boolean(ok);
}
const same = (a, b) => JSON.stringify(a) === JSON.stringify(b);
const uid = () => (globalThis.crypto?.randomUUID?.() ?? `${Date.now()}-${Math.random()}`);

// --- REST -----------------------------------------------------------------------------------

async function rest(method, path, { token, body } = {}) {
  const headers = { Accept: "application/json" };
  if (token) headers.Authorization = `Bearer ${token}`;
  if (body !== undefined) headers["Content-Type"] = "application/json";
  const reply = await fetch(api + path, {
    method,
    headers,
    body: body === undefined ? undefined : JSON.stringify(body),
    signal: AbortSignal.timeout(TIMEOUT_MS),
  });
  const text = await reply.text();
  let json = null;
  try {
    json = text ? JSON.parse(text) : null;
  } catch {
    json = { unparsed: text };
  }
  return { status: reply.status, json };
}

async function newUser(prefix) {
  const username = `${prefix}_${uid().replace(/-/g, "").slice(0, 12)}`;
  const password = "a long enough password";
  const reg = await rest("POST", "/auth/register", { body: { username, password } });
  check(`register ${prefix}: 201 {user}`, reg.status === 201 && reg.json?.user?.username === username, reg);
  const login = await rest("POST", "/auth/login", { body: { username, password } });
  check(
    `login ${prefix}: 200 bearer token`,
    login.status === 200 && login.json?.token_type === "bearer" && typeof login.json?.access_token === "string",
    login.status,
  );
  return { username, id: login.json.user.id, token: login.json.access_token };
}

// --- WebSocket ------------------------------------------------------------------------------

// One session: every event is kept in arrival order; `next(pred)` takes the first pending event
// that matches (waiting for it), leaving the others pending.
class Session {
  constructor(url, token) {
    this.url = url;
    this.token = token;
    this.pending = [];
    this.log = [];
    this.waiters = [];
    this.closed = false;
  }

  async open() {
    this.ws = new WebSocket(this.url);
    this.ws.addEventListener("message", (e) => this.#onEvent(JSON.parse(e.data)));
    this.ws.addEventListener("close", () => {
      this.closed = true;
      for (const w of this.waiters.splice(0)) w.reject(new Error("connection closed"));
    });
    await new Promise((resolve, reject) => {
      this.ws.addEventListener("open", resolve, { once: true });
      this.ws.addEventListener("error", () => reject(new Error(`cannot connect to ${this.url}`)), { once: true });
    });
    this.send({ type: "auth", token: this.token });
    this.ready = await this.next((e) => e.type === "ready" || e.type === "error");
    return this.ready;
  }

  #onEvent(event) {
    this.log.push(event);
    const index = this.waiters.findIndex((w) => w.pred(event));
    if (index >= 0) {
      const [w] = this.waiters.splice(index, 1);
      clearTimeout(w.timer);
      w.resolve(event);
    } else {
      this.pending.push(event);
    }
  }

  send(frame) {
    this.ws.send(JSON.stringify(frame));
  }

  next(pred, what = "an event") {
    const index = this.pending.findIndex(pred);
    if (index >= 0) return Promise.resolve(this.pending.splice(index, 1)[0]);
    if (this.closed) return Promise.reject(new Error("connection closed"));
    return new Promise((resolve, reject) => {
      const w = { pred, resolve, reject };
      w.timer = setTimeout(() => {
        this.waiters.splice(this.waiters.indexOf(w), 1);
        reject(new Error(`timed out waiting for ${what}`));
      }, TIMEOUT_MS);
      this.waiters.push(w);
    });
  }

  // send a message and wait for the reply to its ref (ack or error)
  async sendMessage(roomId, body, ref = uid()) {
    this.send({ type: "send", ref, room_id: roomId, body });
    return this.next((e) => (e.type === "ack" || e.type === "error") && e.ref === ref, `the ack of ${ref}`);
  }

  message(roomId, seq) {
    return this.next((e) => e.type === "message" && e.message.room_id === roomId && e.message.seq === seq, `message seq ${seq}`);
  }

  async ping() {
    const ref = uid();
    this.send({ type: "ping", ref });
    await this.next((e) => e.type === "pong" && e.ref === ref, "pong");
  }

  // sync; resolves to { synced, messages } with the catch-up messages of the window
  async sync(rooms) {
    const ref = uid();
    const start = this.log.length;
    this.send({ type: "sync", ref, rooms });
    const synced = await this.next((e) => e.type === "synced" && e.ref === ref, "synced");
    const window = this.log.slice(start, this.log.indexOf(synced));
    const messages = window.filter((e) => e.type === "message").map((e) => e.message);
    this.pending = this.pending.filter((e) => !window.includes(e));
    return { synced, messages };
  }

  close() {
    return new Promise((resolve) => {
      if (this.closed) return resolve();
      this.ws.addEventListener("close", () => resolve(), { once: true });
      this.ws.close(1000);
    });
  }
}

// --- the scenario ---------------------------------------------------------------------------

async function main() {
  const info = await rest("GET", "/info");
  check("GET /info names a ws_url", info.status === 200 && /^wss?:\/\//.test(info.json?.ws_url ?? ""), info.json);
  const wsUrl = info.json.ws_url;

  const alice = await newUser("alice");
  const bob = await newUser("bob");

  const created = await rest("POST", "/rooms", { token: alice.token, body: { kind: "direct", user_id: bob.id } });
  check("direct room created: 201", created.status === 201 && created.json?.kind === "direct", created);
  const roomId = created.json.id;
  const existing = await rest("POST", "/rooms", { token: bob.token, body: { kind: "direct", user_id: alice.id } });
  check("direct room from the other side: 200, same room", existing.status === 200 && existing.json?.id === roomId, existing);

  const a = new Session(wsUrl, alice.token);
  let b = new Session(wsUrl, bob.token);
  const readyA = await a.open();
  const readyB = await b.open();
  check("alice ready", readyA.type === "ready" && readyA.user?.id === alice.id, readyA);
  check("bob ready, room listed", readyB.type === "ready" && readyB.rooms?.some((r) => r.room_id === roomId), readyB);

  // alice -> bob
  const ref1 = uid();
  const ack1 = await a.sendMessage(roomId, "hello bob", ref1);
  check("ack carries the message", ack1.type === "ack" && ack1.ref === ref1 && ack1.message?.seq === 1 && ack1.message?.body === "hello bob", ack1);
  const atBob = await b.message(roomId, 1);
  check("bob receives alice's message", same(atBob.message, ack1.message), atBob);
  const atAlice = await a.message(roomId, 1);
  check("the sending session receives its message too", same(atAlice.message, ack1.message));

  // bob -> alice
  const ack2 = await b.sendMessage(roomId, "hi alice");
  check("bob's send acked with seq 2", ack2.type === "ack" && ack2.message?.seq === 2, ack2);
  const reply = await a.message(roomId, 2);
  check("alice receives bob's reply", same(reply.message, ack2.message));
  await b.message(roomId, 2);

  // retry with the same ref: same ack, no second delivery
  const retry = await a.sendMessage(roomId, "hello bob (retried, new text)", ref1);
  check("retry with the same ref gets the same ack", retry.type === "ack" && same(retry.message, ack1.message), retry);
  const ack3 = await a.sendMessage(roomId, "after the retry");
  check("the retry used no seq", ack3.type === "ack" && ack3.message?.seq === 3, ack3);
  const third = await b.message(roomId, 3);
  const dupes = b.log.filter((e) => e.type === "message" && e.message.room_id === roomId && e.message.seq === 1).length;
  check("the retry was not delivered again", third && dupes === 1, { deliveries_of_seq_1: dupes });

  // bob goes away; alice sends 3 more
  const lastSeen = Math.max(...b.log.filter((e) => e.type === "message").map((e) => e.message.seq));
  await b.close();
  const whileAway = [];
  for (let i = 0; i < 3; i++) {
    const ack = await a.sendMessage(roomId, `while you were away ${i}`);
    whileAway.push(ack.message);
  }
  check("sends while bob is away are acked", whileAway.every((m) => m && m.seq >= 4), whileAway.map((m) => m?.seq));

  // bob comes back and catches up
  b = new Session(wsUrl, bob.token);
  const again = await b.open();
  const listed = again.rooms?.find((r) => r.room_id === roomId);
  check("ready lists the room's last_seq", listed?.last_seq === 6, listed);
  const { synced, messages } = await b.sync({ [roomId]: lastSeen });
  check("sync sends exactly the missed messages, in order", same(messages, whileAway), messages.map((m) => m.seq));
  check("synced reports the highest seq", synced.rooms?.[roomId] === 6 && !synced.has_more?.[roomId], synced);

  // everything exactly once, in seq order (dedupe by (room_id, seq) as the contract says)
  const seen = new Map();
  for (const m of [atBob.message, ...messages, ...b.log.filter((e) => e.type === "message").map((e) => e.message)]) {
    seen.set(`${m.room_id}:${m.seq}`, m);
  }
  await b.ping();
  const history = await rest("GET", `/rooms/${roomId}/messages?after_seq=0`, { token: bob.token });
  const seqs = history.json?.messages?.map((m) => m.seq) ?? [];
  check("history is seqs 1..6, each ref once", same(seqs, [1, 2, 3, 4, 5, 6]) && new Set(history.json.messages.map((m) => m.ref)).size === 6, seqs);
  check("bob has every message of alice after sync", whileAway.every((m) => seen.has(`${roomId}:${m.seq}`)));

  await a.close();
  await b.close();
}

let failure = null;
try {
  await main();
} catch (error) {
  failure = String(error?.stack ?? error);
}
const ok = failure === null && checks.length > 0 && checks.every((c) => c.ok);
console.log(JSON.stringify({ ok, passed: checks.filter((c) => c.ok).length, failed: checks.filter((c) => !c.ok), error: failure, checks: checks.map((c) => c.name) }, null, 2));
process.exit(ok ? 0 : 1);
