/**
 * Pictures the views show: thumbnails, full images and stickers, as blob: URLs from the
 * engine's media cache (IndexedDB), remembered here so a repaint reuses them. A media that
 * has no thumbnail (the server answers 400 for what is not an image) is a file.
 */

export class Assets {
  /** @param {any} client */
  constructor(client) {
    this.client = client;
    /** @type {Map<string, Promise<string|null>>} */
    this._urls = new Map();
    /** @type {Map<string, string|null>} the answers already in, for a repaint without a flicker */
    this.known = new Map();
    /** @type {Promise<any[]>|null} */
    this._packs = null;
    /** @type {Map<string, any>} sticker id -> {id, emoji, media_id, url} */
    this.stickers = new Map();
  }

  /**
   * A blob: URL of a media (or its thumbnail); null when there is none (not an image).
   * @param {string} mediaId
   * @param {number} [thumbnail] a size such as 256
   * @returns {Promise<string|null>}
   */
  url(mediaId, thumbnail) {
    const key = `${mediaId}:${thumbnail || ''}`;
    let found = this._urls.get(key);
    if (!found) {
      found = this.client.mediaUrl(mediaId, thumbnail ? {thumbnail} : {}).then((url) => {
        this.known.set(key, url);
        return url;
      }, (err) => {
        // Offline or a passing failure: asked again next time; a refusal (not an image) is kept.
        if (!err || !err.status || err.status >= 500 || err.status === 401) this._urls.delete(key);
        else this.known.set(key, null);
        return null;
      });
      this._urls.set(key, found);
    }
    return found;
  }

  /**
   * The answer of `url()` when it is already in: a URL, null (none), or undefined (not yet).
   * @param {string} mediaId
   * @param {number} [thumbnail]
   */
  now(mediaId, thumbnail) {
    return this.known.get(`${mediaId}:${thumbnail || ''}`);
  }

  /**
   * The server's sticker packs (asked once; again after a failure).
   * @returns {Promise<any[]>}
   */
  packs() {
    if (!this._packs) {
      this._packs = this.client.stickerPacks().then((packs) => {
        for (const pack of packs) for (const s of pack.stickers) this.stickers.set(s.id, s);
        return packs;
      }, (err) => {
        this._packs = null;
        throw err;
      });
    }
    return this._packs;
  }

  /**
   * A sticker by id (after `packs()` loaded), for its emoji and image.
   * @param {string} id
   */
  sticker(id) {
    return this.stickers.get(id);
  }
}
