/**
 * Boot: open the engine (IndexedDB), apply the theme, show the login screen or the main
 * screen, connect, and register the service worker (pushes, the app shell offline).
 */
import {Client} from './engine/client.js';
import {MainScreen} from './ui/app.js';

const THEME_KEY = 'chatcore-theme';

/**
 * Apply a theme: 'light' or 'dark' set `data-theme` on <html>; 'system' follows the OS.
 * Mirrored in localStorage so the next start applies it before anything is drawn.
 * @param {string} theme
 */
export function applyTheme(theme) {
  const root = document.documentElement;
  if (theme === 'light' || theme === 'dark') root.dataset.theme = theme;
  else delete root.dataset.theme;
  try {
    localStorage.setItem(THEME_KEY, theme || 'system');
  } catch { /* storage refused: applied from IndexedDB at the next start */ }
}

try {
  applyTheme(localStorage.getItem(THEME_KEY) || 'system');
} catch { /* no localStorage */ }

const root = document.getElementById('app');
let screen = null;

async function boot() {
  let client;
  try {
    client = await Client.open({base: '/api/v1'});
  } catch (err) {
    root.removeAttribute('aria-busy');
    root.replaceChildren(Object.assign(document.createElement('p'), {
      className: 'boot error', textContent: `chatcore cannot start in this browser: ${err && err.message || err}`,
    }));
    return;
  }
  client.preferences().then((p) => applyTheme(p.theme || 'system'), () => {});
  client.on('account', ({user}) => {
    if (!user && screen) showLogin(client); // logged out, here or elsewhere
  });
  if (client.user) await showMain(client);
  else await showLogin(client);
  root.removeAttribute('aria-busy');
}

async function showMain(client) {
  screen = new MainScreen(client, {applyTheme});
  await screen.mount(root);
}

async function showLogin(client) {
  if (screen) screen.unmount();
  screen = null;
  const {mountLogin} = await import('./ui/login.js');
  mountLogin(root, client, () => showMain(client));
}

boot().then(() => {
  // Drawn: the service worker may now check the server for a new release of the app.
  if ('serviceWorker' in navigator) navigator.serviceWorker.controller?.postMessage({type: 'started'});
});

if ('serviceWorker' in navigator) {
  // A module worker (sw.js imports the engine); failures only cost pushes and offline start.
  navigator.serviceWorker.register('sw.js', {type: 'module'}).catch(() => {});
}
