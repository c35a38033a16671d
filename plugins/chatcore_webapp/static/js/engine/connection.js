// The connection (chatcore/client/connection.py): one WebSocket to `ws_url` of /api/v1/info,
// kept up until stop() or the login ends. States: offline (waiting `retryIn` ms before the
// next attempt) -> connecting (info, open, `auth`) -> catching_up (`ready` came; the owner runs
// the catch-up and calls markReady()) -> ready (live).
//
// Reconnects wait with exponential backoff and jitter: 0.5 s doubling to 30 s, each wait drawn
// between half and all of it (clients cut off together do not come back together); it starts
// over once a connection reached ready. The browser's 'online' event retries at once. An
// application ping goes out every 25 s; when no frame at all arrives within 10 s of it, the
// socket is dead though it may look open (a NAT that forgot it) and is replaced. Any frame
// counts: during a long catch-up the pong waits behind the messages.
//
// Close 4401 (or a refused `auth`) means the login may have ended: the tokens are refreshed
// once; a refused refresh ends the login (onLoggedOut). Every other close reconnects.

import {ApiError} from './api.js';

export const BACKOFF_MIN_MS = 500;
export const BACKOFF_MAX_MS = 30_000;
export const PING_INTERVAL_MS = 25_000;
export const PING_TIMEOUT_MS = 10_000;
/** How long `auth` may wait for `ready`. */
const AUTH_TIMEOUT_MS = 15_000;
export const PING_REF_PREFIX = 'ping-';

/** Waits between reconnects: `min` doubling to `max`, each drawn in [d/2, d]. */
export class Backoff {
  constructor(min = BACKOFF_MIN_MS, max = BACKOFF_MAX_MS) {
    this.min = min;
    this.max = max;
    this.delay = min;
  }

  reset() { this.delay = this.min; }

  /** @returns {number} the next wait in ms */
  next() {
    const d = this.delay;
    this.delay = Math.min(d * 2, this.max);
    return d / 2 + Math.random() * (d / 2);
  }
}

/** One WebSocket kept up; frames go to the owner's handlers. */
export class Connection {
  /**
   * @param {{api: import('./api.js').Api,
   *   info: () => Promise<object>,
   *   onState: (state: string, detail: string, retryIn: number|null) => void,
   *   onReady: (frame: object, link: object) => (void|Promise<void>),
   *   onFrame: (frame: object, link: object) => (void|Promise<void>),
   *   onClosed: (link: object) => (void|Promise<void>),
   *   onLoggedOut: () => void}} parts
   */
  constructor(parts) {
    this.parts = parts;
    this.state = 'offline';
    this.detail = '';
    this.retryAt = null;
    this.link = null;
    this._running = false;
    this._timer = null;
    this._backoff = new Backoff();
    this._onOnline = () => { if (this._running && this.state === 'offline') this._attemptNow(); };
    this._onOffline = () => { if (this.link) this._drop(this.link, 'The device is offline.'); };
  }

  /** ms until the next attempt while offline, else null. */
  get retryIn() {
    return this.state === 'offline' && this.retryAt !== null ? Math.max(0, this.retryAt - Date.now()) : null;
  }

  /** Whether it connects (or keeps reconnecting): between start() and stop(). */
  get running() {
    return this._running;
  }

  /** Whether a connection is up and authenticated (catching up or ready). */
  get connected() {
    return this.link !== null && (this.state === 'catching_up' || this.state === 'ready');
  }

  /** Connect (and keep reconnecting) until stop(); idempotent. */
  start() {
    if (this._running) return;
    this._running = true;
    globalThis.addEventListener?.('online', this._onOnline);
    globalThis.addEventListener?.('offline', this._onOffline);
    this._attemptNow();
  }

  /** Close the WebSocket and stop reconnecting. */
  stop(detail = '') {
    this._running = false;
    globalThis.removeEventListener?.('online', this._onOnline);
    globalThis.removeEventListener?.('offline', this._onOffline);
    clearTimeout(this._timer);
    this._timer = null;
    this.retryAt = null;
    if (this.link) this._drop(this.link, detail, {stopping: true});
    this._setState('offline', detail, null);
  }

  /** Retry at once when offline (a user's "retry now", the network coming back). */
  retryNow() {
    if (this._running && this.state === 'offline') this._attemptNow();
  }

  /**
   * Write a frame on the current connection.
   * @returns {boolean} false (nothing sent) when no connection is up
   */
  send(frame) {
    const link = this.link;
    if (!link || !this.connected) return false;
    return link.write(frame);
  }

  /** The owner's catch-up finished on `link`: live. */
  markReady(link) {
    if (link !== this.link || link.ended) return;
    link.reachedReady = true;
    this._backoff.reset();
    this._setState('ready', '', null);
  }

  _setState(state, detail = '', retryIn = null) {
    if (state === this.state && detail === this.detail && retryIn === null) return;
    this.state = state;
    this.detail = detail;
    this.parts.onState(state, detail, retryIn);
  }

  _attemptNow() {
    clearTimeout(this._timer);
    this._timer = null;
    this.retryAt = null;
    this._attempt().catch((err) => console.warn('connection attempt failed', err));
  }

  _schedule(detail) {
    if (!this._running) return;
    const delay = this._backoff.next();
    this.retryAt = Date.now() + delay;
    this._setState('offline', detail, Math.round(delay));
    clearTimeout(this._timer);
    this._timer = setTimeout(() => this._attemptNow(), delay);
  }

  async _attempt() {
    if (!this._running || this.link) return;
    this._setState('connecting');
    let info;
    let token;
    try {
      info = await this.parts.info();
      token = await this.parts.api.accessToken();
    } catch (err) {
      if (err instanceof ApiError && err.status === 401) return this._loggedOut();
      return this._schedule(err && err.message ? err.message : 'The server cannot be reached.');
    }
    if (!this._running || this.link) return;
    let ws;
    try {
      ws = new WebSocket(info.ws_url);
    } catch (err) {
      return this._schedule(`Cannot open the WebSocket at ${info.ws_url}.`);
    }
    const link = new Link(this, ws, token);
    this.link = link;
  }

  /** A link ended (closed by either side, or dropped as dead): clean up, then decide. */
  async _ended(link, code, reason, {stopping = false} = {}) {
    if (link.ended) return;
    link.ended = true;
    link.dispose();
    if (this.link === link) this.link = null;
    try {
      await this.parts.onClosed(link);
    } catch (err) {
      console.warn('connection: cleanup failed', err);
    }
    if (stopping || !this._running) return;
    if (link.reachedReady) this._backoff.reset();
    if (code === 4401 || link.authRefused) {
      try {
        await this.parts.api.refresh(link.token);
      } catch (err) {
        if (err instanceof ApiError && err.status === 401) return this._loggedOut();
        return this._schedule(err.message || 'The login could not be renewed.');
      }
      return this._schedule('The login was renewed; reconnecting.');
    }
    this._schedule(reason || describeClose(code));
  }

  _drop(link, detail, options) {
    // Do not wait for a close handshake on a socket that may carry nothing any more.
    try { link.ws.close(1000); } catch { /* closed */ }
    this._ended(link, 1006, detail, options);
  }

  _loggedOut() {
    this._running = false;
    clearTimeout(this._timer);
    this.retryAt = null;
    this._setState('offline', 'The login ended; log in again.', null);
    this.parts.onLoggedOut();
  }
}

function describeClose(code) {
  switch (code) {
    case 1001: return 'The server is restarting.';
    case 1009: return 'A frame was too large for the server.';
    case 1013: return 'The server is busy; trying again.';
    case 4408: return 'The server did not get the login in time.';
    case 4429: return 'Too many frames were sent; slowing down.';
    default: return 'The connection was lost.';
  }
}

/** One open WebSocket: authentication, frames, pings. */
class Link {
  constructor(conn, ws, token) {
    this.conn = conn;
    this.ws = ws;
    this.token = token;
    this.id = crypto.randomUUID();
    this.authed = false;
    this.authRefused = false;
    this.reachedReady = false;
    this.ended = false;
    this.lastRx = performance.now();
    this.written = 0; // frames written, for the flood floor of the sender
    this._queue = Promise.resolve();
    this._pingTimer = null;
    this._unanswered = [];
    ws.onopen = () => {
      this.write({type: 'auth', token});
      this._authTimer = setTimeout(() => conn._drop(this, 'The server did not answer the login in time.'), AUTH_TIMEOUT_MS);
    };
    ws.onmessage = (ev) => this._received(ev.data);
    ws.onclose = (ev) => {
      // Frames read before the close are handled first.
      this._queue.then(() => conn._ended(this, ev.code, ev.reason));
    };
    ws.onerror = () => { /* a close follows */ };
  }

  /**
   * @returns {number|false} the frame's position among those written on this connection
   *   (`auth` is 1; the sender keeps under flood control with it), false when not written
   */
  write(frame) {
    if (this.ended || this.ws.readyState !== WebSocket.OPEN) return false;
    try {
      this.ws.send(JSON.stringify(frame));
      this.written += 1;
      return this.written;
    } catch {
      return false;
    }
  }

  dispose() {
    clearTimeout(this._authTimer);
    clearInterval(this._pingTimer);
    this.ws.onopen = this.ws.onmessage = this.ws.onclose = this.ws.onerror = null;
  }

  _received(data) {
    this.lastRx = performance.now();
    let frame;
    try {
      frame = JSON.parse(typeof data === 'string' ? data : new TextDecoder().decode(data));
    } catch {
      console.warn('ignored a frame from the server that is not JSON');
      return;
    }
    if (!frame || typeof frame !== 'object' || Array.isArray(frame)) return;
    // Frames are handled one after the other, in arrival order (each may write IndexedDB).
    this._queue = this._queue.then(() => this._handle(frame)).catch((err) => {
      console.warn(`a ${frame.type} frame could not be handled`, err);
    });
  }

  async _handle(frame) {
    if (this.ended) return;
    const conn = this.conn;
    if (!this.authed) {
      clearTimeout(this._authTimer);
      if (frame.type === 'ready') {
        this.authed = true;
        conn._setState('catching_up');
        this._startPings();
        await conn.parts.onReady(frame, this);
      } else {
        this.authRefused = frame.type === 'error' && frame.code === 'unauthorized';
        // The server closes (4401, 1013...); onclose decides.
      }
      return;
    }
    if (frame.type === 'pong') return;
    await conn.parts.onFrame(frame, this);
  }

  _startPings() {
    this._pingTimer = setInterval(() => {
      const now = performance.now();
      this._unanswered = this._unanswered.filter((sent) => sent >= this.lastRx);
      if (this._unanswered.length && now - this._unanswered[0] >= PING_TIMEOUT_MS) {
        this.conn._drop(this, `No answer from the server for ${PING_TIMEOUT_MS / 1000} s; the connection is dead.`);
        return;
      }
      if (!this._nextPing || now >= this._nextPing) {
        this.write({type: 'ping', ref: PING_REF_PREFIX + crypto.randomUUID()});
        this._unanswered.push(now);
        this._nextPing = now + PING_INTERVAL_MS;
      }
    }, 1000);
    this._nextPing = performance.now() + PING_INTERVAL_MS;
  }
}
