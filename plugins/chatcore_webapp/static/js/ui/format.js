/**
 * Pure text helpers: labels, previews, marks. No DOM and no engine calls, so every view
 * words things the same way (the terminal client's format.py, in JavaScript).
 */

/** The longest preview of a message in a room row or a toast (characters). */
export const PREVIEW_CHARS = 80;

const timeFmt = new Intl.DateTimeFormat(undefined, {hour: '2-digit', minute: '2-digit'});
const weekdayFmt = new Intl.DateTimeFormat(undefined, {weekday: 'long', day: 'numeric', month: 'long'});
const dateFmt = new Intl.DateTimeFormat(undefined, {day: 'numeric', month: 'short'});
const fullDateFmt = new Intl.DateTimeFormat(undefined, {day: 'numeric', month: 'long', year: 'numeric'});
const DAY = 86_400_000;

/** Local midnight of `ts` (ms), for day comparisons. @param {number} ts */
export function dayStart(ts) {
  const d = new Date(ts);
  d.setHours(0, 0, 0, 0);
  return d.getTime();
}

/** "09:05". @param {number} ts */
export const timeLabel = (ts) => timeFmt.format(ts);

/**
 * A day separator's label: "Today", "Yesterday", the weekday within a week, else the date.
 * @param {number} ts
 * @param {number} [now]
 */
export function dayLabel(ts, now = Date.now()) {
  const days = Math.round((dayStart(now) - dayStart(ts)) / DAY);
  if (days === 0) return 'Today';
  if (days === 1) return 'Yesterday';
  if (days > 1 && days < 7) return weekdayFmt.format(ts);
  return fullDateFmt.format(ts);
}

/**
 * A room row's time: the time today, "Yesterday", else the short date.
 * @param {number} ts
 * @param {number} [now]
 */
export function whenLabel(ts, now = Date.now()) {
  const days = Math.round((dayStart(now) - dayStart(ts)) / DAY);
  if (days === 0) return timeLabel(ts);
  if (days === 1) return 'Yesterday';
  return days < 365 ? dateFmt.format(ts) : fullDateFmt.format(ts);
}

/**
 * The first non-blank line of `text`, cut to `limit` characters with "…".
 * @param {string} text
 * @param {number} [limit]
 */
export function firstLine(text, limit = PREVIEW_CHARS) {
  const line = (text || '').split('\n').map((s) => s.trim()).find(Boolean) || '';
  return line.length > limit ? line.slice(0, limit - 1).trimEnd() + '…' : line;
}

/**
 * What a room row, a toast or a quote shows of a message (or an outbox entry).
 * @param {{kind?: string, body?: string, deleted?: boolean, filename?: string}} item
 * @param {{stickerEmoji?: string, limit?: number}} [opts]
 */
export function preview(item, {stickerEmoji, limit = PREVIEW_CHARS} = {}) {
  if (!item) return '';
  if (item.deleted) return 'Message deleted';
  if (item.kind === 'media') return '📎 ' + (firstLine(item.body, limit - 2) || item.filename || 'File');
  if (item.kind === 'sticker') return stickerEmoji ? `${stickerEmoji} Sticker` : 'Sticker';
  return firstLine(item.body, limit);
}

/**
 * "Ann is typing…", "Ann and Bob are typing…", "3 people are typing…", or "".
 * @param {string[]} names
 */
export function typingLine(names) {
  if (!names.length) return '';
  if (names.length === 1) return `${names[0]} is typing…`;
  if (names.length === 2) return `${names[0]} and ${names[1]} are typing…`;
  return `${names.length} people are typing…`;
}

/**
 * The connection banner's text; "" when live (no banner).
 * @param {string} state 'offline' | 'connecting' | 'catching_up' | 'ready'
 * @param {number|null} [retryIn] ms until the next attempt
 */
export function connectionLine(state, retryIn) {
  if (state === 'ready') return '';
  if (state === 'connecting') return 'Connecting…';
  if (state === 'catching_up') return 'Catching up…';
  if (retryIn != null) return `Offline — retrying in ${Math.max(0, Math.ceil(retryIn / 1000))} s`;
  return 'Offline';
}

/**
 * An error as one sentence for a person: the server's own words when it gave some.
 * @param {any} err
 */
export function errorText(err) {
  if (!err) return 'Something went wrong.';
  if (err.message && err.code) return err.message; // ApiError: the server's sentence
  if (err.name === 'TypeError' || err.status === 0) return 'The server cannot be reached. Try again when you are online.';
  return err.message || String(err);
}

/**
 * A person's name: display name, else username, else a placeholder while unknown.
 * @param {{display_name?: string, username?: string}|undefined} user
 */
export const userName = (user) => (user && (user.display_name || user.username)) || 'Someone';

/**
 * A stable colour class (0..7) for a name's avatar.
 * @param {string} key
 */
export function hue(key) {
  let n = 0;
  for (const ch of key || '') n = (n * 31 + ch.charCodeAt(0)) >>> 0;
  return n % 8;
}

/**
 * The initial letter of a name for an avatar.
 * @param {string} name
 */
export const initial = (name) => (Array.from((name || '?').trim())[0] || '?').toUpperCase();

/**
 * File size for people: "12 KB".
 * @param {number} bytes
 */
export function sizeLabel(bytes) {
  if (bytes == null) return '';
  if (bytes < 1024) return `${bytes} B`;
  if (bytes < 1024 * 1024) return `${Math.round(bytes / 1024)} KB`;
  return `${(bytes / 1024 / 1024).toFixed(1)} MB`;
}
