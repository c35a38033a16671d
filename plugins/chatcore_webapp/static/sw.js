// The app's service worker (an ES module: registered with {type: 'module'}, at the app's mount
// path, so its scope is the app). Three jobs:
//  - Web Push: show each push as a notification with a Reply action that answers over REST
//    without opening the app (docs/push.md, "Push: Web Push");
//  - clicks on a notification: open the room in the app (a window already open, else a new one);
//  - the app shell: the app's own files from a cache, refreshed as one set in the background
//    at each start of the app, so the app starts at once, also without a network. API answers
//    are never cached.

import {Api} from './js/engine/api.js';
import {get, kvGet} from './js/engine/db.js';
import {parsePush, resolveNotice, NEW_MESSAGE} from './js/engine/notice.js';
import {applicationServerKey, registerSubscription, unregisterDevice, DEVICE_KEY} from './js/engine/push.js';
import {storeMessages} from './js/engine/sync.js';
import {SHELL_CACHE, collectShell, isShellFile} from './shell.js';

const api = new Api({base: '/api/v1'});
const scope = () => self.registration.scope;

/**
 * Keep the worker alive until `work` settles, and expose it as `self.lastWork` (tests await
 * it). A test's synthetic event is untrusted, and `waitUntil` throws on it: then the promise is
 * only kept.
 */
function keep(event, work) {
  const promise = Promise.resolve(work);
  promise.catch((err) => console.error('service worker:', event.type, err));
  self.lastWork = promise;
  try { event.waitUntil(promise); } catch { /* untrusted event */ }
  return promise;
}

// --- lifecycle and the app shell ------------------------------------------------------------

self.addEventListener('install', (event) => {
  // Take over at once: a new release of the app must not wait for every tab to close.
  self.skipWaiting();
  keep(event, Promise.all([fillShell(), routeReleases(event)]));
});

/**
 * Files under v/<version>/ never change (the server caches them for good), so where the
 * browser has static routes the worker is not even woken for them: the browser's own cache
 * answers at once. Elsewhere the fetch handler serves them from the shell cache.
 */
async function routeReleases(event) {
  if (!event.addRoutes || typeof URLPattern === 'undefined') return;
  const pathname = new URL(scope()).pathname + 'v/*';
  try {
    await event.addRoutes({condition: {urlPattern: new URLPattern({pathname})}, source: 'network'});
  } catch { /* routes are a speed-up, never a requirement */ }
}

self.addEventListener('activate', (event) => {
  keep(event, (async () => {
    for (const name of await caches.keys()) {
      if (name.startsWith('chatcore-shell') && name !== SHELL_CACHE) await caches.delete(name);
    }
    await self.clients.claim();
  })());
});

/** Cache every file of the shell (shell.js finds them from the page). One that fails is
 * left out (it is cached on its next load) rather than failing the install: pushes must work
 * even then. @returns {Promise<string[]>} the URLs cached */
async function fillShell() {
  const cache = await caches.open(SHELL_CACHE);
  const files = await collectShell(scope(), revalidate);
  await Promise.all([...files].map(([url, response]) => cache.put(url, response)));
  return [...files.keys()];
}

/** One file, asked of the server with its ETag (a 304 when it has not changed). */
const revalidate = (url) => fetch(url, {cache: 'no-cache'});

/** How long after a start the shell is checked at the latest (the page usually asks first),
 * and how long a check counts as fresh. */
const REFRESH_AFTER_MS = 5000;
const later = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

let refreshing = null;
let checkedAt = 0; // the last complete check

/**
 * Fetch the whole shell again and replace the cached one, only when every file came: the
 * cache never mixes two releases' modules. A new release is thus used from the next start of
 * the app on (the usual way of an app shell), and a start never waits on the server.
 * @returns {Promise<boolean>} whether the cache was replaced
 */
function refreshShell() {
  if (Date.now() - checkedAt < REFRESH_AFTER_MS) return Promise.resolve(false); // just done
  refreshing ??= (async () => {
    const failed = [];
    const files = await collectShell(scope(), revalidate, failed);
    if (failed.length || !files.size) return false;
    checkedAt = Date.now();
    const cache = await caches.open(SHELL_CACHE);
    await Promise.all([...files].map(([url, response]) => cache.put(url, response)));
    // A past release's files are no longer referenced by anything: drop them.
    for (const request of await cache.keys()) {
      if (!files.has(request.url)) await cache.delete(request);
    }
    return true;
  })().finally(() => { refreshing = null; });
  return refreshing;
}

self.addEventListener('fetch', (event) => {
  const request = event.request;
  if (request.method !== 'GET') return;
  const url = new URL(request.url);
  if (url.origin !== self.location.origin || url.pathname.startsWith('/api/')) return;
  const bare = url.origin + url.pathname;
  const index = new URL('index.html', scope()).href;
  let key = null;
  // The page at the mount path (with any query: ./?room=...) is index.html. Only the app's own
  // paths: another page of the origin (/healthz) must never land in the cache as the app.
  if (bare === scope() || bare === index) key = index;
  else if (isShellFile(bare, scope())) key = bare;
  if (key === null) return; // not one of the app's files: the browser's own handling
  event.respondWith(fromShell(request, key));
  // And whatever the page does, soon after: a start that failed (its release no longer in the
  // browser's cache, and gone from the server) is repaired for the next one.
  if (key === index) keep(event, later(REFRESH_AFTER_MS).then(refreshShell).catch(() => false));
});

// Each start of the app checks the whole shell for a new release once the app is drawn (the
// page says so: the check must not share the machine with the first paint).
self.addEventListener('message', (event) => {
  if (event.data && event.data.type === 'started') keep(event, refreshShell().catch(() => false));
});

/** The cached copy of `key`; else the network's answer (kept in the cache for later). */
async function fromShell(request, key) {
  const cache = await caches.open(SHELL_CACHE);
  const cached = await cache.match(key, {ignoreSearch: true});
  if (cached) return cached;
  const response = await fetch(request);
  if (response.ok && response.type === 'basic') {
    cache.put(key, response.clone()).catch(() => { /* quota: serving matters more */ });
  }
  return response;
}

// --- pushes -----------------------------------------------------------------------------------

self.addEventListener('push', (event) => keep(event, onPush(event)));

/** @returns {Promise<object|null>} the notice shown, or null when none was */
async function onPush(event) {
  let payload = null;
  try { payload = event.data ? event.data.json() : null; } catch { /* not JSON */ }
  const push = parsePush(payload);
  if (await appFocused()) return null; // the app shows its own in-app notice
  if (!push) {
    // Not one of ours, yet the browser wants every push to show something (userVisibleOnly).
    await self.registration.showNotification(NEW_MESSAGE, {tag: 'chatcore'});
    return {title: NEW_MESSAGE};
  }
  const notice = await resolveNotice(push, {api});
  if (notice.fetched) await keepMessage(notice.message);
  await self.registration.showNotification(notice.title, {
    body: notice.body,
    tag: notice.tag,
    data: notice.data,
    timestamp: notice.timestamp,
    icon: new URL('icon.svg', scope()).href,
    actions: [
      {action: 'reply', type: 'text', title: 'Reply', placeholder: 'Reply…'},
      {action: 'open', title: 'Open'},
    ],
  });
  return notice;
}

/**
 * Keep a message an id-only push made us fetch in the device store, as the Python engine's
 * push handler does: the dialog shows it at once when the app opens. Only into a room the
 * device knows (the engine fetches new rooms itself), and never at the cost of the notice.
 */
async function keepMessage(message) {
  try {
    const [account, room] = await Promise.all([kvGet('account'), get('rooms', message.room_id)]);
    if (account && account.user && room) await storeMessages([message], account.user.id);
  } catch (err) {
    console.warn('service worker: the pushed message was not stored', err);
  }
}

/** The open windows of the app: the page at the mount path (not another page of the origin). */
async function appWindows() {
  const windows = await self.clients.matchAll({type: 'window', includeUncontrolled: true});
  const root = new URL(scope()).pathname;
  return windows.filter((w) => {
    const path = new URL(w.url).pathname;
    return path === root || path === root + 'index.html';
  });
}

/** True when a window of the app is visible and focused. */
async function appFocused() {
  return (await appWindows()).some((w) => w.focused && w.visibilityState === 'visible');
}

// The browser renewed (or dropped) the subscription: register the new one in its place.
self.addEventListener('pushsubscriptionchange', (event) => keep(event, (async () => {
  const device = await kvGet(DEVICE_KEY);
  if (!device) return; // pushes were off
  let subscription = event.newSubscription;
  if (!subscription) {
    const key = await applicationServerKey(api);
    if (!key) return;
    subscription = await self.registration.pushManager.subscribe(
      {userVisibleOnly: true, applicationServerKey: key});
  }
  if (subscription.endpoint !== device.endpoint) {
    await unregisterDevice({api}).catch(() => { /* the server drops it when it is gone */ });
  }
  await registerSubscription(subscription.toJSON(), {api});
})()));

// --- clicks ------------------------------------------------------------------------------------

self.addEventListener('notificationclick', (event) => keep(event, onClick(event)));

/** @returns {Promise<object>} what was done: {sent: Message} | {failed: string} | {opened} */
async function onClick(event) {
  const notification = event.notification;
  const data = notification.data || {};
  notification.close();
  const text = typeof event.reply === 'string' ? event.reply.trim() : '';
  if (event.action === 'reply' && text && data.room_id) {
    return sendReply(data, text);
  }
  if (!data.room_id) return {opened: await openApp(null)};
  return {opened: await openApp({
    room_id: data.room_id,
    reply_to: event.action === 'reply' ? data.message_id : undefined,
  })};
}

/** Post the answer over REST (the token is refreshed when needed); a failure is shown. */
async function sendReply(data, text) {
  const json = {ref: crypto.randomUUID(), body: text};
  if (data.message_id) json.reply_to = data.message_id;
  try {
    const message = await api.request('POST', `/rooms/${encodeURIComponent(data.room_id)}/messages`, {json});
    return {sent: message};
  } catch (err) {
    const reason = (err && err.message) || 'unknown error';
    // The text is kept in the body, so nothing typed is lost; a click opens the room.
    await self.registration.showNotification(`Reply not sent: ${reason}`, {
      body: text,
      tag: 'reply-failed:' + (data.message_id || data.room_id),
      data: {room_id: data.room_id, message_id: data.message_id, draft: text},
      icon: new URL('icon.svg', scope()).href,
    });
    return {failed: reason};
  }
}

/**
 * Bring the app to the front at a room: a window of the app already open is focused and told
 * `{type: 'open', room_id, reply_to}` (a message event on navigator.serviceWorker); else a new
 * one opens at `./?room=ID[&reply=MID]`.
 * @returns {Promise<'focused'|'opened'|'none'>}
 */
async function openApp(target) {
  const windows = await appWindows();
  const app = windows.find((w) => w.focused) || windows[0];
  if (app) {
    try { await app.focus(); } catch { /* focusing needs a user gesture: the message still goes */ }
    if (target) {
      const message = {type: 'open', room_id: target.room_id};
      if (target.reply_to) message.reply_to = target.reply_to;
      app.postMessage(message);
    }
    return 'focused';
  }
  const url = new URL('./', scope());
  if (target) {
    url.searchParams.set('room', target.room_id);
    if (target.reply_to) url.searchParams.set('reply', target.reply_to);
  }
  try {
    return (await self.clients.openWindow(url.href)) ? 'opened' : 'none';
  } catch {
    return 'none'; // not allowed (no user gesture behind the click): nothing to open
  }
}
