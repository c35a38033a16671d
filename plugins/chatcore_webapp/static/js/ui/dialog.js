/**
 * The open room's messages: `role="log"`, oldest at the top, the outbox's echoes (pending,
 * uploading, failed sends) below the stored messages. It shows the newest page from the
 * device store, loads older pages when scrolled to the top (or with "Load older"), and then
 * follows events one row at a time: a new message is one row more, an edit repaints one row,
 * an echo that was sent becomes its stored message in place.
 */
import {h} from './dom.js';
import {icon} from './icons.js';
import {dayLabel, dayStart, timeLabel, preview, firstLine, errorText} from './format.js';

/** Messages per page: the first page of a room and each older one. */
export const PAGE = 50;
/** Pixels from the top that load the older page; from the bottom that count as "at the end". */
const NEAR_TOP = 120;
const NEAR_BOTTOM = 48;

/** Sort key of a row: stored messages by seq, then echoes in send order. */
const keyOf = (row) => (row.message ? [0, row.message.seq, ''] : [1, row.entry.created_ts || 0, row.entry.ref]);
function compare(a, b) {
  for (let i = 0; i < 3; i++) if (a[i] !== b[i]) return a[i] < b[i] ? -1 : 1;
  return 0;
}

export class MessageLog {
  /**
   * @param {{client: any, names: import('./names.js').Names, assets: import('./assets.js').Assets,
   *   onReply: (m: any) => void, onEdit: (row: {message?: any, entry?: any}) => void,
   *   onSeen: (roomId: string, seq: number) => void, onViewImage: (mediaId: string) => void,
   *   notify: (text: string) => void, previews: Map<string, string>}} opts
   */
  constructor(opts) {
    Object.assign(this, opts);
    this.room = null;
    /** @type {{key: any[], message?: any, entry?: any, el: HTMLElement, day: number}[]} */
    this.rows = [];
    this._bySeq = new Map();
    this._byRef = new Map();
    /** Loaded messages by id, for reply quotes. */
    this._byId = new Map();
    /** room id -> the other member's read seq (direct rooms), from receipts. */
    this.readBy = new Map();
    this.hasMore = false;
    this.detached = false;
    this._gen = 0;
    this._loading = false;
    this._follow = true;
    this._menuRow = null;
    this._early = null;

    this.olderBtn = h('button', {type: 'button', class: 'link older', hidden: true, onclick: () => this.loadOlder()}, 'Load older');
    this.list = h('div', {class: 'msgs'});
    this.newestBtn = h('button', {type: 'button', class: 'link newest', hidden: true, onclick: () => this.room && this.show(this.room)}, 'Jump to newest');
    this.emptyNote = h('p', {class: 'log-empty', hidden: true}, 'No messages yet. Say hello!');
    this.el = h('div', {class: 'log', role: 'log', 'aria-label': 'Messages', tabindex: '0'},
      this.olderBtn, this.emptyNote, this.list, this.newestBtn);
    this.el.addEventListener('scroll', () => this._scrolled(), {passive: true});
    this.el.addEventListener('keydown', (e) => this._key(e));
    document.addEventListener('pointerdown', (e) => {
      if (this._menuRow && !this._menuRow.el.contains(e.target)) this._toggleMenu(this._menuRow, false);
    });
  }

  get me() {
    return this.names.me;
  }

  /**
   * Show `room`: its newest page (or the page around `aroundSeq`, a search result) and its outbox.
   * @param {any} room
   * @param {{aroundSeq?: number}} [opts]
   */
  async show(room, {aroundSeq} = {}) {
    const gen = ++this._gen;
    this.room = room;
    // Events of the room that come while its page is read are replayed once it is shown.
    this._early = [];
    let page;
    let entries = [];
    try {
      const lastSeq = room.last_seq || 0;
      const far = aroundSeq != null && lastSeq - aroundSeq >= PAGE / 2;
      page = await this.client.history(room.id, far ? {beforeSeq: aroundSeq + PAGE / 2, limit: PAGE} : {limit: PAGE});
      this.detached = far && page.messages.length > 0 && page.messages[page.messages.length - 1].seq < lastSeq;
      if (!this.detached) entries = await this.client.outbox(room.id);
    } catch (err) {
      if (gen === this._gen) this.notify(`Cannot show the messages: ${errorText(err)}`);
      return;
    }
    if (gen !== this._gen) return; // another room was opened meanwhile
    const early = this._early;
    this._early = null;
    this._reset();
    this.hasMore = page.hasMore;
    this._addMany([...page.messages, ...entries.filter((e) => e.state !== 'sent')]);
    this.olderBtn.hidden = !this.hasMore;
    this.newestBtn.hidden = !this.detached;
    this._wantNames(page.messages);
    this._stickersIfAny(page.messages);
    for (const [fn, arg] of early) this[fn](arg); // known ones are ignored or repaint one row
    if (aroundSeq != null && this._bySeq.has(aroundSeq)) {
      this.highlight(this._bySeq.get(aroundSeq));
    } else {
      this._toBottom();
      this._seen();
    }
    this._fillUp();
  }

  /** A page too short to scroll cannot be scrolled to its top: the older page comes at once. */
  _fillUp() {
    const box = this.el;
    if (this.hasMore && box.clientHeight > 0 && box.scrollHeight <= box.clientHeight) this.loadOlder();
  }

  /** While a page is read, keep an event for after it (true: kept). */
  _later(fn, arg) {
    if (!this._early) return false;
    this._early.push([fn, arg]);
    return true;
  }

  _reset() {
    this.rows = [];
    this._bySeq.clear();
    this._byRef.clear();
    this._byId.clear();
    this._menuRow = null;
    this._follow = true;
    this.list.replaceChildren();
  }

  /** Clear the view (no room open). */
  close() {
    this._gen++;
    this._early = null;
    this.room = null;
    this._reset();
    this.olderBtn.hidden = this.newestBtn.hidden = this.emptyNote.hidden = true;
  }

  // --- events of the open room -------------------------------------------------------------

  /** A message was stored. @param {any} message */
  addMessage(message) {
    if (!this.room || message.room_id !== this.room.id || this._later('addMessage', message)) return;
    if (this.detached) {
      this.newestBtn.hidden = false;
      return;
    }
    if (this._bySeq.has(message.seq)) return this.updateMessage(message);
    const follow = this._atBottom();
    const echo = message.sender_id === this.me ? this._byRef.get(message.ref) : null;
    if (echo) this._remove(echo);
    this._insert({message});
    if (follow || echo) this._toBottom();
    this._wantNames([message]);
    this._stickersIfAny([message]);
    this._seen();
  }

  /** A stored message was edited or deleted. @param {any} message */
  updateMessage(message) {
    if (!this.room || message.room_id !== this.room.id || this._later('updateMessage', message)) return;
    this._byId.set(message.id, message);
    const row = this._bySeq.get(message.seq);
    if (row) {
      row.message = message;
      this._render(row);
    }
    for (const other of this.rows) { // rows quoting it
      const item = other.message || other.entry;
      if (item.reply_to === message.id && other !== row) this._render(other);
    }
  }

  /** A send changed state. @param {any} entry */
  outboxChanged(entry) {
    if (!this.room || entry.room_id !== this.room.id || this._later('outboxChanged', entry)) return;
    if (this.detached) { // writing while reading old messages: back to the newest, to see it go
      if (entry.state === 'pending' && !this._byRef.has(entry.ref)) this.show(this.room);
      return;
    }
    const row = this._byRef.get(entry.ref);
    if (entry.state === 'sent' || entry.state === 'cancelled') {
      if (row) this._remove(row);
      const local = this.previews.get(entry.ref);
      if (local) { // the stored message shows the server's thumbnail from now on
        URL.revokeObjectURL(local);
        this.previews.delete(entry.ref);
      }
      if (entry.state === 'sent' && entry.message) this.addMessage(entry.message);
      return;
    }
    if (row) {
      row.entry = entry;
      this._render(row);
    } else {
      this._insert({entry});
      this._toBottom(); // one's own send: always shown
    }
  }

  /** Upload progress of an echo. @param {string} ref @param {number} progress 0..1 */
  upload(ref, progress) {
    const row = this._byRef.get(ref);
    if (!row) return;
    row.entry = {...row.entry, progress};
    const bar = row.el.querySelector('progress');
    if (bar) bar.value = progress;
    else this._render(row);
  }

  /**
   * Someone read the room up to `seq`: in a direct room one's own messages up to there are read.
   * @param {string} roomId @param {string} userId @param {number} seq
   */
  receipt(roomId, userId, seq) {
    if (userId === this.me) return;
    const before = this.readBy.get(roomId) || 0;
    if (seq <= before) return;
    this.readBy.set(roomId, seq);
    if (!this.room || roomId !== this.room.id || this.room.kind !== 'direct') return;
    for (const row of this.rows) {
      const m = row.message;
      if (m && m.sender_id === this.me && m.seq > before && m.seq <= seq) {
        // Only the mark changes: the log (a live region) does not hear the message again.
        row.el.querySelector('.mark')?.replaceWith(this._mark(row));
      }
    }
  }

  /** Paint every row again (names learned, stickers known). */
  repaint() {
    for (const row of this.rows) this._render(row);
  }

  // --- older pages, scrolling -------------------------------------------------------------

  /** Load the page before the oldest shown message, keeping the view where it was. */
  async loadOlder() {
    if (!this.room || !this.hasMore || this._loading) return;
    const first = this.rows.find((r) => r.message);
    if (!first) return;
    const gen = this._gen;
    this._loading = true;
    let page;
    try {
      page = await this.client.history(this.room.id, {beforeSeq: first.message.seq, limit: PAGE});
    } catch (err) {
      this.notify(`Cannot load older messages: ${errorText(err)}`);
      return;
    } finally {
      this._loading = false;
    }
    if (gen !== this._gen) return;
    this.hasMore = page.hasMore;
    this.olderBtn.hidden = !this.hasMore;
    const height = this.el.scrollHeight;
    const top = this.el.scrollTop;
    this._addMany(page.messages);
    // What was on screen stays there: the new rows are above it.
    this.el.scrollTop = top + this.el.scrollHeight - height;
    this._wantNames(page.messages);
    this._stickersIfAny(page.messages);
    this._fillUp();
  }

  _scrolled() {
    this._follow = this._atBottom();
    if (this.el.scrollTop < NEAR_TOP && this.hasMore && !this._loading) this.loadOlder();
    if (this._follow) this._seen();
  }

  _atBottom() {
    return this.el.scrollHeight - this.el.scrollTop - this.el.clientHeight < NEAR_BOTTOM;
  }

  _toBottom() {
    this.el.scrollTop = this.el.scrollHeight;
    this._follow = true;
  }

  /** Tell the app the newest stored message is on screen (it marks the room read). */
  _seen() {
    if (!this.room || this.detached || document.visibilityState !== 'visible' || !this._atBottom()) return;
    for (let i = this.rows.length - 1; i >= 0; i--) {
      const m = this.rows[i].message;
      if (m) return this.onSeen(this.room.id, m.seq);
    }
  }

  /** The page became visible again: what is on screen counts as read now. */
  visible() {
    this._seen();
  }

  /**
   * Scroll to a message and highlight it for a moment (a search result, a quote).
   * @param {{el: HTMLElement}} row
   */
  highlight(row) {
    const article = row.el.querySelector('.msg');
    article.classList.add('highlight');
    article.scrollIntoView({block: 'center'});
    article.focus({preventScroll: true});
    setTimeout(() => article.classList.remove('highlight'), 4000);
  }

  /** @param {string} id @returns {any|undefined} a loaded message by id */
  message(id) {
    return this._byId.get(id);
  }

  // --- rows --------------------------------------------------------------------------------

  /** Add rows for items not shown yet, keeping order and day separators. @param {any[]} items */
  _addMany(items) {
    for (const item of items) {
      if (item.state === undefined) { // a stored message (outbox entries carry a state)
        if (!this._bySeq.has(item.seq)) this._insert({message: item}, false);
      } else if (!this._byRef.has(item.ref)) {
        this._insert({entry: item}, false);
      }
    }
    this._days();
  }

  /**
   * Insert one row at its place.
   * @param {{message?: any, entry?: any}} row
   * @param {boolean} [days] fix the day separators now
   */
  _insert(row, days = true) {
    row.key = keyOf(row);
    const item = row.message || row.entry;
    row.day = dayStart(row.message ? item.ts : item.created_ts || Date.now());
    row.el = h('div', {class: 'row'});
    let lo = 0;
    let hi = this.rows.length;
    while (lo < hi) {
      const mid = (lo + hi) >> 1;
      if (compare(this.rows[mid].key, row.key) < 0) lo = mid + 1;
      else hi = mid;
    }
    const next = this.rows[lo];
    this.rows.splice(lo, 0, row);
    if (row.message) {
      this._bySeq.set(row.message.seq, row);
      this._byId.set(row.message.id, row.message);
    } else {
      this._byRef.set(row.entry.ref, row);
    }
    this._render(row);
    this.list.insertBefore(row.el, next ? next.el : null);
    this.emptyNote.hidden = true;
    if (days) this._days();
  }

  _remove(row) {
    const index = this.rows.indexOf(row);
    if (index >= 0) this.rows.splice(index, 1);
    if (row.message) this._bySeq.delete(row.message.seq);
    else this._byRef.delete(row.entry.ref);
    row.el.remove();
    this._days();
  }

  /** Show a day separator above the first row of each day. */
  _days() {
    let day = null;
    const today = Date.now();
    for (const row of this.rows) {
      const sep = row.el.firstChild;
      const show = row.day !== day;
      day = row.day;
      sep.hidden = !show;
      if (show) sep.firstChild.textContent = dayLabel(row.day, today);
    }
    this.emptyNote.hidden = this.rows.length > 0 || !this.room;
  }

  /** (Re)build a row's element from its message or entry. */
  _render(row) {
    const m = row.message;
    const e = row.entry;
    const item = m || e;
    const own = m ? m.sender_id === this.me : true;
    const article = h('article', {
      class: `msg ${own ? 'own' : 'other'}${m && m.deleted ? ' deleted' : ''}${e && e.state === 'failed' ? ' failed' : ''}`,
      tabindex: '-1',
      'data-id': m ? m.id : null,
      'data-seq': m ? m.seq : null,
      'data-ref': e ? e.ref : null,
    });
    const bubble = h('div', {class: 'bubble'});
    const showSender = !own || (this.room && this.room.kind === 'group');
    if (showSender) bubble.append(h('div', {class: 'sender'}, m ? this.names.name(m.sender_id) : 'You'));
    if (item.reply_to) bubble.append(this._quote(item.reply_to));
    bubble.append(this._body(row));
    const meta = h('div', {class: 'meta'});
    if (m && m.edited_ts && !m.deleted) meta.append(h('span', {class: 'edited'}, 'edited'));
    const ts = m ? m.ts : e.created_ts;
    meta.append(h('time', {datetime: new Date(ts).toISOString()}, timeLabel(ts)));
    if (own && !(m && m.deleted)) meta.append(this._mark(row));
    bubble.append(meta);
    if (e && e.state === 'failed') {
      bubble.append(h('div', {class: 'fail-actions'},
        h('button', {type: 'button', onclick: () => this._act('resend', row)}, 'Retry'),
        h('button', {type: 'button', onclick: () => this._act('cancel', row)}, 'Cancel')));
    }
    const actions = this._actionsFor(row);
    const toolbar = h('div', {class: 'toolbar', role: 'group', 'aria-label': 'Message actions', hidden: true},
      actions.map(([label, what]) => h('button', {type: 'button', onclick: () => this._act(what, row)}, label)));
    const menuBtn = actions.length
      ? h('button', {type: 'button', class: 'icon-btn actions', 'aria-label': 'Actions', 'aria-expanded': 'false',
        onclick: () => this._toggleMenu(row)}, icon('more'))
      : null;
    article.append(bubble, menuBtn || '', toolbar);
    const sep = row.el.firstChild || h('div', {class: 'day', hidden: true}, h('span'));
    row.el.replaceChildren(sep, article);
    if (this._menuRow === row) this._menuRow = null;
  }

  /** The mark of one's own message: pending, sent, read, failed. */
  _mark(row) {
    const e = row.entry;
    if (e) {
      if (e.state === 'failed') {
        const reason = (e.error && (e.error.message || e.error.code)) || 'refused';
        return h('span', {class: 'mark failed'}, `✗ failed: ${reason}`);
      }
      const label = e.state === 'uploading' ? 'uploading' : e.state === 'sending' ? 'sending' : 'pending';
      return h('span', {class: 'mark pending', role: 'img', 'aria-label': label, title: label}, '⏳');
    }
    const read = this.room && this.room.kind === 'direct' && row.message.seq <= (this.readBy.get(this.room.id) || 0);
    return h('span', {class: `mark ${read ? 'read' : 'sent'}`, role: 'img', 'aria-label': read ? 'read' : 'sent', title: read ? 'read' : 'sent'}, read ? '✓✓' : '✓');
  }

  /** The quote of a message replied to. @param {string} id */
  _quote(id) {
    const quoted = this._byId.get(id);
    let text = 'A message not loaded here';
    if (quoted) {
      const sticker = quoted.kind === 'sticker' ? this.assets.sticker(quoted.sticker_id) : null;
      text = `${this.names.name(quoted.sender_id)}: ${preview(quoted, {stickerEmoji: sticker && sticker.emoji, limit: 60})}`;
    }
    return h('button', {type: 'button', class: 'quote', 'aria-label': `In reply to ${text}`,
      onclick: () => {
        const m = this._byId.get(id);
        const row = m && this._bySeq.get(m.seq);
        if (row) this.highlight(row);
      }}, text);
  }

  /** What the message says or shows: text, image, file, sticker. */
  _body(row) {
    const m = row.message;
    const e = row.entry;
    const item = m || e;
    if (m && m.deleted) return h('div', {class: 'body muted'}, 'Message deleted');
    if (item.kind === 'sticker') {
      const img = h('img', {class: 'sticker', alt: 'Sticker', width: 128, height: 128});
      const sticker = this.assets.sticker(item.sticker_id);
      if (sticker) {
        img.alt = sticker.emoji || 'Sticker';
        const known = this.assets.now(sticker.media_id);
        if (known) img.src = known;
        else this.assets.url(sticker.media_id).then((url) => { if (url) img.src = url; });
      }
      return h('div', {class: 'body'}, img);
    }
    if (item.kind === 'media') {
      const box = h('div', {class: 'body media'});
      if (e) { // an upload: the local picture while it goes
        const local = this.previews.get(e.ref) || this._localPreview(e);
        if (local) box.append(h('img', {class: 'thumb', src: local, alt: e.filename || 'Image'}));
        else box.append(h('span', {class: 'file-name'}, '📎 ' + (e.filename || 'File')));
        if (e.state === 'uploading' || e.progress != null && e.progress < 1 && e.state !== 'failed') {
          box.append(h('progress', {max: '1', value: String(e.progress || 0), 'aria-label': 'Upload progress'}));
        }
      } else {
        this._media(box, m.media_id);
      }
      if (item.body) box.append(h('div', {class: 'caption'}, item.body));
      return box;
    }
    return h('div', {class: 'body'}, item.body || '');
  }

  /** An outbox entry's picture from the blob it holds (after a reload the UI's copy is gone). */
  _localPreview(entry) {
    const blob = entry.blob || entry.file;
    if (!(blob instanceof Blob) || !/^image\//.test(blob.type)) return null;
    const url = URL.createObjectURL(blob);
    this.previews.set(entry.ref, url);
    return url;
  }

  /** A received media: its thumbnail (click: the viewer), or a download button for a file. */
  _media(box, mediaId) {
    const shown = (url) => (url
      ? h('button', {type: 'button', class: 'thumb-btn', 'aria-label': 'Open image', onclick: () => this.onViewImage(mediaId)},
        h('img', {class: 'thumb', src: url, alt: 'Image'}))
      : h('button', {type: 'button', class: 'file-btn', onclick: () => this._download(mediaId)}, '📎 Download file'));
    const known = this.assets.now(mediaId, 256);
    if (known !== undefined) return box.append(shown(known)); // a repaint: no placeholder
    const holder = h('span', {class: 'thumb-wait', 'aria-label': 'Loading picture', role: 'img'});
    box.append(holder);
    this.assets.url(mediaId, 256).then((url) => {
      const follow = this._atBottom();
      const el = shown(url);
      if (url && follow) el.firstChild.addEventListener('load', () => this._toBottom(), {once: true});
      holder.replaceWith(el);
    });
  }

  async _download(mediaId) {
    const url = await this.assets.url(mediaId);
    if (!url) return this.notify('The file cannot be downloaded now.');
    const a = h('a', {href: url, download: 'file'});
    document.body.append(a);
    a.click();
    a.remove();
  }

  /** The actions a row offers: [label, what]. */
  _actionsFor(row) {
    const m = row.message;
    const e = row.entry;
    if (e) {
      const out = [];
      if (e.kind === 'text' && (e.state === 'pending' || e.state === 'failed')) out.push(['Edit', 'edit']);
      if (e.state === 'failed') out.push(['Resend', 'resend']);
      if (e.state === 'pending' || e.state === 'failed' || e.state === 'uploading') out.push(['Cancel', 'cancel']);
      return out;
    }
    if (m.deleted) return [];
    const out = [['Reply', 'reply']];
    const own = m.sender_id === this.me;
    if (own && m.kind === 'text') out.push(['Edit', 'edit']);
    if (own || (this.room && this.room.kind === 'group' && this.room.owner_id === this.me)) out.push(['Delete', 'delete']);
    return out;
  }

  _toggleMenu(row, open) {
    const toolbar = row.el.querySelector('.toolbar');
    const btn = row.el.querySelector('.actions');
    if (!toolbar || !btn) return;
    const show = open ?? toolbar.hidden;
    if (show && this._menuRow && this._menuRow !== row) this._toggleMenu(this._menuRow, false);
    toolbar.hidden = !show;
    btn.setAttribute('aria-expanded', String(show));
    this._menuRow = show ? row : null;
    if (show) toolbar.querySelector('button')?.focus();
  }

  async _act(what, row) {
    if (this._menuRow === row) this._toggleMenu(row, false);
    const m = row.message;
    const e = row.entry;
    try {
      if (what === 'reply') this.onReply(m);
      else if (what === 'edit') this.onEdit(row);
      else if (what === 'resend') await this.client.resend(e.ref);
      else if (what === 'cancel') {
        await this.client.cancel(e.ref);
        if (this._byRef.get(e.ref) === row) this._remove(row);
      } else if (what === 'delete') {
        const {confirmModal} = await import('./modal.js');
        if (await confirmModal('Delete this message?', 'Delete')) await this.client.delete(m.room_id, m.id);
      }
    } catch (err) {
      this.notify(errorText(err));
    }
  }

  /** Keys inside the log: arrows move between messages; r/e/Delete act on the focused one. */
  _key(ev) {
    const article = ev.target.closest && ev.target.closest('.msg');
    if (ev.key === 'Escape' && this._menuRow) {
      const row = this._menuRow;
      this._toggleMenu(row, false);
      row.el.querySelector('.actions')?.focus();
      ev.stopPropagation();
      ev.preventDefault();
      return;
    }
    if (ev.key === 'ArrowUp' || ev.key === 'ArrowDown') {
      if (ev.altKey || ev.ctrlKey || ev.metaKey) return;
      const all = [...this.list.querySelectorAll('.msg')];
      if (!all.length) return;
      let index = article ? all.indexOf(article) : all.length;
      index += ev.key === 'ArrowUp' ? -1 : 1;
      if (index < 0) {
        this.loadOlder();
        index = 0;
      }
      if (index < all.length) all[index].focus();
      ev.preventDefault();
      return;
    }
    if (!article || ev.target !== article || ev.altKey || ev.ctrlKey || ev.metaKey) return;
    const row = this.rows.find((r) => r.el.contains(article));
    if (!row) return;
    const actions = this._actionsFor(row).map(([, what]) => what);
    const what = {r: 'reply', e: 'edit', Delete: 'delete', Enter: 'menu'}[ev.key];
    if (what === 'menu') this._toggleMenu(row, true);
    else if (what && actions.includes(what)) this._act(what, row);
    else return;
    ev.preventDefault();
  }

  _wantNames(messages) {
    this.names.want(messages.map((m) => m.sender_id));
  }

  _stickersIfAny(messages) {
    if (!messages.some((m) => m.kind === 'sticker' && !this.assets.sticker(m.sticker_id))) return;
    this.assets.packs().then(() => {
      for (const row of this.rows) if (row.message && row.message.kind === 'sticker') this._render(row);
    }, () => {});
  }
}

/**
 * The one-line description of a message for a reply banner: "Ann: see you at 5".
 * @param {any} message
 * @param {import('./names.js').Names} names
 */
export function describe(message, names) {
  return `${names.name(message.sender_id)}: ${firstLine(preview(message), 60)}`;
}
