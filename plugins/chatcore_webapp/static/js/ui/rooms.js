/**
 * The room list: `<ul aria-label="Rooms">` of buttons, most recent activity first, each with
 * the title, the newest message, its time and the unread count. It repaints from the device
 * store (`client.rooms()`, a few ms) whenever something may have changed, keyed by room id
 * so focus and the rows' nodes survive a reorder.
 */
import {h, srOnly, debounce} from './dom.js';
import {preview, whenLabel, hue, initial} from './format.js';

/**
 * A round avatar: the picture when there is one, else the name's initial on a colour.
 * @param {string} name
 * @param {string} key what picks the colour (an id)
 * @param {string|undefined} mediaId the avatar's media
 * @param {import('./assets.js').Assets} [assets]
 */
export function avatar(name, key, mediaId, assets) {
  const el = h('span', {class: `avatar hue-${hue(key)}`, 'aria-hidden': 'true'}, initial(name));
  if (mediaId && assets) {
    assets.url(mediaId, 256).then((url) => {
      if (url) el.replaceChildren(h('img', {src: url, alt: ''}));
    });
  }
  return el;
}

export class RoomList {
  /**
   * @param {{client: any, names: import('./names.js').Names, onOpen: (id: string) => void,
   *   onPainted?: (rooms: any[]) => void, stickerEmoji?: (id: string) => string|undefined,
   *   assets?: import('./assets.js').Assets}} opts
   */
  constructor({client, names, onOpen, onPainted, stickerEmoji, assets}) {
    this.client = client;
    this.names = names;
    this.assets = assets;
    this.onOpen = onOpen;
    this.onPainted = onPainted || (() => {});
    this.stickerEmoji = stickerEmoji || (() => undefined);
    this.el = h('ul', {class: 'rooms', 'aria-label': 'Rooms'});
    this.empty = h('p', {class: 'rooms-empty', hidden: true},
      'No conversations yet. Open Contacts to invite someone, or start a group.');
    /** @type {any[]} the rooms as last read, in display order */
    this.rooms = [];
    /** @type {Map<string, HTMLLIElement>} */
    this._items = new Map();
    this.active = null;
    this._loading = null;
    this._again = false;
    /** Repaint soon (events come in bursts: one read of the store for many). */
    this.refresh = debounce(() => this.load(), 40);
  }

  /**
   * Read the rooms from the device store and paint them.
   * @returns {Promise<any[]>}
   */
  async load() {
    if (this._loading) { // one read at a time; the latest wish is read after it
      this._again = true;
      return this._loading;
    }
    this._loading = (async () => {
      try {
        do {
          this._again = false;
          this.paint(await this.client.rooms());
        } while (this._again);
      } finally {
        this._loading = null;
      }
      return this.rooms;
    })();
    return this._loading;
  }

  /**
   * Paint `rooms` (already ordered by activity), reusing each room's node.
   * @param {any[]} rooms
   */
  paint(rooms) {
    this.rooms = rooms;
    const focusedId = this.el.contains(document.activeElement) ? document.activeElement.closest('li')?.dataset.id : null;
    const seen = new Set();
    let before = this.el.firstChild;
    for (const room of rooms) {
      seen.add(room.id);
      let li = this._items.get(room.id);
      if (!li) {
        li = h('li', {'data-id': room.id});
        this._items.set(room.id, li);
      }
      this._fill(li, room);
      if (li !== before) this.el.insertBefore(li, before);
      else before = before.nextSibling;
    }
    for (const [id, li] of this._items) {
      if (!seen.has(id)) {
        li.remove();
        this._items.delete(id);
      }
    }
    this.empty.hidden = rooms.length > 0;
    if (focusedId && this._items.has(focusedId) && !this.el.contains(document.activeElement)) {
      this._items.get(focusedId).querySelector('button').focus();
    }
    this.onPainted(rooms);
  }

  /** @param {HTMLLIElement} li @param {any} room */
  _fill(li, room) {
    const title = room.title || room.name || 'Conversation';
    const last = room.last_message;
    let text = '';
    if (last) {
      const sticker = last.kind === 'sticker' ? this.stickerEmoji(last.sticker_id) : undefined;
      text = preview(last, {stickerEmoji: sticker});
      if (last.sender_id === this.names.me) text = 'You: ' + text;
      else if (room.kind === 'group' && last.sender_id) text = `${this.names.name(last.sender_id)}: ${text}`;
    }
    const ts = room.last_ts || (last && last.ts) || room.created_ts;
    const unread = room.unread || 0;
    const peer = room.kind === 'direct' && room.peer_id ? this.names.users.get(room.peer_id) : null;
    if (room.kind === 'direct' && room.peer_id && !peer) this.names.want([room.peer_id]);
    const picture = peer && peer.avatar_media_id;
    // Rebuilt only when something shown changed: a burst of events costs no DOM work.
    const sig = JSON.stringify([title, text, ts, unread, room.id === this.active, room.kind, picture]);
    if (li.dataset.sig === sig) return;
    li.dataset.sig = sig;
    const button = li.firstChild || h('button', {type: 'button', class: 'room', onclick: () => this.onOpen(room.id)});
    button.replaceChildren(
      avatar(title, room.peer_id || room.id, picture, this.assets),
      h('span', {class: 'room-main'},
        h('span', {class: 'room-top'},
          h('span', {class: 'room-title'}, title),
          ts ? h('time', {class: 'room-time', datetime: new Date(ts).toISOString()}, whenLabel(ts)) : null),
        h('span', {class: 'room-bottom'},
          h('span', {class: 'room-preview'}, text || (room.kind === 'group' ? 'Group created' : 'No messages yet')),
          unread ? h('span', {class: 'badge'}, unread > 99 ? '99+' : String(unread), srOnly(' unread')) : null)));
    if (room.id === this.active) button.setAttribute('aria-current', 'true');
    else button.removeAttribute('aria-current');
    button.classList.toggle('unread', unread > 0);
    if (!li.firstChild) li.append(button);
  }

  /**
   * Mark `id` as the open room.
   * @param {string|null} id
   */
  setActive(id) {
    this.active = id;
    for (const [roomId, li] of this._items) {
      const button = li.firstChild;
      if (!button) continue;
      if (roomId === id) button.setAttribute('aria-current', 'true');
      else button.removeAttribute('aria-current');
      delete li.dataset.sig;
    }
  }

  /** @param {string} id @returns {any|undefined} the room as last read */
  get(id) {
    return this.rooms.find((r) => r.id === id);
  }

  /**
   * The room `delta` places away from `id` in the list (Alt+Arrow keys).
   * @param {string|null} id
   * @param {number} delta
   */
  neighbour(id, delta) {
    if (!this.rooms.length) return null;
    const index = this.rooms.findIndex((r) => r.id === id);
    const next = index < 0 ? 0 : Math.min(this.rooms.length - 1, Math.max(0, index + delta));
    return this.rooms[next].id;
  }

  /** Total unread, for the page title. */
  get unread() {
    return this.rooms.reduce((n, r) => n + (r.unread || 0), 0);
  }
}
