// Web Push for this browser: subscribe with the server's VAPID key, register the subscription
// as a `webpush` push device (docs/protocol.md, "Push devices"), and undo both. The device's id
// is kept in IndexedDB kv 'push_device' {id, endpoint, user_id}, which the service worker also
// reads when the browser renews a subscription. `registerSubscription`, `unregisterDevice` and
// `applicationServerKey` need no `window`: the service worker imports them.

import {Api, ApiError} from './api.js';
import {kvGet, kvSet, kvDelete} from './db.js';

/** The kv key of this browser's registered device. */
export const DEVICE_KEY = 'push_device';
/** How long `enablePush` waits for the service worker (main.js registers it). */
const READY_TIMEOUT_MS = 10_000;

let defaultApi = null;
function apiOf(api) {
  return api || (defaultApi ||= new Api({base: '/api/v1'}));
}

/** @returns {boolean} true when this browser can receive Web Push at all. */
export function pushSupported() {
  return typeof navigator !== 'undefined' && 'serviceWorker' in navigator
    && 'PushManager' in globalThis && 'Notification' in globalThis;
}

/**
 * The server's VAPID public key (`GET /api/v1/push/webpush`), or null when the server has Web
 * Push turned off (404).
 * @param {Api} [api]
 * @returns {Promise<string|null>} base64url of the P-256 point
 * @throws {ApiError} when the server cannot be reached
 */
export async function applicationServerKey(api) {
  try {
    const reply = await apiOf(api).request('GET', '/push/webpush', {auth: false});
    return reply && typeof reply.application_server_key === 'string'
      ? reply.application_server_key : null;
  } catch (err) {
    if (err instanceof ApiError && err.status === 404) return null;
    throw err;
  }
}

/**
 * Where pushes stand for this browser and the logged-in user.
 * 'unsupported': no service worker, PushManager or Notification here; 'denied': the user
 * blocked notifications for the site; 'on': subscribed and registered for this user;
 * 'unavailable': the server has no Web Push key; 'off': it can be turned on.
 * @param {{api?: Api}} [options]
 * @returns {Promise<'unsupported'|'off'|'on'|'denied'|'unavailable'>}
 */
export async function pushStatus({api} = {}) {
  if (!pushSupported()) return 'unsupported';
  if (Notification.permission === 'denied') return 'denied';
  const [device, account, registration] = await Promise.all([
    kvGet(DEVICE_KEY), kvGet('account'), navigator.serviceWorker.getRegistration(),
  ]);
  const subscription = registration ? await registration.pushManager.getSubscription() : null;
  if (Notification.permission === 'granted' && subscription && device
      && device.endpoint === subscription.endpoint && account && account.user
      && device.user_id === account.user.id) {
    return 'on';
  }
  try {
    return (await applicationServerKey(api)) ? 'off' : 'unavailable';
  } catch {
    return 'off'; // offline: it cannot be told, and turning it on will say why not
  }
}

/**
 * Turn pushes on: ask for the permission, subscribe with the server's key (again when the key
 * changed), register the subscription as a device of the logged-in user.
 * @param {{api?: Api}} [options]
 * @returns {Promise<object>} the Device the server answered
 * @throws {Error} with `code` 'unsupported' | 'denied' | 'unavailable' | 'no_worker' |
 *   'subscribe_failed', or an ApiError (the key or the registration)
 */
export async function enablePush({api} = {}) {
  if (!pushSupported()) throw pushError('unsupported', 'This browser cannot receive push notifications.');
  const permission = await Notification.requestPermission();
  if (permission !== 'granted') {
    throw pushError('denied', 'Notifications are blocked for this site; allow them in the browser.');
  }
  const key = await applicationServerKey(api);
  if (!key) throw pushError('unavailable', 'This server does not send Web Push notifications.');
  const registration = await workerReady();
  const manager = registration.pushManager;
  let subscription = await manager.getSubscription();
  if (subscription && !sameKey(subscription.options.applicationServerKey, key)) {
    // Made with an older key pair of the server: its pushes would be refused. Start again.
    await subscription.unsubscribe();
    subscription = null;
  }
  if (!subscription) {
    try {
      subscription = await manager.subscribe({userVisibleOnly: true, applicationServerKey: key});
    } catch (err) {
      // The browser's push service refused or cannot be reached (no network, a browser
      // without one, such as headless Chromium).
      throw pushError('subscribe_failed',
        `The browser could not subscribe to push notifications (${err && err.message || err}).`);
    }
  }
  return registerSubscription(subscription.toJSON(), {api});
}

/**
 * Register a subscription as a `webpush` device of the logged-in user
 * (`POST /api/v1/push/devices`) and remember it in kv 'push_device'. Registering the same
 * endpoint again is answered with the same device (keys renewed), so this is safe to repeat.
 * @param {{endpoint: string, keys: {p256dh: string, auth: string}}} subscription
 *   `PushSubscription.toJSON()`
 * @param {{api?: Api}} [options]
 * @returns {Promise<object>} the Device
 */
export async function registerSubscription(subscription, {api} = {}) {
  const {endpoint, keys} = subscription;
  const device = await apiOf(api).request('POST', '/push/devices', {
    json: {platform: 'webpush', endpoint, keys: {p256dh: keys.p256dh, auth: keys.auth}},
  });
  const account = await kvGet('account');
  await kvSet(DEVICE_KEY, {
    id: device.id, endpoint, user_id: account && account.user ? account.user.id : null,
  });
  return device;
}

/**
 * Remove this browser's device from the server (`DELETE /api/v1/push/devices/{id}`) and forget
 * it; one the server no longer has (404) counts as removed. Call it before logging out: the
 * device belongs to the user, and the next user of this browser must not get their pushes.
 * @param {{api?: Api}} [options]
 * @returns {Promise<boolean>} true when there was a device to remove
 */
export async function unregisterDevice({api} = {}) {
  const device = await kvGet(DEVICE_KEY);
  if (!device) return false;
  try {
    await apiOf(api).request('DELETE', `/push/devices/${encodeURIComponent(device.id)}`);
  } catch (err) {
    if (!(err instanceof ApiError && err.status === 404)) throw err;
  }
  await kvDelete(DEVICE_KEY);
  return true;
}

/**
 * Turn pushes off: end the browser's subscription and remove the device from the server.
 * @param {{api?: Api}} [options]
 * @returns {Promise<void>}
 */
export async function disablePush({api} = {}) {
  if (pushSupported()) {
    const registration = await navigator.serviceWorker.getRegistration();
    const subscription = registration && await registration.pushManager.getSubscription();
    // Unsubscribed first: even when the server cannot be reached now, nothing is shown any
    // more, and the server drops the device at its next push (the push service says "gone").
    if (subscription) await subscription.unsubscribe();
  }
  await unregisterDevice({api});
}

/** The active service worker registration, or an error when none comes up in time. */
async function workerReady() {
  let timer;
  const timeout = new Promise((_, reject) => {
    timer = setTimeout(() => reject(pushError('no_worker',
      'The app\'s service worker is not running; reload the page and try again.')), READY_TIMEOUT_MS);
  });
  try {
    return await Promise.race([navigator.serviceWorker.ready, timeout]);
  } finally {
    clearTimeout(timer);
  }
}

/** True when an ArrayBuffer key equals a base64url one. */
function sameKey(buffer, base64url) {
  if (!buffer) return false;
  const a = new Uint8Array(buffer);
  const b = fromBase64url(base64url);
  return a.length === b.length && a.every((x, i) => x === b[i]);
}

function fromBase64url(text) {
  const b64 = text.replace(/-/g, '+').replace(/_/g, '/') + '='.repeat((4 - text.length % 4) % 4);
  return Uint8Array.from(atob(b64), (c) => c.charCodeAt(0));
}

function pushError(code, message) {
  const err = new Error(message);
  err.code = code;
  return err;
}
