// A push (docs/push.md, "A push says") -> the text of a notification. Used by the service worker
// for system notifications and by the page for its in-app notice, so both say the same thing.
// No `window`/`document` here: the service worker imports it.
//
// The rules mirror the server's adapters (chatcore_fcm notification_of, chatcore_apns): the
// title is the room's name in a group (the body then starts with "<sender>: "), else the
// sender's name, else "New message"; the body is the preview.

import {get, getAllByIndex} from './db.js';

/** The title when nothing names the sender or the room. */
export const NEW_MESSAGE = 'New message';
/** Characters of text a notification body shows (the server's `[push] preview_chars` is 100). */
export const PREVIEW_CHARS = 100;
/** What a preview says for messages without text (as the server's push routing says it). */
const KIND_PREVIEWS = {media: 'Sent a file', sticker: 'Sent a sticker'};

/**
 * The push object of a payload as it arrived: Web Push data (the push itself), an FCM message
 * or its `data` (every value a string), or an APNs payload; null when it is not a message push
 * of chatcore (so a stray push never throws in the service worker).
 * @param {any} payload parsed JSON, or the JSON text
 * @returns {object|null} the push with `seq`/`ts` as numbers and `direct`/`mention` as booleans
 */
export function parsePush(payload) {
  if (typeof payload === 'string') {
    try { payload = JSON.parse(payload); } catch { return null; }
  }
  if (!isObject(payload)) return null;
  let push = payload;
  if (isObject(payload.message) && isObject(payload.message.data)) push = payload.message.data;
  else if (isObject(payload.data) && !('type' in payload)) push = payload.data;
  else if (isObject(payload.chatcore)) push = payload.chatcore;
  if (push.type !== 'message' || !nonEmpty(push.room_id) || !nonEmpty(push.message_id)) {
    return null;
  }
  const out = {...push};
  for (const name of ['seq', 'ts']) {
    if (typeof out[name] === 'string' && /^-?\d+$/.test(out[name].trim())) out[name] = Number(out[name]);
  }
  for (const name of ['direct', 'mention']) {
    if (out[name] === 'true' || out[name] === 'false') out[name] = out[name] === 'true';
  }
  if (!Number.isInteger(out.seq) || out.seq < 1) return null;
  return out;
}

/**
 * True for an id-only push (the server's privacy mode, or a user's `preview: false`): it names
 * neither the sender nor the room, and carries no text.
 * @param {object} push a parsed push
 */
export function isIdOnly(push) {
  return typeof push.preview !== 'string';
}

/**
 * The one-line preview of a message, as the server makes it for a push.
 * @param {{kind?: string, body?: string, deleted?: boolean}} message
 * @param {number} [chars] at most this many characters (a cut one ends in "…")
 * @returns {string}
 */
export function previewOf(message, chars = PREVIEW_CHARS) {
  if (message.deleted) return 'Message deleted';
  const kind = message.kind || 'text';
  const raw = kind === 'text' ? String(message.body || '') : (KIND_PREVIEWS[kind] || '');
  const text = raw.split(/\s+/).filter(Boolean).join(' ');
  return text.length <= chars ? text : text.slice(0, Math.max(0, chars - 1)).trimEnd() + '…';
}

/**
 * The notification of a push as it is (no lookups).
 * @param {object} push a parsed push; `preview`, `sender_name`, `room_name`, `direct` optional
 * @returns {{title: string, body: string, tag: string, timestamp?: number,
 *            data: {room_id: string, message_id: string, seq: number}}}
 */
export function noticeOf(push) {
  const sender = nonEmpty(push.sender_name) ? push.sender_name : null;
  const room = nonEmpty(push.room_name) ? push.room_name : null;
  const preview = typeof push.preview === 'string' ? push.preview : '';
  let title, body;
  if (!push.direct && room) {
    title = room;
    body = sender && preview ? `${sender}: ${preview}` : preview;
  } else {
    title = sender || NEW_MESSAGE;
    body = preview;
  }
  const notice = {
    title,
    body,
    // One notification per message: a push sent twice (pushes are at least once) replaces
    // its first copy instead of showing again.
    tag: 'message:' + push.message_id,
    data: {room_id: push.room_id, message_id: push.message_id, seq: push.seq},
  };
  if (Number.isInteger(push.ts)) notice.timestamp = push.ts;
  return notice;
}

/**
 * The notification of a push, completed from what this browser knows when the push is id-only:
 * the message from IndexedDB `messages`, else fetched over REST
 * (`GET /rooms/{id}/messages?after_seq=seq-1&limit=1`); the sender's and the room's names from
 * IndexedDB `users`/`rooms`, else over REST. Whatever cannot be had (offline, logged out, no
 * longer a member) is left out: the notice then says "New message". Never throws.
 * @param {object} push a parsed push (`parsePush`)
 * @param {{api?: {request: Function}}} [options] api: the REST client (`Api` of api.js)
 * @returns {Promise<ReturnType<typeof noticeOf> & {message?: object, fetched?: boolean}>}
 *   message: the pushed message when found; fetched: it came from the server (not stored yet)
 */
export async function resolveNotice(push, {api} = {}) {
  if (!isIdOnly(push)) return noticeOf(push);
  const full = {...push};
  const {message, fetched} = await findMessage(push, api);
  if (message) {
    full.preview = previewOf(message);
    full.sender_id = message.sender_id;
    if (Number.isInteger(message.ts)) full.ts = message.ts;
  }
  const room = await findRecord('rooms', push.room_id, api && (() => api.request('GET', `/rooms/${enc(push.room_id)}`)));
  if (room) {
    full.direct = room.kind === 'direct';
    if (nonEmpty(room.name)) full.room_name = room.name;
  }
  if (full.sender_id) {
    const user = await findRecord('users', full.sender_id, api && (() => api.request('GET', `/users/${enc(full.sender_id)}`)));
    if (user) full.sender_name = user.display_name || user.username;
  }
  const notice = noticeOf(full);
  if (message) Object.assign(notice, {message, fetched});
  return notice;
}

/** The pushed message: from the device store, else the one-message page after seq - 1.
 * @returns {Promise<{message: object|null, fetched: boolean}>} */
async function findMessage(push, api) {
  const none = {message: null, fetched: false};
  try {
    const stored = await getAllByIndex('messages', 'id', push.message_id);
    if (stored.length) return {message: stored[0], fetched: false};
  } catch { /* no store yet: ask the server */ }
  if (!api) return none;
  try {
    const page = await api.request('GET', `/rooms/${enc(push.room_id)}/messages`,
      {query: {after_seq: push.seq - 1, limit: 1}});
    const message = (page && page.messages || []).find((m) => m.id === push.message_id);
    return message ? {message, fetched: true} : none;
  } catch {
    return none; // offline, logged out, or no longer in the room: the notice goes out as it is
  }
}

/** A room or user from IndexedDB, else from `fetchIt()` (not stored: the engine owns those). */
async function findRecord(store, id, fetchIt) {
  try {
    const found = await get(store, id);
    if (found) return found;
  } catch { /* fall through */ }
  if (!fetchIt) return null;
  try {
    return await fetchIt();
  } catch {
    return null;
  }
}

function isObject(value) {
  return value !== null && typeof value === 'object' && !Array.isArray(value);
}

function nonEmpty(value) {
  return typeof value === 'string' && value.length > 0;
}

function enc(id) {
  return encodeURIComponent(id);
}
