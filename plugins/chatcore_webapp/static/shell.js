// The app shell: which files the service worker keeps so the app starts offline.
//
// The list is not written down: it is found from the page, as the browser would load it
// (index.html's links and scripts, the manifest's icons, every module's imports, the style
// sheets' url()s). A file added to the app is cached without anyone remembering to list it,
// and a file no longer used is no longer fetched. Kept in one module, beside sw.js.

/** The cache of the shell; a new name drops the old cache on activation. */
export const SHELL_CACHE = 'chatcore-shell-v1';
/** Where the walk starts, relative to the worker's scope (the app's mount path). */
export const ENTRIES = ['index.html', 'manifest.webmanifest'];
/** The files the shell is made of (and nothing else is cached): by extension. */
const SHELL_TYPES = /\.(?:html|js|css|svg|png|ico|webmanifest|json)$/;
/** The worker's own modules: the browser keeps and updates those itself. */
const WORKER_FILES = ['sw.js', 'shell.js'];
/** At most this many files, so a loop of references can never run away. */
const MAX_FILES = 200;

/**
 * True when `url` is one of the app's own files under `scope` (never the API, never the
 * worker's own modules).
 * @param {string} url absolute
 * @param {string} scope the worker's scope, ending in '/'
 */
export function isShellFile(url, scope) {
  const {origin, pathname} = new URL(url);
  const base = new URL(scope);
  if (origin !== base.origin || !pathname.startsWith(base.pathname)) return false;
  if (pathname.startsWith('/api/')) return false;
  const rest = pathname.slice(base.pathname.length);
  return SHELL_TYPES.test(rest) && !WORKER_FILES.includes(rest);
}

/**
 * Walk the app from `ENTRIES` and return every file it references, with its response.
 * @param {string} scope the worker's scope
 * @param {(url: string) => Promise<Response>} load fetches one file
 * @param {string[]} [failed] receives the URLs that could not be fetched
 * @returns {Promise<Map<string, Response>>} absolute URL -> its (unread) response
 */
export async function collectShell(scope, load, failed = []) {
  const found = new Map();
  let wave = ENTRIES.map((path) => new URL(path, scope).href);
  while (wave.length && found.size < MAX_FILES) {
    const next = [];
    await Promise.all(wave.map(async (url) => {
      if (found.has(url) || !isShellFile(url, scope)) return;
      found.set(url, null);
      let response;
      try {
        response = await load(url);
      } catch {
        found.delete(url); // offline: it is cached on its next load instead
        failed.push(url);
        return;
      }
      if (!response.ok) { found.delete(url); failed.push(url); return; }
      found.set(url, response);
      const text = await response.clone().text();
      for (const ref of referencesOf(url, text)) {
        const href = new URL(ref, url);
        href.search = ''; href.hash = '';
        if (!found.has(href.href)) next.push(href.href);
      }
    }));
    wave = next;
  }
  for (const [url, response] of found) if (!response) found.delete(url);
  return found;
}

/** The relative references a file of the app makes, by its type. */
function referencesOf(url, text) {
  const path = new URL(url).pathname;
  const refs = [];
  const all = (re) => { for (const m of text.matchAll(re)) refs.push(m[1] || m[2]); };
  if (path.endsWith('.html') || path.endsWith('/')) {
    all(/<(?:link|script|img)\b[^>]*?\b(?:href|src)\s*=\s*["']([^"']+)["']/gi);
  } else if (path.endsWith('.js')) {
    // Static imports and re-exports (`from './x.js'`, `import './x.js'`) and dynamic ones.
    all(/\bfrom\s*["'](\.{1,2}\/[^"']+)["']|\bimport\s*\(?\s*["'](\.{1,2}\/[^"']+)["']/g);
    // Files a module names for the page (new URL('../icon.svg', import.meta.url)).
    all(/new URL\(\s*["'](\.{1,2}\/[^"']+)["']\s*,\s*import\.meta\.url/g);
  } else if (path.endsWith('.css')) {
    all(/url\(\s*["']?([^"')]+)["']?\s*\)|@import\s+["']([^"']+)["']/g);
  } else if (path.endsWith('.webmanifest') || path.endsWith('.json')) {
    try {
      const manifest = JSON.parse(text);
      for (const icon of manifest.icons || []) if (icon && icon.src) refs.push(icon.src);
    } catch { /* not JSON: nothing referenced */ }
  }
  // data:, blob: and absolute URLs to elsewhere are left to isShellFile to refuse.
  return refs.filter((ref) => ref && !/^(?:data|blob):/i.test(ref));
}
