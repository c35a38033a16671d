// The load generator of `make bench`: one trial of one scenario against one server.
//
//     node bench/node/loadgen.mjs CONFIG.json
//
// It speaks chatcore's WebSocket protocol (the relays speak the same subset), reports JSON lines
// on stdout and waits for a "go" line on stdin between phases, so the harness can read the
// server's memory and CPU time at the right moments:
//
//   {"event": "idle"}     the idle connections are open and authenticated   -> wait for "go"
//   {"event": "active"}   the senders and receivers are open and authenticated -> wait for "go"
//   {"event": "measure"}  warm-up done; the measured window starts now
//   {"event": "result", ...figures}  the measured window ended (the harness reads CPU time)
//
// A send is *complete* once its ack arrived and every expected delivery (`expect`: the sender's
// own copy included) was received. Each sender keeps at most `window` incomplete sends (a closed
// loop); with `rate` > 0 the sends are also paced to that many per second over all senders, so
// latency is measured at a fixed load rather than as queueing. Modes "fill" and "catchup" serve
// the catch-up scenario.
import { readFileSync } from 'node:fs';
import { createInterface } from 'node:readline';
import WebSocket from 'ws';

const config = JSON.parse(readFileSync(process.argv[2], 'utf8'));
const lines = createInterface({ input: process.stdin });
const waiting = [];
lines.on('line', (line) => { const resolve = waiting.shift(); if (resolve) resolve(line); });
const nextLine = () => new Promise((resolve) => waiting.push(resolve));
const say = (event) => process.stdout.write(JSON.stringify(event) + '\n');
const fail = (message) => { say({ event: 'error', message }); process.exit(1); };
const now = () => performance.now();
// Refs are unique per run: chatcore answers a repeated ref with the stored message and, rightly,
// delivers nothing again.
const run = Math.random().toString(36).slice(2, 10);

/** Open one authenticated connection; resolves with the socket once `ready` arrived. */
function open(token, onMessage) {
  return new Promise((resolve, reject) => {
    const ws = new WebSocket(config.url, { perMessageDeflate: false, maxPayload: 64 << 20 });
    ws.on('open', () => ws.send(JSON.stringify({ type: 'auth', token })));
    ws.once('message', (data) => {
      const event = JSON.parse(data.toString());
      if (event.type !== 'ready') return reject(new Error('auth refused: ' + data));
      if (onMessage) ws.on('message', onMessage);
      resolve(ws);
    });
    ws.on('error', reject);
    ws.on('close', (code) => { if (!closing) fail(`a connection closed with ${code}`); });
  });
}

let closing = false;

/** Open connections with at most `config.concurrency` handshakes at once. */
async function openAll(tokens, makeHandler) {
  const sockets = new Array(tokens.length);
  let next = 0;
  const worker = async () => {
    while (next < tokens.length) {
      const i = next++;
      sockets[i] = await open(tokens[i], makeHandler ? makeHandler(i) : null);
    }
  };
  await Promise.all(Array.from({ length: Math.min(config.concurrency || 50, tokens.length) }, worker));
  return sockets;
}

function quantile(sorted, q) {
  if (sorted.length === 0) return null;
  return sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))];
}

const REF = '"ref":"';
function refOf(text) {
  const start = text.indexOf(REF) + REF.length;
  return text.slice(start, text.indexOf('"', start));
}

async function load() {
  const started = now();
  const idle = await openAll(config.idle || []);
  say({ event: 'idle', connections: idle.length, open_ms: now() - started });
  await nextLine();

  const senders = config.senders;           // [{token, room}]
  const expect = config.expect;             // deliveries per send, the sender's own included
  const window = config.window;
  const body = 'x'.repeat(config.body_bytes || 64);
  const pending = new Map();                // ref -> {t0, sender, left, acked, measured}
  const inflight = new Array(senders.length).fill(0);
  const counters = new Array(senders.length).fill(0);
  let measuring = false, stopped = false;
  let completed = 0, deliveries = 0, errors = 0, firstError = null, sentMeasured = 0;
  const ackLatency = [], deliveryLatency = [];

  const finish = (ref, entry) => {
    pending.delete(ref);
    inflight[entry.sender] -= 1;
    if (entry.measured) completed += 1;
    if (config.rate === 0 && !stopped) sendFrom(entry.sender);
  };
  const onMessage = (ownerIsSender) => (data) => {
    const text = data.toString();
    const t = now();
    if (text.startsWith('{"type":"message"')) {
      const ref = refOf(text);
      const entry = pending.get(ref);
      if (entry === undefined) return;
      if (entry.measured) {
        deliveries += 1;
        if (!(ownerIsSender && ownerIsSender.index === entry.sender)) deliveryLatency.push(t - entry.t0);
      }
      entry.left -= 1;
      if (entry.left === 0 && entry.acked) finish(ref, entry);
    } else if (text.startsWith('{"type":"ack"')) {
      const ref = refOf(text);
      const entry = pending.get(ref);
      if (entry === undefined) return;
      entry.acked = true;
      if (entry.measured) ackLatency.push(t - entry.t0);
      if (entry.left === 0) finish(ref, entry);
    } else if (text.startsWith('{"type":"error"')) {
      errors += 1;
      if (firstError === null) firstError = text;
    }
  };

  let sockets;
  function sendFrom(i) {
    while (inflight[i] < window && !stopped) {
      const ref = `${run}.${i}.${counters[i]++}`;
      pending.set(ref, { t0: now(), sender: i, left: expect, acked: false, measured: measuring });
      if (measuring) sentMeasured += 1;
      inflight[i] += 1;
      sockets[i].send(JSON.stringify({ type: 'send', ref, room_id: senders[i].room, body }));
      if (config.rate > 0) return;
    }
  }

  const t1 = now();
  sockets = await openAll(senders.map((s) => s.token), (i) => onMessage({ index: i }));
  const receivers = await openAll(config.receivers || [], () => onMessage(null));
  say({ event: 'active', connections: sockets.length + receivers.length, open_ms: now() - t1 });
  await nextLine();

  const t0 = now();
  let cpu0 = process.cpuUsage();
  let measureStart = t0;
  const warmupEnd = t0 + config.warmup * 1000;
  const end = warmupEnd + config.duration * 1000;
  let behind = 0;
  await new Promise((resolve) => {
    let sent = 0, turn = 0;
    if (config.rate === 0) senders.forEach((_, i) => sendFrom(i));
    const tick = () => {
      const t = now();
      if (!measuring && t >= warmupEnd) {
        measuring = true;
        measureStart = t;
        cpu0 = process.cpuUsage();
        say({ event: 'measure' });
      }
      if (t >= end) return resolve();
      if (config.rate > 0) {
        const due = Math.floor(((t - t0) / 1000) * config.rate) - sent;
        for (let k = 0; k < due; k++) {
          let tried = 0;
          while (inflight[turn] >= window && tried < senders.length) { turn = (turn + 1) % senders.length; tried++; }
          if (tried === senders.length) { behind += due - k; sent += due - k; break; }
          sendFrom(turn);
          turn = (turn + 1) % senders.length;
          sent += 1;
        }
      }
      setTimeout(tick, 1);
    };
    tick();
  });
  stopped = true;
  const elapsed = (now() - measureStart) / 1000;
  const cpu = process.cpuUsage(cpu0);
  ackLatency.sort((a, b) => a - b);
  deliveryLatency.sort((a, b) => a - b);
  say({
    event: 'result',
    seconds: elapsed,
    sent: sentMeasured,
    completed,
    messages_per_s: completed / elapsed,
    deliveries_per_s: deliveries / elapsed,
    sent_per_s: sentMeasured / elapsed,
    behind,
    errors,
    first_error: firstError,
    ack_p50_ms: quantile(ackLatency, 0.5),
    ack_p99_ms: quantile(ackLatency, 0.99),
    delivery_p50_ms: quantile(deliveryLatency, 0.5),
    delivery_p99_ms: quantile(deliveryLatency, 0.99),
    loadgen_cpu: (cpu.user + cpu.system) / 1e6 / elapsed,
  });
  closing = true;
  for (const ws of [...idle, ...sockets, ...receivers]) ws.terminate();
  process.exit(0);
}

/** Send `count` messages from one connection as fast as `window` allows; wait for every ack. */
async function fill() {
  const { token, room, count, window } = config.fill;
  const body = 'x'.repeat(config.body_bytes || 64);
  let sent = 0, acked = 0;
  const started = now();
  await new Promise((resolve) => {
    let ws;
    const pump = () => {
      while (sent - acked < window && sent < count) {
        ws.send(JSON.stringify({ type: 'send', ref: `${run}.f${sent++}`, room_id: room, body }));
      }
    };
    open(token, (data) => {
      const text = data.toString();
      if (text.startsWith('{"type":"ack"')) {
        acked += 1;
        if (acked === count) resolve();
        else pump();
      } else if (text.startsWith('{"type":"error"')) fail('fill: ' + text);
    }).then((socket) => { ws = socket; pump(); }, (e) => fail(String(e)));
  });
  say({ event: 'result', messages: count, seconds: (now() - started) / 1000 });
  closing = true;
  process.exit(0);
}

/** Connect, then `sync` from `after_seq` until nothing more is missing; time each part. */
async function catchup() {
  const { token, room, after_seq: afterSeq } = config.catchup;
  const t0 = now();
  let received = 0, syncs = 0, resolveDone;
  const done = new Promise((resolve) => { resolveDone = resolve; });
  let ws;
  let highest = afterSeq;
  const sync = () => {
    syncs += 1;
    ws.send(JSON.stringify({ type: 'sync', ref: `s${syncs}`, rooms: { [room]: highest } }));
  };
  ws = await open(token, (data) => {
    const text = data.toString();
    if (text.startsWith('{"type":"message"')) {
      received += 1;
    } else if (text.startsWith('{"type":"synced"')) {
      const event = JSON.parse(text);
      highest = event.rooms[room];
      if (event.has_more && event.has_more[room]) sync();
      else resolveDone();
    } else if (text.startsWith('{"type":"error"')) fail('catchup: ' + text);
  });
  const t1 = now();
  sync();
  await done;
  const t2 = now();
  say({ event: 'result', connect_ms: t1 - t0, sync_ms: t2 - t1, messages: received, syncs });
  closing = true;
  process.exit(0);
}

const modes = { load, fill, catchup };
modes[config.mode || 'load']().catch((e) => fail(String(e && e.stack || e)));
