// Messages and rooms on the device, and the catch-up (`sync`) of one connection.
// Mirrors chatcore/client/sync.py and the SQLite device store: messages are keyed by
// (room_id, seq), so one that arrives twice (its ack, then its event; a catch-up overlapping a
// live event) is stored once; each room's cursor (the highest seq up to which every message is
// stored) moves in the same transaction as the batch that fills it, so a reload in between
// loses nothing and stores nothing twice.

import {tx, req, kvGet, kvSet} from './db.js';

/** `since_ts` is moved back this much: edits stamped by a server whose clock lags still count. */
export const SINCE_MARGIN_MS = 5 * 60_000;
const SYNC_RETRY_MS = 500;
const SYNC_RETRY_MAX_MS = 30_000;

/**
 * Store `messages` (the first of each (room, seq); stored ones are left as they are), settle
 * the user's own outbox entries they answer, move cursors, and update each room's newest
 * message and unread count. One transaction.
 * @param {object[]} messages
 * @param {string} me the user's id
 * @param {{count?: boolean}} [options] count: new messages of others raise `unread`
 *   (false for older history pages)
 * @returns {Promise<{fresh: object[], acked: {entry: object, message: object}[],
 *   rooms: object[]}>} fresh: newly stored, in the order given; rooms: the changed records
 */
export function storeMessages(messages, me, {count = true} = {}) {
  return tx(['messages', 'cursors', 'outbox', 'rooms'], 'readwrite', async (ms, cs, ob, rs) => {
    const fresh = [];
    const acked = [];
    const seen = new Set();
    const byRoom = new Map();
    const unique = messages.filter((m) => {
      const key = m.room_id + '\u0000' + m.seq;
      if (seen.has(key)) return false;
      seen.add(key);
      return true;
    });
    // Every lookup is issued at once (a catch-up batch holds up to a thousand per room).
    const own = unique.filter((m) => m.sender_id === me && m.ref);
    const [stored, entries] = await Promise.all([
      Promise.all(unique.map((m) => req(ms.getKey([m.room_id, m.seq])))),
      Promise.all(own.map((m) => req(ob.get(m.ref)))),
    ]);
    unique.forEach((m, i) => {
      if (stored[i] !== undefined) return;
      ms.put(m);
      fresh.push(m);
      if (!byRoom.has(m.room_id)) byRoom.set(m.room_id, []);
      byRoom.get(m.room_id).push(m);
    });
    own.forEach((m, i) => {
      const entry = entries[i];
      if (entry && entry.room_id === m.room_id) {
        ob.delete(m.ref);
        acked.push({entry, message: m});
      }
    });
    const rooms = [];
    for (const [roomId, list] of byRoom) {
      const cursor = await req(cs.get(roomId));
      const from = cursor ? cursor.seq : 0;
      const to = await contiguousFrom(ms, roomId, from);
      if (to !== from) cs.put({room_id: roomId, seq: to});
      let room = await req(rs.get(roomId));
      if (!room) {
        // A message of a room the device does not know yet: a placeholder the next
        // GET /rooms completes (the caller fetches the room first when it can).
        room = {id: roomId, kind: 'group', name: null, member_ids: [], owner_id: null,
          last_seq: 0, unread: 0, read_seq: 0, placeholder: true};
      }
      const knownLast = room.last_seq || 0;
      for (const m of list) {
        if (count && m.sender_id !== me && !m.deleted && m.seq > knownLast &&
            m.seq > (room.read_seq || 0)) {
          room.unread = (room.unread || 0) + 1;
        }
        if (!room.last_message || m.seq >= room.last_message.seq) {
          room.last_message = m;
          room.last_ts = Math.max(room.last_ts || 0, m.ts);
        }
        room.last_seq = Math.max(room.last_seq || 0, m.seq);
      }
      rs.put(room);
      rooms.push(room);
    }
    return {fresh, acked, rooms};
  });
}

/**
 * The server no longer has the room's messages below `firstSeq` (retention deleted them): the
 * room's cursor jumps to `firstSeq - 1` when it is lower, then on over what is stored (a live
 * message above may be there already). One transaction.
 * @returns {Promise<number>} the room's cursor
 */
export function skipDeleted(roomId, firstSeq) {
  return tx(['messages', 'cursors'], 'readwrite', async (ms, cs) => {
    const cursor = await req(cs.get(roomId));
    const from = Math.max(cursor ? cursor.seq : 0, firstSeq - 1);
    const to = await contiguousFrom(ms, roomId, from);
    if (!cursor || to !== cursor.seq) cs.put({room_id: roomId, seq: to});
    return to;
  });
}

/** The end of the run of stored seqs of `roomId` that continues from `from` (one key cursor). */
function contiguousFrom(ms, roomId, from) {
  return new Promise((resolve, reject) => {
    let expected = from + 1;
    const request = ms.openKeyCursor(IDBKeyRange.bound([roomId, expected], [roomId, Infinity]));
    request.onerror = () => reject(request.error);
    request.onsuccess = () => {
      const c = request.result;
      if (c && c.key[1] === expected) {
        expected += 1;
        c.continue();
      } else {
        resolve(expected - 1);
      }
    };
  });
}

/**
 * An edit or deletion: replace the stored message (and the room's newest message when it is
 * that one). @returns {Promise<object|null>} the stored message after the change, null when
 * the device does not hold it (it comes with the next catch-up, already changed).
 */
export function updateMessage(message) {
  return tx(['messages', 'rooms'], 'readwrite', async (ms, rs) => {
    const stored = await req(ms.get([message.room_id, message.seq]));
    if (!stored) return null;
    const merged = {...message};
    if (merged.deleted) {
      merged.body = '';
      delete merged.media_id;
      delete merged.sticker_id;
    }
    ms.put(merged);
    const room = await req(rs.get(message.room_id));
    if (room) {
      let changed = false;
      if (room.last_message && room.last_message.seq === merged.seq) {
        room.last_message = merged;
        changed = true;
      }
      // `unread` stays: it is the server's count, read again at the next connect.
      if (changed) rs.put(room);
    }
    return merged;
  });
}

/** @returns {Promise<Object<string, number>>} every room's cursor. */
export async function cursors() {
  const list = await tx('cursors', 'readonly', (cs) => req(cs.getAll()));
  const out = {};
  for (const c of list) out[c.room_id] = c.seq;
  return out;
}

/**
 * Save rooms as the server sent them, keeping the device's own fields (read_seq, last
 * message when the server left it out). With `complete` (GET /rooms), rooms missing from the
 * list were left while away: they are forgotten with their messages and cursors.
 * @returns {Promise<{saved: object[], left: object[], changed: object[]}>} changed: rooms whose
 *   server fields differ from what the device had (to announce)
 */
export function saveRooms(list, {complete = false} = {}) {
  return tx(['rooms', 'messages', 'cursors'], 'readwrite', async (rs, ms, cs) => {
    const saved = [];
    const changed = [];
    const ids = new Set();
    for (const r of list) {
      ids.add(r.id);
      const before = await req(rs.get(r.id));
      const room = {...(before || {}), ...r};
      delete room.placeholder;
      if (!r.last_message && before && before.last_message) room.last_message = before.last_message;
      room.last_ts = Math.max(
        (room.last_message && room.last_message.ts) || 0, r.created_ts || 0,
        (before && before.last_ts) || 0);
      if (typeof r.unread === 'number') {
        // GET /rooms says how many are unread; the read position follows from it (an upper
        // bound: unread counts only others' messages).
        room.read_seq = r.unread === 0 ? Math.max(before ? before.read_seq || 0 : 0, r.last_seq)
          : Math.max(0, r.last_seq - r.unread);
      } else {
        room.unread = before ? before.unread || 0 : 0;
        room.read_seq = before ? before.read_seq || 0 : r.last_seq || 0;
      }
      rs.put(room);
      saved.push(room);
      if (!before || sameRoomChanged(before, room)) changed.push(room);
    }
    const left = [];
    if (complete) {
      for (const room of await req(rs.getAll())) {
        if (!ids.has(room.id)) {
          left.push(room);
          forgetIn(rs, ms, cs, room.id);
        }
      }
    }
    return {saved, left, changed};
  });
}

function sameRoomChanged(a, b) {
  return a.placeholder || a.kind !== b.kind || a.name !== b.name || a.owner_id !== b.owner_id ||
    a.unread !== b.unread || a.last_seq !== b.last_seq ||
    JSON.stringify(a.member_ids) !== JSON.stringify(b.member_ids);
}

function forgetIn(rs, ms, cs, roomId) {
  rs.delete(roomId);
  cs.delete(roomId);
  ms.delete(IDBKeyRange.bound([roomId, -Infinity], [roomId, Infinity]));
}

/** Forget a room the user left, with its messages. */
export function forgetRoom(roomId) {
  return tx(['rooms', 'messages', 'cursors'], 'readwrite', (rs, ms, cs) => forgetIn(rs, ms, cs, roomId));
}

/**
 * Move the user's read position in a room (never backwards) and recount its unread messages
 * from the stored ones above it. @returns {Promise<object|null>} the room after the change
 */
export function setRead(roomId, seq, me) {
  return tx(['rooms', 'messages'], 'readwrite', async (rs, ms) => {
    const room = await req(rs.get(roomId));
    if (!room) return null;
    if (seq <= (room.read_seq || 0) && (room.unread || 0) === 0) return room;
    room.read_seq = Math.max(room.read_seq || 0, seq);
    if (room.read_seq >= (room.last_seq || 0)) {
      room.unread = 0;
    } else {
      const above = await req(ms.getAll(IDBKeyRange.bound([roomId, room.read_seq + 1], [roomId, Infinity])));
      const counted = above.filter((m) => m.sender_id !== me && !m.deleted).length;
      room.unread = Math.min(room.unread || 0, counted);
    }
    rs.put(room);
    return room;
  });
}

/**
 * The catch-up rounds of one connection (chatcore/client/sync.py): `sync` with the cursors
 * and `since_ts`; every message between it and its `synced` is held and committed in one
 * batch when `synced` arrives; rooms in `has_more` get another `sync`. While a round runs,
 * live messages and acks are held too, so each room's messages are stored and announced in
 * seq order.
 */
export class CatchUp {
  /**
   * @param {{write: (frame: object) => boolean, commit: (messages: object[], liveIds: Set<string>)
   *   => Promise<void>, updated: (message: object) => Promise<void>}} parts
   */
  constructor({write, commit, updated}) {
    this._write = write;
    this._commit = commit;
    this._updated = updated;
    this._ref = null;
    this._sentCursors = {};
    this._since = undefined;
    this._batch = new Map();
    this._live = new Set();
    this._roundStarted = null;
    this.holding = false;
    this._refusals = 0;
    this._retry = null;
  }

  /** Whether a `sync` awaits its `synced` (its messages are catch-up, not live). */
  get collecting() {
    return this._ref !== null;
  }

  /** Start a round: the first `sync`, with `since_ts` of the last completed round. */
  async begin() {
    this._roundStarted = Date.now();
    this.holding = true;
    const since = await kvGet('since_ts');
    await this._send(typeof since === 'number' ? since : undefined);
  }

  /** Keep `message` for the next commit (once per room and seq). */
  hold(message, live) {
    const key = message.room_id + '\u0000' + message.seq;
    if (!this._batch.has(key)) {
      this._batch.set(key, message);
      if (live) this._live.add(message.id);
    }
  }

  /** An edit or deletion: of a held message (committed as edited) or of a stored one. */
  async updated(message) {
    const key = message.room_id + '\u0000' + message.seq;
    if (this._batch.has(key)) this._batch.set(key, message);
    else await this._updated(message);
  }

  /**
   * Commit what the `sync` this answers brought.
   * @returns {Promise<boolean>} true once the round is complete (the connection is ready)
   */
  async synced(frame) {
    if (frame.ref !== this._ref) return false;
    this._ref = null;
    this._refusals = 0;
    // Rooms whose oldest messages the server deleted (retention): their cursors jump those
    // seqs, or the catch-up would wait for them forever.
    for (const [roomId, seq] of Object.entries(frame.first_seq || {})) {
      if (Number.isInteger(seq)) await skipDeleted(roomId, seq);
    }
    const more = new Set(Object.entries(frame.has_more || {}).filter(([, v]) => v).map(([k]) => k));
    if (more.size) {
      // Live messages of a room with more to catch up lie above what is still missing.
      await this._flush((m) => this._live.has(m.id) && more.has(m.room_id));
      const now = await cursors();
      const moved = [...more].filter((r) => (now[r] || 0) > (this._sentCursors[r] || 0));
      if (moved.length) {
        await this._send(undefined, now);
        return false;
      }
      console.warn('catch-up: rooms have more, but their cursors do not move', [...more]);
    }
    await this._flush(() => false);
    this.holding = false;
    if (this._roundStarted !== null) await kvSet('since_ts', this._roundStarted - SINCE_MARGIN_MS);
    return true;
  }

  async _flush(keep) {
    const keys = [...this._batch.keys()].filter((k) => !keep(this._batch.get(k)));
    if (!keys.length) return;
    const messages = keys.map((k) => this._batch.get(k));
    for (const k of keys) this._batch.delete(k);
    messages.sort((a, b) => (a.room_id < b.room_id ? -1 : a.room_id > b.room_id ? 1 : a.seq - b.seq));
    const live = new Set(messages.filter((m) => this._live.has(m.id)).map((m) => m.id));
    for (const id of live) this._live.delete(id);
    await this._commit(messages, live);
  }

  /** An `error` frame: true when it refused this round's `sync` (sent again later). */
  refused(ref, code, retryAfterMs) {
    if (!ref || ref !== this._ref) return false;
    this._refusals += 1;
    const delay = code === 'rate_limited' && typeof retryAfterMs === 'number'
      ? Math.max(retryAfterMs, 1)
      : Math.min(SYNC_RETRY_MS * 2 ** (this._refusals - 1), SYNC_RETRY_MAX_MS);
    clearTimeout(this._retry);
    this._retry = setTimeout(() => {
      if (this._ref === ref) this._frame(ref, this._sentCursors, this._since);
    }, delay);
    return true;
  }

  /** The connection ended: stop a planned retry. */
  close() {
    clearTimeout(this._retry);
    this._retry = null;
  }

  async _send(since, given) {
    const now = given || await cursors();
    const ref = 'sync-' + crypto.randomUUID();
    this._ref = ref;
    this._sentCursors = now;
    this._since = since;
    this._frame(ref, now, since);
  }

  _frame(ref, rooms, since) {
    const frame = {type: 'sync', ref, rooms};
    if (since !== undefined) frame.since_ts = since;
    this._write(frame);
  }
}
