// The outbox (chatcore/client/outbox.py + sender.py): every send is written to IndexedDB with
// its local echo BEFORE any network call, then sent over the WebSocket with its `ref` (the
// idempotency key: the same ref on every retry, so the server stores it once), in queue order,
// a window at a time, paced below the server's flood control; a send that flood control might
// refuse goes alone (nothing is written after it until it is answered), so no later send of
// the room is accepted before it. Only one tab of the origin
// sends at a time (Web Lock 'chatcore-outbox'); the others queue into the same store and wake
// it over a BroadcastChannel.
//
// Entry states: pending (queued, or queued again after a disconnect), uploading (a file on its
// way to POST /media), sending (on the wire, no ack yet), failed (refused for good: `error`).
// An acked entry leaves the store and is announced once as `sent` with its message.

import {tx, req} from './db.js';
import {withLock, ApiError, isUnavailable} from './api.js';
import {upload} from './media.js';

/** Error codes after which an entry is sent again later (the others fail it). */
export const RETRIED_CODES = new Set(['rate_limited', 'internal', 'unavailable']);
const ON_ITS_WAY = 'This message is already on its way; it can be edited or deleted once it is sent.';
const WINDOW = 64;
const RETRY_MIN_MS = 500;
const RETRY_MAX_MS = 30_000;
/** The outbox is read again at least this often (another context may have queued a send). */
const POLL_MS = 5000;
/** Of the server's flood control: the share of its rate, and what its burst keeps back. */
const PACE_RATE_SHARE = 0.9;
const PACE_BURST_RESERVE = 10;

let lastOrder = 0;
/** A send-order key, increasing within this context and (by the clock) across contexts. */
function nextOrder() {
  const now = performance.timeOrigin + performance.now();
  lastOrder = Math.max(now, lastOrder + 0.001);
  return lastOrder;
}

/** An entry without what cannot or need not travel in events (the Blob stays in the store). */
export function publicEntry(entry) {
  const {blob, order, transmitted, ...rest} = entry; // eslint-disable-line no-unused-vars
  if (blob) rest.has_blob = true;
  return rest;
}

/** The `send` frame of an entry. */
export function sendFrame(entry) {
  const frame = {type: 'send', ref: entry.ref, room_id: entry.room_id, kind: entry.kind || 'text'};
  if (entry.body !== undefined && entry.body !== null) frame.body = entry.body;
  if (entry.media_id) frame.media_id = entry.media_id;
  if (entry.sticker_id) frame.sticker_id = entry.sticker_id;
  if (entry.reply_to) frame.reply_to = entry.reply_to;
  return frame;
}

/** An error for an outbox operation that cannot be done (code 'outbox'). */
export class OutboxError extends Error {
  constructor(message, entry) {
    super(message);
    this.name = 'OutboxError';
    this.code = 'outbox';
    this.entry = entry ? publicEntry(entry) : undefined;
  }
}

/** The outbox's operations; announces every change as `outbox {entry}`. */
export class Outbox {
  /** @param {{emit: (type: string, detail: object) => void}} parts */
  constructor({emit}) {
    this._emit = emit;
    this._listeners = new Set();
    this._channel = typeof BroadcastChannel === 'function' ? new BroadcastChannel('chatcore-outbox') : null;
    if (this._channel) {
      this._channel.onmessage = (e) => {
        const d = e.data || {};
        if (d.entry) this._emit('outbox', {entry: d.entry});
        this._wake();
      };
    }
  }

  /** Call `fn` whenever the outbox changes (here or in another context). */
  onChange(fn) {
    this._listeners.add(fn);
    return () => this._listeners.delete(fn);
  }

  _wake() {
    for (const fn of this._listeners) fn();
  }

  /** Announce an entry's change here and to the other contexts, and wake the sender. */
  announce(entry) {
    const pub = publicEntry(entry);
    this._emit('outbox', {entry: pub});
    if (this._channel) this._channel.postMessage({entry: pub});
    this._wake();
  }

  /**
   * Queue a new entry (one transaction, before any network call).
   * @param {object} fields room_id, kind, body, media_id?, sticker_id?, reply_to?, blob?, filename?
   * @returns {Promise<object>} the entry
   */
  async add(fields) {
    const entry = {
      ref: crypto.randomUUID(), kind: 'text', body: '', ...fields,
      state: 'pending', created_ts: Date.now(), order: nextOrder(),
    };
    for (const k of Object.keys(entry)) if (entry[k] === undefined) delete entry[k];
    await tx('outbox', 'readwrite', (s) => req(s.add(entry)));
    this.announce(entry);
    return publicEntry(entry);
  }

  /** @returns {Promise<object[]>} entries (of a room, or all) in send order, with their Blobs. */
  async list(roomId) {
    const all = await tx('outbox', 'readonly', (s) =>
      req(roomId ? s.index('room_id').getAll(roomId) : s.getAll()));
    return all.sort((a, b) => a.order - b.order);
  }

  /** @returns {Promise<object|undefined>} the stored entry. */
  get(ref) {
    return tx('outbox', 'readonly', (s) => req(s.get(ref)));
  }

  /**
   * Change a stored entry: `fn(entry)` returns the new entry, or null to leave it.
   * @returns {Promise<object|null>} the entry after the change (null: gone or unchanged)
   */
  change(ref, fn) {
    return tx('outbox', 'readwrite', async (s) => {
      const entry = await req(s.get(ref));
      if (!entry) return null;
      const next = fn(entry);
      if (!next) return null;
      s.put(next);
      return next;
    });
  }

  /** Mark an entry failed for good, with the server's reason; announced. */
  async fail(ref, code, message) {
    const entry = await this.change(ref, (e) => ({...e, state: 'failed', error: {code, message}, progress: undefined}));
    if (entry) this.announce(entry);
    return entry;
  }

  /** Queue a failed entry again (same ref). */
  async resend(ref) {
    const entry = await this.change(ref, (e) => (e.state === 'failed'
      ? {...e, state: 'pending', error: undefined} : null));
    if (entry) this.announce(entry);
    const now = entry || await this.get(ref);
    if (!now) throw new OutboxError(`No message ${ref} in the outbox.`);
    return publicEntry(now);
  }

  /** Change the text of an entry never transmitted, or failed (and queue it again). */
  async edit(ref, body) {
    let refused = null;
    const entry = await this.change(ref, (e) => {
      if (!editable(e)) { refused = new OutboxError(ON_ITS_WAY, e); return null; }
      if (e.kind !== 'text' && e.kind !== 'media') { refused = new OutboxError('Only a text message can be edited.', e); return null; }
      return {...e, body, state: 'pending', error: undefined};
    });
    if (refused) throw refused;
    if (!entry) throw new OutboxError(`No message ${ref} in the outbox.`);
    this.announce(entry);
    return publicEntry(entry);
  }

  /** Drop an entry never transmitted, or failed; announced as `cancelled`. */
  async cancel(ref) {
    let refused = null;
    const removed = await tx('outbox', 'readwrite', async (s) => {
      const e = await req(s.get(ref));
      if (!e) return null;
      if (!editable(e)) { refused = new OutboxError(ON_ITS_WAY, e); return null; }
      s.delete(ref);
      return e;
    });
    if (refused) throw refused;
    if (!removed) throw new OutboxError(`No message ${ref} in the outbox.`);
    const cancelled = {...removed, state: 'cancelled'};
    this.announce(cancelled);
    return publicEntry(cancelled);
  }

  /** What was on the wire or uploading goes back to pending (a disconnect); announced. */
  async resetSending() {
    const changed = await tx('outbox', 'readwrite', async (s) => {
      const out = [];
      for (const e of await req(s.getAll())) {
        if (e.state === 'sending' || e.state === 'uploading') {
          const next = {...e, state: 'pending'};
          delete next.progress;
          s.put(next);
          out.push(next);
        }
      }
      return out;
    });
    for (const e of changed) this.announce(e);
  }

  /** Entries the store removed because their message is stored: announced as sent. */
  acked(pairs) {
    for (const {entry, message} of pairs) this.announce({...entry, state: 'sent', message});
  }
}

function editable(e) {
  return e.state === 'failed' || (e.state === 'pending' && !e.transmitted);
}

/** A token bucket just under the server's WebSocket flood control, null when unknown. */
export function pacedBelow(limits) {
  const rate = limits && limits.ws_rate_per_second;
  const burst = limits && limits.ws_rate_burst;
  if (!rate || !burst) return null;
  return new TokenBucket(rate * PACE_RATE_SHARE, Math.max(1, burst - PACE_BURST_RESERVE));
}

/** Answers read within this share of the bucket's refill time are kept as one (the newer). */
const ANSWER_SLOT_SHARE = 1 / 32;

/**
 * What the server's flood control surely lets through (chatcore/client/flood.py): a floor
 * under the session's bucket. The server takes a token for every frame it reads after `auth`
 * from a bucket of `ws_rate_burst` refilling at `ws_rate_per_second`, in the order written;
 * the client never sees when it reads a frame, only when an answer arrives. So: the burst
 * less every frame written (`auth` counted too), or, for each answered frame, the refill of
 * the time since its answer arrived (capped at the burst) less the frames written after it.
 */
export class FloodFloor {
  constructor(limits) {
    const rate = limits && limits.ws_rate_per_second;
    const burst = limits && limits.ws_rate_burst;
    this.rate = rate && burst ? rate : Infinity;
    this.burst = rate && burst ? burst : Infinity;
    this._answers = []; // [position of an answered frame, when its answer was read (ms)]
    this._refillMs = Number.isFinite(this.burst) ? (this.burst / this.rate) * 1000 : 0;
  }

  /** The frame at `position` was answered, read at `now` (performance.now()). */
  answered(position, now) {
    if (!Number.isFinite(this.burst)) return;
    const answers = this._answers;
    const last = answers[answers.length - 1];
    if (last && last[0] >= position) return; // a later frame's answer, read earlier, bounds better
    // The answers kept stand a slot apart, but for the newest, which moves on.
    const n = answers.length;
    if (n >= 2 && answers[n - 1][1] - answers[n - 2][1] < this._refillMs * ANSWER_SLOT_SHARE) answers[n - 1] = [position, now];
    else answers.push([position, now]);
    while (answers.length > 1 && now - answers[1][1] >= this._refillMs) answers.shift();
  }

  /** Whether the next frame written after `ahead` more cannot be refused, `written` so far. */
  sure(written, now, ahead = 0) {
    const needed = 1 + ahead + written; // what a bound must reach, frames written included
    if (this.burst >= needed) return true;
    return this._answers.some(([position, at]) =>
      Math.min(this.burst, this.rate * ((now - at) / 1000)) + position >= needed);
  }
}

class TokenBucket {
  constructor(rate, burst) {
    this.rate = rate;
    this.burst = burst;
    this.tokens = burst;
    this.at = performance.now();
  }

  /** Take one token: 0 when taken, else the ms to wait for one (nothing taken). */
  take() {
    const now = performance.now();
    this.tokens = Math.min(this.burst, this.tokens + ((now - this.at) / 1000) * this.rate);
    this.at = now;
    if (this.tokens >= 1) { this.tokens -= 1; return 0; }
    return ((1 - this.tokens) / this.rate) * 1000;
  }
}

/**
 * Sends the outbox on one connection (chatcore/client/sender.py): pending entries in queue
 * order, at most a window in flight, each marked `sending` before its frame is written. A file
 * entry is uploaded first and the entries after it wait, so the room's order holds.
 */
export class Sender {
  /**
   * @param {{outbox: Outbox, api: import('./api.js').Api,
   *   write: (frame: object) => number|false, written: () => number,
   *   limits?: object, emit: (type: string, detail: object) => void}} parts
   *   `write` answers the frame's position on the connection (false: not written), and
   *   `written` how many frames the connection has written (`auth` included).
   */
  constructor({outbox, api, write, written, limits, emit}) {
    this.outbox = outbox;
    this.api = api;
    this._write = write;
    this._writtenCount = written;
    this._emit = emit;
    this._pace = pacedBelow(limits);
    this._flood = new FloodFloor(limits);
    this._positions = new Map(); // ref -> where it was first written on this connection
    this._alone = null; // a send flood control might refuse: nothing is written after it
    this._inFlight = new Map(); // ref -> true, in the order written
    this._written = new Set();
    this._again = new Set();
    this._limit = WINDOW;
    this._resumeAt = 0;
    this._failures = 0;
    this._stopped = false;
    this._wakeFn = null;
    this._timer = null;
    this._unlisten = outbox.onChange(() => this._wake());
    this._abort = new AbortController();
  }

  /** Send until `stop()`; holds the origin's outbox lock meanwhile. @returns {Promise<void>} */
  run() {
    return withLock('chatcore-outbox', async () => {
      // What a sender that is gone (a closed tab, an earlier connection) left on the wire
      // goes again, with the same refs.
      await this.outbox.resetSending();
      while (!this._stopped) {
        const woke = new Promise((resolve) => { this._wakeFn = resolve; });
        let more = false;
        try {
          more = await this._sendSome();
        } catch (err) {
          if (this._stopped) break;
          console.warn('outbox: sending failed', err);
          this._resumeAt = performance.now() + RETRY_MIN_MS;
        }
        if (more) continue;
        const wait = Math.max(0, Math.min(POLL_MS, this._resumeAt > performance.now()
          ? this._resumeAt - performance.now() : POLL_MS));
        this._timer = setTimeout(() => this._wake(), wait);
        await woke;
        clearTimeout(this._timer);
      }
      // The connection is gone: what it had on the wire goes back to pending.
      await this.outbox.resetSending();
    }, {signal: this._abort.signal}).catch((err) => {
      if (err && err.name === 'AbortError') return; // stopped while waiting for the lock
      throw err;
    });
  }

  /** The connection ended. */
  stop() {
    this._stopped = true;
    this._unlisten();
    this._abort.abort();
    if (this._uploadAbort) this._uploadAbort.abort();
    this._wake();
  }

  _wake() {
    const fn = this._wakeFn;
    this._wakeFn = null;
    if (fn) fn();
  }

  /** `ref` was acked (or its message arrived): its slot is free; the window grows back. */
  done(ref) {
    if (this._inFlight.has(ref)) {
      this._settled(ref);
      this._inFlight.delete(ref);
      this._limit = Math.min(this._limit * 2, WINDOW);
      this._failures = 0;
      this._wake();
    }
  }

  /**
   * An `error` frame with `ref`: true when it answers one of this sender's frames.
   * rate_limited / internal / unavailable: written again later, in order; others: failed.
   */
  async refused(ref, code, message, retryAfterMs) {
    if (!this._inFlight.has(ref)) {
      if (!this._written.has(ref)) return false;
      this._settled(ref); // a late answer to a frame written again since
      return true;
    }
    this._settled(ref);
    if (code === 'rate_limited') {
      this._againFrom(ref, Math.max(typeof retryAfterMs === 'number' ? retryAfterMs : 1000, 1));
    } else if (RETRIED_CODES.has(code)) {
      this._failures += 1;
      this._againFrom(ref, Math.min(RETRY_MIN_MS * 2 ** (this._failures - 1), RETRY_MAX_MS));
    } else {
      this._inFlight.delete(ref);
      await this.outbox.fail(ref, code, message);
    }
    return true;
  }

  /** The server answered a frame of `ref`: it read it, which raises the flood floor. */
  _settled(ref) {
    const position = this._positions.get(ref);
    if (position !== undefined) this._flood.answered(position, performance.now());
    if (ref === this._alone) { this._alone = null; this._wake(); }
  }

  _againFrom(ref, delayMs) {
    const refs = [...this._inFlight.keys()];
    for (const later of refs.slice(refs.indexOf(ref))) {
      this._inFlight.delete(later);
      this._again.add(later);
    }
    this._limit = 1;
    this._resumeAt = Math.max(this._resumeAt, performance.now() + delayMs);
    this._wake();
  }

  /** Write what the window allows; true when more can be done at once. */
  async _sendSome() {
    if (this._stopped || this._alone !== null || this._resumeAt > performance.now()) return false;
    const free = this._limit - this._inFlight.size;
    if (free <= 0) return false;
    const window = [];
    let uploadEntry = null;
    let fileNext = false;
    const chosen = await tx('outbox', 'readwrite', async (s) => {
      const all = (await req(s.getAll())).sort((a, b) => a.order - b.order);
      for (const e of all) {
        if (this._inFlight.has(e.ref)) continue;
        // Pending ones, and those this sender must write again (still 'sending').
        if (e.state !== 'pending' && !this._again.has(e.ref)) continue;
        if (e.kind === 'media' && !e.media_id) {
          if (window.length) fileNext = true;
          else uploadEntry = e;
          break;
        }
        const unsure = !this._flood.sure(this._writtenCount(), performance.now(), window.length);
        if (unsure && window.length) break; // it goes alone, after these
        if (this._pace) {
          const wait = this._pace.take();
          if (wait > 0) { this._resumeAt = performance.now() + wait; break; }
        }
        window.push(e);
        if (unsure || window.length >= free) break;
      }
      const marked = [];
      for (const e of window) {
        const next = {...e, state: 'sending', transmitted: true};
        s.put(next);
        marked.push(next);
      }
      return marked;
    });
    if (this._stopped) return false;
    for (const e of chosen) {
      this._inFlight.set(e.ref, true);
      this._written.add(e.ref);
      this._again.delete(e.ref);
    }
    // Whether a frame is sure is decided as it is written (a ping or typing may have gone
    // since the window was chosen); a write is synchronous, so nothing comes in between.
    for (const e of chosen) {
      if (this._again.has(e.ref)) break; // an earlier one was refused: these go again later
      if (!this._inFlight.has(e.ref)) continue; // settled meanwhile
      if (this._alone !== null) { // one that might be refused is on the wire: after its answer
        this._inFlight.delete(e.ref);
        this._again.add(e.ref);
        continue;
      }
      if (!this._flood.sure(this._writtenCount(), performance.now())) this._alone = e.ref;
      const position = this._write(sendFrame(e));
      if (!position) { this._stopped = true; return false; }
      if (!this._positions.has(e.ref)) this._positions.set(e.ref, position);
      this.outbox.announce(e);
    }
    if (uploadEntry) return this._upload(uploadEntry);
    return fileNext;
  }

  async _upload(entry) {
    if (!entry.blob) {
      await this.outbox.fail(entry.ref, 'not_found', 'The file of this message is no longer on this device.');
      return true;
    }
    const uploading = await this.outbox.change(entry.ref, (e) => ({...e, state: 'uploading', progress: 0}));
    if (!uploading) return true;
    this.outbox.announce(uploading);
    let lastTick = 0;
    this._uploadAbort = new AbortController();
    let media;
    try {
      media = await upload(this.api, entry.blob, {
        filename: entry.filename,
        signal: this._uploadAbort.signal,
        onProgress: (p) => {
          const now = performance.now();
          if (p < 1 && now - lastTick < 100) return; // at most 10 events a second
          lastTick = now;
          this._emit('upload', {ref: entry.ref, progress: p});
          this._emit('outbox', {entry: publicEntry({...uploading, progress: p})});
        },
      });
    } catch (err) {
      if (this._stopped || (err && err.name === 'AbortError')) return false;
      if (err instanceof ApiError && !isUnavailable(err) && !RETRIED_CODES.has(err.code) && err.status !== 401) {
        await this.outbox.fail(entry.ref, err.code, err.message);
        return true;
      }
      this._failures += 1;
      const delay = err.retryAfterMs || Math.min(RETRY_MIN_MS * 2 ** (this._failures - 1), RETRY_MAX_MS);
      const back = await this.outbox.change(entry.ref, (e) => ({...e, state: 'pending', progress: undefined}));
      if (back) this.outbox.announce(back);
      this._resumeAt = performance.now() + delay;
      return false;
    } finally {
      this._uploadAbort = null;
    }
    const ready = await this.outbox.change(entry.ref, (e) => ({
      ...e, state: 'pending', media_id: media.id, media, progress: 1,
    }));
    if (ready) this.outbox.announce(ready);
    return true;
  }
}
