// Media: uploads with progress (XMLHttpRequest: fetch has no upload progress) and a cache of
// downloaded files in IndexedDB, handed to the page as blob: URLs (the CSP allows img-src
// blob:, and a blob URL needs no token in an <img>).
//
// The cache holds at most CACHE_MAX_BYTES (50 MiB) of files, dropping the least recently used
// first; a single file over FILE_MAX_BYTES (10 MiB) is shown but not kept.

import {tx, req} from './db.js';
import {ApiError} from './api.js';

export const CACHE_MAX_BYTES = 50 * 1024 * 1024;
export const FILE_MAX_BYTES = 10 * 1024 * 1024;

/**
 * Upload a file: POST {base}/media (multipart, field `file`) with the Bearer token; a 401 is
 * followed by one refresh and one retry.
 * @param {import('./api.js').Api} api
 * @param {Blob} blob
 * @param {{filename?: string, onProgress?: (fraction: number) => void, signal?: AbortSignal}} [o]
 * @returns {Promise<object>} the Media
 * @throws {ApiError}
 */
export async function upload(api, blob, {filename, onProgress, signal} = {}) {
  let token = await api.accessToken();
  try {
    return await xhrUpload(api.base + '/media', token, blob, filename, onProgress, signal);
  } catch (err) {
    if (!(err instanceof ApiError) || err.status !== 401) throw err;
    token = (await api.refresh(token)).access_token;
    return xhrUpload(api.base + '/media', token, blob, filename, onProgress, signal);
  }
}

function xhrUpload(url, token, blob, filename, onProgress, signal) {
  return new Promise((resolve, reject) => {
    const xhr = new XMLHttpRequest();
    xhr.open('POST', url);
    xhr.setRequestHeader('Authorization', 'Bearer ' + token);
    xhr.responseType = 'text';
    if (onProgress) {
      xhr.upload.onprogress = (e) => { if (e.lengthComputable && e.total) onProgress(e.loaded / e.total); };
    }
    xhr.onload = () => {
      let data = null;
      try { data = JSON.parse(xhr.responseText); } catch { /* not JSON */ }
      if (xhr.status >= 200 && xhr.status < 300 && data) {
        if (onProgress) onProgress(1);
        resolve(data);
        return;
      }
      const e = data && data.error;
      const ra = xhr.getResponseHeader('Retry-After');
      reject(new ApiError(xhr.status, (e && e.code) || (xhr.status >= 500 ? 'internal' : 'bad_request'),
        (e && e.message) || `The upload failed (${xhr.status}).`,
        ra && /^\d+$/.test(ra) ? Number(ra) * 1000 : undefined));
    };
    xhr.onerror = () => reject(new ApiError(0, 'unavailable', 'The server cannot be reached; try again later.'));
    xhr.onabort = () => reject(new DOMException('upload aborted', 'AbortError'));
    if (signal) signal.addEventListener('abort', () => xhr.abort(), {once: true});
    const form = new FormData();
    form.append('file', blob, filename || (blob.name) || 'file');
    xhr.send(form);
  });
}

/** Downloads through the IndexedDB cache; blob URLs memoized per key for the page's life. */
export class MediaCache {
  /** @param {import('./api.js').Api} api */
  constructor(api) {
    this.api = api;
    this._urls = new Map();
    this._loading = new Map();
  }

  /**
   * A blob: URL of a media (or its thumbnail): from memory, else the IDB cache, else fetched
   * with the Bearer header and kept.
   * @param {string} id
   * @param {{thumbnail?: number}} [options]
   * @returns {Promise<string>}
   */
  url(id, {thumbnail} = {}) {
    const key = thumbnail ? `${id}@thumb${thumbnail}` : id;
    const known = this._urls.get(key);
    if (known) {
      touch(key);
      return Promise.resolve(known);
    }
    if (this._loading.has(key)) return this._loading.get(key);
    const p = this._load(id, key, thumbnail).finally(() => this._loading.delete(key));
    this._loading.set(key, p);
    return p;
  }

  async _load(id, key, thumbnail) {
    let blob = await cachedBlob(key);
    if (!blob) {
      const path = `/media/${encodeURIComponent(id)}${thumbnail ? '/thumbnail' : ''}`;
      blob = await this._fetch(path, thumbnail ? {size: thumbnail} : undefined);
      if (blob.size <= FILE_MAX_BYTES) await keep(key, blob);
    }
    const url = URL.createObjectURL(blob);
    this._urls.set(key, url);
    return url;
  }

  async _fetch(path, query) {
    let url = this.api.base + path;
    if (query) url += '?' + new URLSearchParams(query);
    let token = await this.api.accessToken();
    const get = async (t) => {
      try {
        return await fetch(url, {headers: {Authorization: 'Bearer ' + t}, credentials: 'omit'});
      } catch {
        throw new ApiError(0, 'unavailable', 'The server cannot be reached; try again later.');
      }
    };
    let r = await get(token);
    if (r.status === 401) {
      token = (await this.api.refresh(token)).access_token;
      r = await get(token);
    }
    if (!r.ok) {
      let e = null;
      try { e = (await r.json()).error; } catch { /* no body */ }
      throw new ApiError(r.status, (e && e.code) || 'not_found', (e && e.message) || `The file cannot be loaded (${r.status}).`);
    }
    return r.blob();
  }

  /** Revoke every blob URL this page made (logout). */
  revokeAll() {
    for (const url of this._urls.values()) URL.revokeObjectURL(url);
    this._urls.clear();
  }
}

async function cachedBlob(key) {
  return tx('media', 'readwrite', async (s) => {
    const rec = await req(s.get(key));
    if (!rec) return null;
    rec.used_ts = Date.now();
    s.put(rec, key);
    return rec.blob;
  });
}

function touch(key) {
  // Last use, for the LRU; best effort.
  tx('media', 'readwrite', async (s) => {
    const rec = await req(s.get(key));
    if (rec) { rec.used_ts = Date.now(); s.put(rec, key); }
  }).catch(() => {});
}

/** Keep `blob` under `key`, then drop the least recently used files over the cap. */
async function keep(key, blob) {
  await tx('media', 'readwrite', async (s) => {
    s.put({blob, size: blob.size, content_type: blob.type, used_ts: Date.now()}, key);
    let total = 0;
    const all = [];
    await new Promise((resolve, reject) => {
      const c = s.index('used_ts').openCursor(null, 'prev');
      c.onerror = () => reject(c.error);
      c.onsuccess = () => {
        const cur = c.result;
        if (!cur) { resolve(); return; }
        total += cur.value.size || 0;
        if (total > CACHE_MAX_BYTES) all.push(cur.primaryKey);
        cur.continue();
      };
    });
    for (const k of all) s.delete(k);
  });
}
