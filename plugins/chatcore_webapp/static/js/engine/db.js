// The device store: one IndexedDB database per browser profile (the browser's counterpart of
// the Python engine's SQLite device store). Pages and the service worker both open it, so
// nothing here may touch `window`, `document` or `localStorage`.
//
// Stores (the service worker reads them: keep names and shapes):
//   kv        out-of-line keys: 'account' {user, access_token, refresh_token, expires_at,
//             lifetime_ms}, 'info' (/api/v1/info), 'preferences', 'server_settings',
//             'since_ts' (last successful catch-up), 'pending_reads' {room_id: seq}
//   rooms     keyPath 'id': the Room of the protocol (+ unread, read_seq kept by the engine)
//   messages  keyPath ['room_id', 'seq'], unique index 'id', index 'room_ts' [room_id, ts]
//   outbox    keyPath 'ref', index 'room_id', index 'order' (send order)
//   users     keyPath 'id'
//   media     out-of-line key (media id, or `${id}@thumb${size}`):
//             {blob, size, content_type, used_ts}, index 'used_ts' (LRU eviction)
//   cursors   keyPath 'room_id': {room_id, seq} the highest seq up to which every message of
//             the room is stored (the catch-up cursor, moved with its batch)

export const DB_NAME = 'chatcore';
export const DB_VERSION = 1;
/** The stores that hold one account's data (wiped when another user logs in). */
export const DATA_STORES = ['rooms', 'messages', 'outbox', 'users', 'media', 'cursors'];

let opening = null;

/**
 * Open (and on first use create) the database. The promise is cached per context.
 * @returns {Promise<IDBDatabase>}
 */
export function openDb() {
  if (opening) return opening;
  opening = new Promise((resolve, reject) => {
    const request = indexedDB.open(DB_NAME, DB_VERSION);
    request.onupgradeneeded = () => upgrade(request.result, request.transaction);
    request.onsuccess = () => {
      const db = request.result;
      // Another context wants a newer schema: step aside (the next call reopens).
      db.onversionchange = () => { db.close(); opening = null; };
      db.onclose = () => { opening = null; };
      resolve(db);
    };
    request.onerror = () => { opening = null; reject(request.error); };
    request.onblocked = () => { /* waits for the other context to close; nothing to do */ };
  });
  return opening;
}

function upgrade(db) {
  const has = (name) => db.objectStoreNames.contains(name);
  if (!has('kv')) db.createObjectStore('kv');
  if (!has('rooms')) db.createObjectStore('rooms', {keyPath: 'id'});
  if (!has('messages')) {
    const s = db.createObjectStore('messages', {keyPath: ['room_id', 'seq']});
    s.createIndex('id', 'id', {unique: true});
    s.createIndex('room_ts', ['room_id', 'ts']);
  }
  if (!has('outbox')) {
    const s = db.createObjectStore('outbox', {keyPath: 'ref'});
    s.createIndex('room_id', 'room_id');
    s.createIndex('order', 'order');
  }
  if (!has('users')) db.createObjectStore('users', {keyPath: 'id'});
  if (!has('media')) {
    const s = db.createObjectStore('media');
    s.createIndex('used_ts', 'used_ts');
  }
  if (!has('cursors')) db.createObjectStore('cursors', {keyPath: 'room_id'});
}

/**
 * Wrap an IDBRequest in a promise.
 * @template T
 * @param {IDBRequest<T>} request
 * @returns {Promise<T>}
 */
export function req(request) {
  return new Promise((resolve, reject) => {
    request.onsuccess = () => resolve(request.result);
    request.onerror = () => reject(request.error);
  });
}

/**
 * Run `fn(stores...)` in one transaction and resolve with its result once the transaction
 * committed (so a caller never announces what the store does not hold yet). `fn` may be async
 * but must await only requests of this transaction (any other await lets it auto-commit).
 * @param {string|string[]} names store names
 * @param {'readonly'|'readwrite'} mode
 * @param {(...stores: IDBObjectStore[]) => any} fn
 * @returns {Promise<any>}
 */
export async function tx(names, mode, fn) {
  const db = await openDb();
  const list = Array.isArray(names) ? names : [names];
  const t = db.transaction(list, mode, {durability: 'strict'});
  const done = new Promise((resolve, reject) => {
    t.oncomplete = () => resolve();
    t.onerror = () => reject(t.error);
    t.onabort = () => reject(t.error || new DOMException('transaction aborted', 'AbortError'));
  });
  let result;
  try {
    result = await fn(...list.map((n) => t.objectStore(n)));
  } catch (err) {
    try { t.abort(); } catch { /* already finished */ }
    done.catch(() => {});
    throw err;
  }
  await done;
  return result;
}

/** @returns {Promise<any>} the value of `key` in `store`, or undefined. */
export function get(store, key) {
  return tx(store, 'readonly', (s) => req(s.get(key)));
}

/** @returns {Promise<any[]>} every value of `store` (or those in `query`). */
export function getAll(store, query) {
  return tx(store, 'readonly', (s) => req(s.getAll(query)));
}

/** @returns {Promise<any[]>} the values of an index matching `query`. */
export function getAllByIndex(store, index, query) {
  return tx(store, 'readonly', (s) => req(s.index(index).getAll(query)));
}

/** Put one value (`key` only for out-of-line stores). */
export function put(store, value, key) {
  return tx(store, 'readwrite', (s) => req(key === undefined ? s.put(value) : s.put(value, key)));
}

/** Put many values of an in-line-key store in one transaction. */
export function putAll(store, values) {
  return tx(store, 'readwrite', (s) => { for (const v of values) s.put(v); });
}

/** Delete one key. */
export function del(store, key) {
  return tx(store, 'readwrite', (s) => req(s.delete(key)));
}

/** @returns {Promise<any>} the value of `key` in `kv`, or undefined. */
export function kvGet(key) {
  return get('kv', key);
}

/** Set `kv[key] = value`. */
export function kvSet(key, value) {
  return put('kv', value, key);
}

/** Delete `kv[key]`. */
export function kvDelete(key) {
  return del('kv', key);
}

/**
 * Wipe one account's data (another user logs in, or a logout): every data store, and the
 * account-bound kv keys. Device preferences and the server info stay.
 */
export function clearAccountData() {
  return tx([...DATA_STORES, 'kv'], 'readwrite', (...stores) => {
    const kv = stores.pop();
    for (const s of stores) s.clear();
    for (const k of ['server_settings', 'since_ts', 'pending_reads']) kv.delete(k);
  });
}

/** Close the cached connection (tests, or before deleting the database). */
export async function closeDb() {
  if (!opening) return;
  const p = opening;
  opening = null;
  try { (await p).close(); } catch { /* never opened */ }
}
