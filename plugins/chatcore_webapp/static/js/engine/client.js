// The client engine's facade: the one object the UI holds (the browser's chatcore.Client,
// chatcore/client/app.py). Offline-first: every read comes from IndexedDB first, so the UI
// paints before the network answers; the connection keeps the store up to date and every
// change is written to the store first, then announced as an event:
//   connection {state, detail, retryIn} · message {message, live} · message_updated {message}
//   outbox {entry} · room {room, left} · contact {event, invitation?, user?, contact?}
//   typing {room_id, user_id, active} · receipt {room_id, user_id, seq}
//   presence {user_id, status} · error {code, message, ref} · account {user}
//   upload {ref, progress}

import {openDb, kvGet, kvSet, kvDelete, tx, req, clearAccountData} from './db.js';
import {Api, ApiError, isUnavailable} from './api.js';
import {Connection, PING_REF_PREFIX} from './connection.js';
import {Outbox, Sender, publicEntry, OutboxError} from './outbox.js';
import {CatchUp, storeMessages, updateMessage, saveRooms, forgetRoom, setRead} from './sync.js';
import {MediaCache, upload} from './media.js';
import {disablePush} from './push.js';

export {ApiError, OutboxError};

/** Typing: at most one `active: true` frame per room this often... */
const TYPING_REPEAT_MS = 3000;
/** ... and `active: false` after this long without input. */
const TYPING_IDLE_MS = 5000;
const USER_FETCHES = 8;

/** The engine; create it with `await Client.open({base})`. */
export class Client extends EventTarget {
  /**
   * Open the device store, load the account and the last server info.
   * @param {{base?: string}} [options] base: the API prefix ('/api/v1')
   * @returns {Promise<Client>}
   */
  static async open({base = '/api/v1'} = {}) {
    const client = new Client(base);
    await client._load();
    return client;
  }

  constructor(base) {
    super();
    this.api = new Api({base});
    this.media = new MediaCache(this.api);
    /** @type {object|null} the logged-in User */
    this.user = null;
    /** @type {object|null} /api/v1/info */
    this.info = null;
    this._outbox = new Outbox({emit: (t, d) => this._emit(t, d)});
    this._conn = new Connection({
      api: this.api,
      info: () => this._fetchInfo(),
      onState: (state, detail, retryIn) => this._emit('connection', {state, detail, retryIn}),
      onReady: (frame, link) => this._linkReady(frame, link),
      onFrame: (frame, link) => this._frame(frame, link),
      onClosed: (link) => this._linkClosed(link),
      onLoggedOut: () => this._loginEnded(),
    });
    this._session = null; // {link, catchup, sender} of the live connection
    this._typing = new Map(); // room_id -> {sentAt, idle}
    this._unknownUsers = new Set();
    this._userFetches = new Map();
  }

  async _load() {
    await openDb();
    const account = await kvGet('account');
    this.user = account ? account.user : null;
    // Whose data the store holds (kept after a logout: the next login of another user wipes it).
    if (this.user && !(await kvGet('owner'))) await kvSet('owner', this.user.id);
    this.info = (await kvGet('info')) || null;
    this.api.addEventListener('logged_out', () => this._loginEnded());
    this.api.addEventListener('tokens', (e) => {
      // A refresh in another context may carry a newer profile; the user stays the same.
      if (e.detail && e.detail.user && this.user && e.detail.user.id === this.user.id) this.user = e.detail.user;
    });
    // Refreshed in the background: limits and ws_url for the next connection.
    this._fetchInfo().catch(() => {});
  }

  /** 'offline' | 'connecting' | 'catching_up' | 'ready' */
  get state() {
    return this._conn.state;
  }

  /** ms until the next reconnect attempt when offline, else null. */
  get retryIn() {
    return this._conn.retryIn;
  }

  /** Why the connection is in its state, for a person ('' when all is well). */
  get detail() {
    return this._conn.detail;
  }

  /**
   * Subscribe to an event type. @returns {() => void} unsubscribe
   * @param {string} type
   * @param {(detail: object) => void} fn
   */
  on(type, fn) {
    const listener = (e) => fn(e.detail);
    this.addEventListener(type, listener);
    return () => this.removeEventListener(type, listener);
  }

  _emit(type, detail) {
    this.dispatchEvent(new CustomEvent(type, {detail}));
  }

  async _fetchInfo() {
    const info = await this.api.info();
    this.info = info;
    await kvSet('info', info);
    return info;
  }

  get _me() {
    return this.user ? this.user.id : '';
  }

  // --- account ---------------------------------------------------------------------------

  /** Create an account, then log in. @returns {Promise<object>} the User */
  async register(username, password, displayName) {
    await this.api.register(username, password, displayName);
    return this.login(username, password);
  }

  /**
   * Log in; the data of another user who used this browser before is wiped first.
   * @returns {Promise<object>} the User
   */
  async login(username, password) {
    const wasRunning = this._conn.running;
    this._conn.stop();
    let account;
    try {
      account = await this.api.login(username, password);
    } catch (err) {
      if (wasRunning && this.user) this.start(); // the login it would have replaced goes on
      throw err;
    }
    const owner = await kvGet('owner');
    if (owner && owner !== account.user.id) {
      // Another user's browser until now: none of their data, and none of their pushes (a
      // login that ended elsewhere left their subscription behind).
      await disablePush({api: this.api}).catch(() => {});
      this.media.revokeAll();
      await clearAccountData();
    }
    await kvSet('owner', account.user.id);
    await this._saveUsers([account.user]);
    this.user = account.user;
    this._emit('account', {user: this.user});
    if (wasRunning) this.start();
    return this.user;
  }

  /** End the login on the server and here; the history stays until another user logs in. */
  async logout() {
    this._conn.stop('Logged out.');
    // Pushes to this browser end with the login: the next person to log in here must not get
    // this user's. Best effort: a device left behind is dropped at its next push.
    await disablePush({api: this.api}).catch(() => {});
    try {
      await this.api.logout();
    } catch (err) {
      if (!(err instanceof ApiError)) throw err;
    } finally {
      this._loggedOutHere();
    }
  }

  _loggedOutHere() {
    if (this.user === null) return;
    this.user = null;
    this._emit('account', {user: null});
  }

  _loginEnded() {
    this._conn.stop('The login ended; log in again.');
    kvDelete('account').catch(() => {});
    this._loggedOutHere();
  }

  /** Connect the WebSocket (idempotent); it reconnects with backoff until stop(). */
  start() {
    if (!this.user) return;
    this._conn.start();
  }

  /** Close the WebSocket and stop reconnecting. */
  stop() {
    this._conn.stop();
  }

  /** Try to connect at once when offline (a "retry now" button). */
  retryNow() {
    this._conn.retryNow();
  }

  // --- the connection's frames ------------------------------------------------------------

  async _linkReady(frame, link) {
    if (frame.user && this.user && frame.user.id === this.user.id) {
      this.user = frame.user;
      await this._saveUsers([frame.user]);
    }
    const catchup = new CatchUp({
      write: (f) => link.write(f),
      commit: async (messages, liveIds) => {
        await this._metadata; // rooms first: counts and titles come from them
        await this._arrived(messages, {liveIds});
      },
      updated: (m) => this._messageChanged(m),
    });
    const sender = new Sender({
      outbox: this._outbox,
      api: this.api,
      write: (f) => link.write(f),
      written: () => link.written,
      limits: this.info && this.info.limits,
      emit: (t, d) => this._emit(t, d),
    });
    this._session = {link, catchup, sender};
    // Room metadata, contacts and invitations over REST, while the catch-up runs.
    this._metadata = this._refreshMetadata().catch((err) => console.warn('metadata not refreshed', err));
    sender.run().catch((err) => console.warn('outbox sender stopped', err));
    await catchup.begin();
  }

  async _linkClosed(link) {
    const session = this._session;
    if (!session || session.link !== link) return;
    this._session = null;
    session.catchup.close();
    session.sender.stop();
    for (const [roomId, t] of this._typing) {
      clearTimeout(t.idle);
      this._typing.delete(roomId);
    }
  }

  async _frame(frame, link) {
    const session = this._session;
    if (!session || session.link !== link) return;
    const {catchup, sender} = session;
    switch (frame.type) {
      case 'message':
      case 'ack': {
        const m = frame.message;
        if (!m) return;
        if (catchup.holding) catchup.hold(m, frame.type === 'ack' || !catchup.collecting);
        else await this._arrived([m], {live: true});
        if (frame.type === 'ack') sender.done(frame.ref || m.ref);
        else if (m.sender_id === this._me) sender.done(m.ref);
        return;
      }
      case 'message_updated':
        if (frame.message) await catchup.updated(frame.message);
        return;
      case 'synced':
        if (await catchup.synced(frame)) {
          this._conn.markReady(link);
          this._flushReads().catch(() => {});
        }
        return;
      case 'room':
        return this._roomEvent(frame.room);
      case 'contact':
        return this._contactEvent(frame);
      case 'presence':
        await this._setPresence(frame.user_id, frame.status);
        this._emit('presence', {user_id: frame.user_id, status: frame.status});
        return;
      case 'typing':
        this._emit('typing', {room_id: frame.room_id, user_id: frame.user_id, active: frame.active});
        return;
      case 'receipt':
        if (frame.user_id === this._me) {
          const room = await setRead(frame.room_id, frame.seq, this._me);
          if (room) this._emit('room', {room: await this._decorate(room), left: false});
        }
        this._emit('receipt', {room_id: frame.room_id, user_id: frame.user_id, seq: frame.seq});
        return;
      case 'error': {
        const ref = typeof frame.ref === 'string' ? frame.ref : undefined;
        if (ref) {
          if (ref.startsWith(PING_REF_PREFIX)) return;
          if (await sender.refused(ref, frame.code, frame.message, frame.retry_after_ms)) return;
          if (catchup.refused(ref, frame.code, frame.retry_after_ms)) return;
        }
        this._emit('error', {code: frame.code, message: frame.message, ref});
        return;
      }
      default:
        // A type this client does not know (a newer server): ignored.
    }
  }

  /**
   * Store arriving messages, then announce: `outbox` sent for the user's own acked sends,
   * `message` for each newly stored one, `room` for the rooms they changed.
   */
  async _arrived(messages, {live = false, liveIds = null} = {}) {
    await this._ensureRooms(new Set(messages.map((m) => m.room_id)));
    const {fresh, acked, rooms} = await storeMessages(messages, this._me);
    const ackedById = new Map(acked.map((a) => [a.message.id, a]));
    for (const m of fresh) {
      const a = ackedById.get(m.id);
      if (a) {
        this._outbox.acked([a]);
        ackedById.delete(m.id);
      }
      this._emit('message', {message: m, live: live || (liveIds ? liveIds.has(m.id) : false)});
    }
    this._outbox.acked([...ackedById.values()]);
    for (const room of rooms) this._emit('room', {room: await this._decorate(room), left: false});
  }

  /** Rooms the device lacks (made while their `room` event was on the way) are fetched. */
  async _ensureRooms(ids) {
    for (const id of ids) {
      const known = await tx('rooms', 'readonly', (s) => req(s.getKey(id)));
      if (known !== undefined) continue;
      try {
        const room = await this.api.request('GET', `/rooms/${encodeURIComponent(id)}`);
        await this._roomsStored([room]);
      } catch (err) {
        console.warn('room not fetched', id, err);
      }
    }
  }

  async _messageChanged(message) {
    const stored = await updateMessage(message);
    if (stored) this._emit('message_updated', {message: stored});
    return stored;
  }

  async _roomEvent(room) {
    if (!room) return;
    if (room.member_ids && room.member_ids.includes(this._me)) {
      await this._roomsStored([room]);
    } else {
      await this._forget(room);
    }
  }

  async _forget(room) {
    await forgetRoom(room.id);
    // Its queued sends can never go: failed.
    for (const e of await this._outbox.list(room.id)) {
      if (e.state !== 'failed') await this._outbox.fail(e.ref, 'not_found', 'You are no longer a member of this room.');
    }
    this._emit('room', {room: await this._decorate(room), left: true});
  }

  async _roomsStored(list, {complete = false} = {}) {
    // Members first: a room shows with its title as soon as it is in the store.
    await this._fetchMissingUsers(list);
    const {saved, left, changed} = await saveRooms(list, {complete});
    for (const room of changed) this._emit('room', {room: await this._decorate(room), left: false});
    for (const room of left) {
      for (const e of await this._outbox.list(room.id)) {
        if (e.state !== 'failed') await this._outbox.fail(e.ref, 'not_found', 'You are no longer a member of this room.');
      }
      this._emit('room', {room: await this._decorate(room), left: true});
    }
    return saved;
  }

  /** The peers of direct rooms, for their titles (fetched once, then kept). */
  async _fetchMissingUsers(rooms) {
    const ids = new Set();
    for (const r of rooms) for (const id of r.member_ids || []) if (id !== this._me) ids.add(id);
    if (ids.size) await this.users([...ids]).catch(() => {});
  }

  /** Rooms (a room left while away is forgotten), contacts and invitations, over REST. */
  async _refreshMetadata() {
    const {rooms} = await this.api.request('GET', '/rooms');
    await this._roomsStored(rooms, {complete: true});
    await this._refreshContacts();
  }

  async _refreshContacts() {
    const [{contacts}, invitations] = await Promise.all([
      this.api.request('GET', '/contacts'),
      this.api.request('GET', '/contacts/invitations'),
    ]);
    await kvSet('contacts', contacts);
    await kvSet('invitations', invitations);
    const people = contacts.map((c) => c.user);
    for (const i of [...invitations.incoming, ...invitations.outgoing]) people.push(i.from_user, i.to_user);
    await this._saveUsers(people);
    return {contacts, invitations};
  }

  async _contactEvent(frame) {
    let contacts = [];
    try {
      ({contacts} = await this._refreshContacts());
    } catch (err) {
      console.warn('contacts not read again', err);
    }
    this._emit('contact', this._contactDetail(frame.event, frame.invitation, frame.user, contacts));
  }

  _contactDetail(event, invitation, user, contacts) {
    let other = user ? user.id : null;
    if (!other && invitation) {
      const party = [invitation.from_user, invitation.to_user].find((u) => u && u.id !== this._me);
      other = party ? party.id : null;
    }
    const contact = (contacts || []).find((c) => c.user.id === other);
    const detail = {event};
    if (invitation) detail.invitation = invitation;
    if (user) detail.user = user;
    if (contact) detail.contact = contact;
    return detail;
  }

  async _setPresence(userId, status) {
    const contacts = await kvGet('contacts');
    if (!contacts) return;
    const c = contacts.find((x) => x.user.id === userId);
    if (c && c.presence !== status) {
      c.presence = status;
      await kvSet('contacts', contacts);
    }
  }

  // --- reads (IndexedDB first) -------------------------------------------------------------

  /** A room record with what a list shows: title, unread, last_message, last_ts. */
  async _decorate(room, users) {
    const out = {...room};
    out.unread = room.unread || 0;
    out.last_ts = room.last_ts || (room.last_message && room.last_message.ts) || room.created_ts || 0;
    if (room.kind === 'direct') {
      const peerId = (room.member_ids || []).find((id) => id !== this._me) || this._me;
      out.peer_id = peerId;
      let peer = users ? users.get(peerId) : undefined;
      if (!users) peer = await tx('users', 'readonly', (s) => req(s.get(peerId)));
      out.title = peer ? (peer.display_name || peer.username) : 'Direct chat';
    } else {
      out.title = room.name || 'Group';
    }
    return out;
  }

  /**
   * The rooms on the device, most recently active first, each with {title, unread,
   * last_message, last_ts}. @returns {Promise<object[]>}
   */
  async rooms() {
    const [rooms, users] = await tx(['rooms', 'users'], 'readonly', async (rs, us) => {
      const list = await req(rs.getAll());
      const map = new Map();
      for (const r of list) {
        if (r.kind !== 'direct') continue;
        const peer = (r.member_ids || []).find((id) => id !== this._me);
        if (peer && !map.has(peer)) map.set(peer, await req(us.get(peer)));
      }
      return [list, map];
    });
    const out = [];
    for (const r of rooms) out.push(await this._decorate(r, users));
    return out.sort((a, b) => b.last_ts - a.last_ts);
  }

  /** One room (decorated), or null. */
  async room(id) {
    let room = await tx('rooms', 'readonly', (s) => req(s.get(id)));
    if (!room && this.user) {
      try {
        [room] = await this._roomsStored([await this.api.request('GET', `/rooms/${encodeURIComponent(id)}`)]);
      } catch {
        return null;
      }
    }
    return room ? this._decorate(room) : null;
  }

  /**
   * A page of a room's history, oldest first: the newest `limit` stored messages below
   * `beforeSeq`; when the device lacks some of them, they are fetched from the server and
   * stored (without message events: old history is not news).
   * @returns {Promise<{messages: object[], hasMore: boolean}>}
   */
  async history(roomId, {beforeSeq, limit = 50} = {}) {
    let page = await this._storedPage(roomId, beforeSeq, limit);
    const top = beforeSeq !== undefined ? beforeSeq - 1 : null;
    const complete = page.length >= limit ||
      (page.length && page[page.length - 1].seq <= 1) ||
      (!page.length && top !== null && top < 1);
    const gapAtTop = top !== null && page.length && page[0].seq !== top;
    // The oldest seq the server still has, when its reply said there is nothing older (the
    // room's first messages may have been deleted by retention: its history starts later).
    let first = 1;
    if ((!complete || gapAtTop) && this.user) {
      try {
        const reply = await this.api.request('GET', `/rooms/${encodeURIComponent(roomId)}/messages`,
          {query: {before_seq: beforeSeq, limit}});
        if (reply.messages.length) {
          await this._ensureRooms(new Set([roomId]));
          await storeMessages(reply.messages, this._me, {count: false});
          page = await this._storedPage(roomId, beforeSeq, limit);
          if (!reply.has_more) first = Math.min(...reply.messages.map((m) => m.seq));
        } else if (!page.length) {
          return {messages: [], hasMore: false};
        }
      } catch (err) {
        if (!(err instanceof ApiError)) throw err; // offline: what the device has is shown
      }
    }
    page.reverse();
    return {messages: page, hasMore: page.length ? page[0].seq > first : false};
  }

  /** Stored messages below `beforeSeq`, newest first, cut at the first gap in seqs. */
  _storedPage(roomId, beforeSeq, limit) {
    return tx('messages', 'readonly', (ms) => new Promise((resolve, reject) => {
      const upper = beforeSeq !== undefined ? [roomId, beforeSeq - 1] : [roomId, Infinity];
      const range = IDBKeyRange.bound([roomId, -Infinity], upper);
      const out = [];
      const c = ms.openCursor(range, 'prev');
      c.onerror = () => reject(c.error);
      c.onsuccess = () => {
        const cur = c.result;
        if (!cur || out.length >= limit) { resolve(out); return; }
        const m = cur.value;
        if (out.length && m.seq !== out[out.length - 1].seq - 1) { resolve(out); return; }
        out.push(m);
        cur.continue();
      };
    }));
  }

  /** One stored message by id, or null. */
  async message(id) {
    return (await tx('messages', 'readonly', (s) => req(s.index('id').get(id)))) || null;
  }

  /** Pending, uploading, sending and failed sends (of a room, or all), in send order. */
  async outbox(roomId) {
    return (await this._outbox.list(roomId)).map((e) => {
      const pub = publicEntry(e);
      if (e.blob) pub.blob = e.blob; // for a local preview of a file on its way
      return pub;
    });
  }

  /**
   * Search the stored messages: every word of `text` must appear (case-insensitive).
   * @returns {Promise<object[]>} newest first, at most `limit`
   */
  async search(text, {roomId, limit = 50} = {}) {
    const words = String(text).toLocaleLowerCase().split(/\s+/).filter(Boolean);
    if (!words.length) return [];
    const all = await tx('messages', 'readonly', (s) => req(roomId
      ? s.getAll(IDBKeyRange.bound([roomId, -Infinity], [roomId, Infinity])) : s.getAll()));
    const hits = all.filter((m) => {
      if (m.deleted || !m.body) return false;
      const body = m.body.toLocaleLowerCase();
      return words.every((w) => body.includes(w));
    });
    hits.sort((a, b) => b.ts - a.ts);
    return hits.slice(0, limit);
  }

  /**
   * Users by id: the stored copies, the rest fetched (and kept); an unknown id is left out.
   * @returns {Promise<Map<string, object>>}
   */
  async users(ids) {
    const wanted = [...new Set(ids)];
    const found = new Map();
    await tx('users', 'readonly', async (s) => {
      for (const id of wanted) {
        const u = await req(s.get(id));
        if (u) found.set(id, u);
      }
    });
    const missing = wanted.filter((id) => !found.has(id) && !this._unknownUsers.has(id));
    if (missing.length && this.user) {
      const fetched = [];
      const queue = [...missing];
      const worker = async () => {
        while (queue.length) {
          const id = queue.shift();
          const u = await this._fetchUser(id);
          if (u) fetched.push(u);
        }
      };
      await Promise.all(Array.from({length: Math.min(USER_FETCHES, queue.length)}, worker));
      if (fetched.length) {
        await this._saveUsers(fetched);
        for (const u of fetched) found.set(u.id, u);
      }
    }
    return found;
  }

  _fetchUser(id) {
    if (this._userFetches.has(id)) return this._userFetches.get(id);
    const p = this.api.request('GET', `/users/${encodeURIComponent(id)}`).catch((err) => {
      if (err instanceof ApiError && err.status === 404) this._unknownUsers.add(id);
      return null;
    }).finally(() => this._userFetches.delete(id));
    this._userFetches.set(id, p);
    return p;
  }

  _saveUsers(users) {
    const list = users.filter(Boolean);
    if (!list.length) return Promise.resolve();
    return tx('users', 'readwrite', (s) => { for (const u of list) s.put(u); });
  }

  // --- people ------------------------------------------------------------------------------

  /** Contacts with presence: the server's, else (offline) the copy last seen. */
  async contacts() {
    try {
      return (await this._refreshContacts()).contacts;
    } catch (err) {
      if (!(err instanceof ApiError)) throw err;
      return (await kvGet('contacts')) || [];
    }
  }

  /** Pending invitations {incoming, outgoing}: the server's, else the copy last seen. */
  async invitations() {
    try {
      return (await this._refreshContacts()).invitations;
    } catch (err) {
      if (!(err instanceof ApiError)) throw err;
      return (await kvGet('invitations')) || {incoming: [], outgoing: []};
    }
  }

  /** The users this user blocks (the server's list). */
  async blocked() {
    const {blocks} = await this.api.request('GET', '/blocks');
    await this._saveUsers(blocks);
    return blocks;
  }

  /** Users whose username or display name starts with `q`. */
  async searchUsers(q, {limit = 20} = {}) {
    if (!String(q).trim()) return [];
    const {users} = await this.api.request('GET', '/users', {query: {q, limit}});
    await this._saveUsers(users);
    return users;
  }

  async _contactsChanged(event, {invitation, user, userId} = {}) {
    let contacts;
    try {
      ({contacts} = await this._refreshContacts());
    } catch {
      contacts = (await kvGet('contacts')) || [];
    }
    if (!user && userId) user = (await this.users([userId])).get(userId);
    this._emit('contact', this._contactDetail(event, invitation, user, contacts));
  }

  /** Invite {userId} or {username}; inviting someone who invited you accepts theirs. */
  async invite({userId, username} = {}) {
    const json = userId ? {user_id: userId} : {username};
    const invitation = await this.api.request('POST', '/contacts/invitations', {json});
    await this._contactsChanged(invitation.status === 'accepted' ? 'accepted' : 'invited', {invitation});
    return invitation;
  }

  async acceptInvitation(id) {
    const {contact} = await this.api.request('POST', `/contacts/invitations/${encodeURIComponent(id)}/accept`);
    await this._contactsChanged('accepted', {user: contact.user});
    return contact;
  }

  /** Decline an invitation to this user, or cancel one of this user's. */
  async declineInvitation(id) {
    await this.api.request('POST', `/contacts/invitations/${encodeURIComponent(id)}/decline`);
    await this._contactsChanged('declined');
  }

  async removeContact(userId) {
    await this.api.request('DELETE', `/contacts/${encodeURIComponent(userId)}`);
    await this._contactsChanged('removed', {userId});
  }

  async block(userId) {
    await this.api.request('POST', '/blocks', {json: {user_id: userId}});
    await this._contactsChanged('blocked', {userId});
  }

  async unblock(userId) {
    await this.api.request('DELETE', `/blocks/${encodeURIComponent(userId)}`);
    await this._contactsChanged('unblocked', {userId});
  }

  /** The direct room with a user (created when there is none), stored on the device. */
  async openDirect(userId) {
    const room = await this.api.request('POST', '/rooms', {json: {kind: 'direct', user_id: userId}});
    await this._roomsStored([room]);
    return this.room(room.id);
  }

  /** A new group with this user as owner. */
  async createGroup(name, memberIds = []) {
    const room = await this.api.request('POST', '/rooms', {json: {kind: 'group', name, member_ids: memberIds}});
    await this._roomsStored([room]);
    return this.room(room.id);
  }

  /** Add a member to a group. */
  async addMember(roomId, userId) {
    await this.api.request('POST', `/rooms/${encodeURIComponent(roomId)}/members`, {json: {user_id: userId}});
  }

  /** Leave a group (userId omitted), or, as its owner, remove a member. */
  async removeMember(roomId, userId = this._me) {
    await this.api.request('DELETE', `/rooms/${encodeURIComponent(roomId)}/members/${encodeURIComponent(userId)}`);
  }

  // --- sending (the outbox: works offline) -------------------------------------------------

  /** Queue a text message (stored before any network call). @returns {Promise<object>} entry */
  send(roomId, body, {replyTo} = {}) {
    return this._outbox.add({room_id: roomId, kind: 'text', body, reply_to: replyTo});
  }

  /** The quick reply: the same as send. */
  reply(roomId, body, {replyTo} = {}) {
    return this.send(roomId, body, {replyTo});
  }

  /**
   * Queue a file (File or Blob, kept in the outbox until uploaded), sent as a media message
   * with an optional caption; progress comes as `upload {ref, progress}`.
   */
  sendFile(roomId, file, {caption, replyTo} = {}) {
    return this._outbox.add({
      room_id: roomId, kind: 'media', body: caption || '', reply_to: replyTo, blob: file,
      filename: file.name || undefined, content_type: file.type || undefined, size: file.size,
    });
  }

  /** Queue a sticker message. */
  sendSticker(roomId, stickerId) {
    return this._outbox.add({room_id: roomId, kind: 'sticker', body: '', sticker_id: stickerId});
  }

  /** Queue a failed entry again (same ref). */
  resend(ref) {
    return this._outbox.resend(ref);
  }

  /** Change the text of an entry not yet transmitted, or failed (queues it again). */
  editPending(ref, body) {
    return this._outbox.edit(ref, body);
  }

  /** Drop an entry not yet transmitted, or failed. */
  cancel(ref) {
    return this._outbox.cancel(ref);
  }

  /** Edit a sent message of this user's. @returns {Promise<object>} the message */
  async edit(roomId, messageId, body) {
    const message = await this.api.request('PATCH',
      `/rooms/${encodeURIComponent(roomId)}/messages/${encodeURIComponent(messageId)}`, {json: {body}});
    return (await this._messageChanged(message)) || message;
  }

  /** Delete a sent message. @returns {Promise<object|null>} the message as deleted */
  async delete(roomId, messageId) {
    await this.api.request('DELETE',
      `/rooms/${encodeURIComponent(roomId)}/messages/${encodeURIComponent(messageId)}`);
    const stored = await this.message(messageId);
    if (!stored) return null;
    return this._messageChanged({...stored, deleted: true, body: ''});
  }

  // --- live (read receipts, typing) ----------------------------------------------------------

  /**
   * Read up to `seq`: on the device at once (unread recounted, `room` event), on the server
   * by a `read` frame when connected, else over REST, else at the next connection.
   */
  async markRead(roomId, seq) {
    const room = await setRead(roomId, seq, this._me);
    if (room) this._emit('room', {room: await this._decorate(room), left: false});
    if (this._conn.send({type: 'read', room_id: roomId, seq})) return;
    const pending = (await kvGet('pending_reads')) || {};
    pending[roomId] = Math.max(pending[roomId] || 0, seq);
    await kvSet('pending_reads', pending);
    this._flushReads().catch(() => {});
  }

  async _flushReads() {
    const pending = (await kvGet('pending_reads')) || {};
    for (const [roomId, seq] of Object.entries(pending)) {
      try {
        if (!this._conn.send({type: 'read', room_id: roomId, seq})) {
          await this.api.request('POST', `/rooms/${encodeURIComponent(roomId)}/read`, {json: {seq}});
        }
      } catch (err) {
        if (isUnavailable(err)) return; // kept for the next connection
        // refused (a room left): dropped
      }
      const now = (await kvGet('pending_reads')) || {};
      if (now[roomId] === seq) {
        delete now[roomId];
        await kvSet('pending_reads', now);
      }
    }
  }

  /**
   * The user is typing in a room (call on every input; `false` when the text is sent or
   * cleared). Throttled here: at most one `active: true` per 3 s per room, and `active:
   * false` after 5 s without input.
   */
  typing(roomId, active = true) {
    const t = this._typing.get(roomId);
    const now = Date.now();
    if (active) {
      if (t) clearTimeout(t.idle);
      const idle = setTimeout(() => this.typing(roomId, false), TYPING_IDLE_MS);
      if (t && now - t.sentAt < TYPING_REPEAT_MS) {
        t.idle = idle;
        return;
      }
      this._conn.send({type: 'typing', room_id: roomId, active: true});
      this._typing.set(roomId, {sentAt: now, idle});
    } else if (t) {
      clearTimeout(t.idle);
      this._typing.delete(roomId);
      this._conn.send({type: 'typing', room_id: roomId, active: false});
    }
  }

  // --- media, stickers, profile, settings --------------------------------------------------

  /** A blob: URL of a media or its thumbnail (cached in IndexedDB). */
  mediaUrl(mediaId, {thumbnail} = {}) {
    return this.media.url(mediaId, {thumbnail});
  }

  /** The server's sticker packs (the copy last seen when offline). */
  async stickerPacks() {
    try {
      const {packs} = await this.api.request('GET', '/sticker-packs');
      await kvSet('sticker_packs', packs);
      return packs;
    } catch (err) {
      if (!isUnavailable(err)) throw err;
      return (await kvGet('sticker_packs')) || [];
    }
  }

  /** This user's server settings (/me/settings); offline, the copy last seen. */
  async accountSettings() {
    try {
      const settings = await this.api.request('GET', '/me/settings');
      await kvSet('server_settings', settings);
      return settings;
    } catch (err) {
      if (!isUnavailable(err)) throw err;
      return (await kvGet('server_settings')) || {};
    }
  }

  /** Apply a JSON merge patch to the server settings; the whole object after it. */
  async updateAccountSettings(patch) {
    const settings = await this.api.request('PATCH', '/me/settings', {json: patch});
    await kvSet('server_settings', settings);
    return settings;
  }

  /** This device's own choices (theme...). */
  async preferences() {
    return (await kvGet('preferences')) || {};
  }

  /** Merge-patch this device's preferences; the whole object after it. */
  async setPreferences(patch) {
    const next = mergePatch((await kvGet('preferences')) || {}, patch);
    await kvSet('preferences', next);
    return next;
  }

  /**
   * Change the display name and/or the avatar (a File, uploaded first; null removes it).
   * @returns {Promise<object>} the User
   */
  async setProfile({displayName, avatar} = {}) {
    const json = {};
    if (displayName !== undefined) json.display_name = displayName;
    if (avatar === null) json.avatar_media_id = null;
    else if (avatar) json.avatar_media_id = (await upload(this.api, avatar, {filename: avatar.name})).id;
    const user = await this.api.request('PATCH', '/me', {json});
    await this._saveUsers([user]);
    const account = await kvGet('account');
    if (account && account.user.id === user.id) await kvSet('account', {...account, user});
    this.user = user;
    this._emit('account', {user});
    return user;
  }
}

/** RFC 7396: objects merge, null deletes, anything else replaces. */
function mergePatch(target, patch) {
  if (patch === null || typeof patch !== 'object' || Array.isArray(patch)) return patch;
  const out = target && typeof target === 'object' && !Array.isArray(target) ? {...target} : {};
  for (const [k, v] of Object.entries(patch)) {
    if (v === null) delete out[k];
    else out[k] = mergePatch(out[k], v);
  }
  return out;
}
