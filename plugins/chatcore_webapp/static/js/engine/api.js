// The REST client of /api/v1 (protocol.md), with the login's tokens kept fresh.
// Works in pages and in the service worker: the tokens live in IndexedDB (kv 'account'), and a
// refresh is single-flight across every context of the origin (Web Locks), since a refresh
// token works once and presenting a spent one ends the whole login.

import {kvGet, kvSet, kvDelete} from './db.js';

/** The contract's error codes by HTTP status, for answers without an error body (a proxy). */
const CODES = {
  400: 'bad_request', 401: 'unauthorized', 403: 'forbidden', 404: 'not_found',
  405: 'bad_request', 409: 'conflict', 413: 'too_large', 415: 'unsupported_media_type',
  416: 'bad_request', 429: 'rate_limited', 500: 'internal', 502: 'unavailable',
  503: 'unavailable', 504: 'unavailable',
};
/** An access token is refreshed when it expires within this margin (or 10% of its life). */
const REFRESH_MARGIN_MS = 30_000;

/** A refusal of the server (`status` 0 and code `unavailable`: no answer at all). */
export class ApiError extends Error {
  /**
   * @param {number} status HTTP status (0: the network failed)
   * @param {string} code the protocol's error code
   * @param {string} message a sentence for the user
   * @param {number} [retryAfterMs] with rate_limited
   */
  constructor(status, code, message, retryAfterMs) {
    super(message);
    this.name = 'ApiError';
    this.status = status;
    this.code = code;
    if (retryAfterMs !== undefined) this.retryAfterMs = retryAfterMs;
  }
}

/** @returns {boolean} true when `err` means the server could not be reached. */
export function isUnavailable(err) {
  return err instanceof ApiError && (err.status === 0 || err.code === 'unavailable');
}

/** Run `fn` under the origin-wide lock `name` (in this context only, without Web Locks). */
export function withLock(name, fn, options = {}) {
  const locks = globalThis.navigator && globalThis.navigator.locks;
  if (locks) return locks.request(name, options, fn);
  return fn({name});
}

/** The REST API, for the login stored in kv 'account'. Also an EventTarget:
 * 'logged_out' when the server refuses the refresh (the login ended elsewhere),
 * 'tokens' after a login or refresh. */
export class Api extends EventTarget {
  /** @param {{base?: string}} [options] base: the API prefix, '/api/v1' */
  constructor({base = '/api/v1'} = {}) {
    super();
    this.base = base.replace(/\/$/, '');
    /** In-context single flight of refreshes (the lock covers the other contexts). */
    this._refreshing = null;
  }

  /** @returns {Promise<object|undefined>} the stored account {user, access_token, ...}. */
  account() {
    return kvGet('account');
  }

  /**
   * One call of the API.
   * @param {string} method
   * @param {string} path below the base, e.g. '/rooms'
   * @param {{json?: any, query?: object, signal?: AbortSignal, auth?: boolean,
   *          body?: BodyInit, headers?: object}} [options]
   * @returns {Promise<any>} the parsed JSON answer, or null for an empty one (204)
   * @throws {ApiError}
   */
  async request(method, path, {json, query, signal, auth = true, body, headers} = {}) {
    let url = this.base + path;
    if (query) {
      const params = new URLSearchParams();
      for (const [k, v] of Object.entries(query)) {
        if (v !== undefined && v !== null) params.set(k, String(v));
      }
      const qs = params.toString();
      if (qs) url += '?' + qs;
    }
    const init = {method, signal, headers: {...headers}, credentials: 'omit', cache: 'no-store'};
    if (json !== undefined) {
      init.body = JSON.stringify(json);
      init.headers['Content-Type'] = 'application/json';
    } else if (body !== undefined) {
      init.body = body;
    }
    if (!auth) return parse(await send(url, init));
    let token = await this.accessToken();
    init.headers.Authorization = 'Bearer ' + token;
    let response = await send(url, init);
    if (response.status === 401) {
      // The access token ended early (a restart with another secret, a clock skew): one
      // refresh and one retry; a refused refresh ends the login.
      token = (await this.refresh(token)).access_token;
      init.headers.Authorization = 'Bearer ' + token;
      response = await send(url, init);
    }
    return parse(response);
  }

  /**
   * A valid access token, refreshed first when it expires soon (also for the WebSocket).
   * @returns {Promise<string>}
   * @throws {ApiError} 401 unauthorized without a login
   */
  async accessToken() {
    const account = await kvGet('account');
    if (!account || !account.access_token) throw loggedOut();
    const margin = Math.min(REFRESH_MARGIN_MS, 0.1 * (account.lifetime_ms || 900_000));
    if (account.expires_at && account.expires_at - Date.now() < margin) {
      return (await this.refresh(account.access_token)).access_token;
    }
    return account.access_token;
  }

  /**
   * Exchange the refresh token for new tokens, once for every caller that saw `staleToken`
   * fail: inside the lock, an account whose access token differs from it was refreshed (or
   * replaced by a login) by someone else, and is used as it is.
   * @param {string} [staleToken] the access token that was refused or is about to expire
   * @returns {Promise<object>} the account after the refresh
   * @throws {ApiError} 401 when the login ended (kv 'account' removed, 'logged_out' fired)
   */
  refresh(staleToken) {
    if (this._refreshing) return this._refreshing;
    this._refreshing = withLock('chatcore-refresh', async () => {
      const account = await kvGet('account');
      if (!account || !account.refresh_token) throw loggedOut();
      if (staleToken !== undefined && account.access_token !== staleToken) return account;
      const asked = Date.now();
      let reply;
      try {
        reply = await this.request('POST', '/auth/refresh',
          {json: {refresh_token: account.refresh_token}, auth: false});
      } catch (err) {
        if (err instanceof ApiError && (err.status === 401 || err.status === 400)) {
          // Refused: this login is over (logged out elsewhere, or its token family ended).
          const current = await kvGet('account');
          if (current && current.refresh_token === account.refresh_token) {
            await kvDelete('account');
          }
          this.dispatchEvent(new CustomEvent('logged_out', {detail: {user: account.user}}));
          throw loggedOut();
        }
        throw err;
      }
      const next = accountFrom(reply, asked);
      await kvSet('account', next);
      this.dispatchEvent(new CustomEvent('tokens', {detail: next}));
      return next;
    }).finally(() => { this._refreshing = null; });
    return this._refreshing;
  }

  /**
   * Log in and keep the tokens (kv 'account').
   * @returns {Promise<object>} the account {user, access_token, refresh_token, expires_at}
   */
  async login(username, password) {
    const asked = Date.now();
    const reply = await this.request('POST', '/auth/login',
      {json: {username, password}, auth: false});
    const account = accountFrom(reply, asked);
    await kvSet('account', account);
    this.dispatchEvent(new CustomEvent('tokens', {detail: account}));
    return account;
  }

  /** Create an account. @returns {Promise<object>} the User */
  async register(username, password, displayName) {
    const json = {username, password};
    if (displayName) json.display_name = displayName;
    const reply = await this.request('POST', '/auth/register', {json, auth: false});
    return reply.user;
  }

  /**
   * End the login on the server and forget the tokens here, even when the server cannot be
   * reached (the error is thrown after forgetting, so the UI may say so).
   */
  async logout() {
    const account = await kvGet('account');
    if (!account) return;
    try {
      await this.request('POST', '/auth/logout');
    } catch (err) {
      // A login the server had ended already is no error: that is what was asked.
      if (!(err instanceof ApiError && err.status === 401)) throw err;
    } finally {
      const now = await kvGet('account');
      if (now && now.user.id === account.user.id) await kvDelete('account');
    }
  }

  /** GET /info without auth. */
  info() {
    return this.request('GET', '/info', {auth: false});
  }
}

function accountFrom(reply, askedAt) {
  const lifetime = (reply.expires_in || 900) * 1000;
  return {
    user: reply.user,
    access_token: reply.access_token,
    refresh_token: reply.refresh_token,
    // From when it was asked: the server counted from a moment after that.
    expires_at: askedAt + lifetime,
    lifetime_ms: lifetime,
  };
}

function loggedOut() {
  return new ApiError(401, 'unauthorized', 'You are logged out; log in again.');
}

async function send(url, init) {
  try {
    return await fetch(url, init);
  } catch (err) {
    if (err && err.name === 'AbortError') throw err;
    throw new ApiError(0, 'unavailable', 'The server cannot be reached; try again later.');
  }
}

/** The answer as JSON (null when empty), or the ApiError it carries. */
async function parse(response) {
  let text;
  try {
    text = await response.text();
  } catch {
    throw new ApiError(0, 'unavailable', 'The connection was lost; try again later.');
  }
  let data = null;
  if (text) {
    try { data = JSON.parse(text); } catch { data = undefined; }
  }
  if (response.ok) {
    if (data === undefined) {
      throw new ApiError(response.status, 'unavailable', 'The server answered something that is not chatcore.');
    }
    return data;
  }
  const e = data && data.error;
  let retryAfterMs;
  const ra = response.headers.get('Retry-After');
  if (ra && /^\d+$/.test(ra)) retryAfterMs = Number(ra) * 1000;
  throw new ApiError(
    response.status,
    (e && e.code) || CODES[response.status] || (response.status >= 500 ? 'internal' : 'bad_request'),
    (e && e.message) || `The server answered ${response.status}.`,
    retryAfterMs,
  );
}
