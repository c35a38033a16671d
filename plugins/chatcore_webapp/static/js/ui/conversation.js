/**
 * The right pane: the open room's header (title, presence or members, who is typing, the
 * room's options), its messages and the composer.
 */
import {h} from './dom.js';
import {icon} from './icons.js';
import {typingLine} from './format.js';
import {MessageLog} from './dialog.js';
import {Composer} from './composer.js';

/** A "typing" without news for this long is over (the sender may have gone away). */
const TYPING_TTL = 6000;

export class Conversation {
  /**
   * @param {{client: any, names: import('./names.js').Names, assets: import('./assets.js').Assets,
   *   notify: (text: string) => void, onBack: () => void, onSeen: (roomId: string, seq: number) => void,
   *   onViewImage: (id: string) => void, isMuted: (id: string) => boolean,
   *   setMuted: (id: string, muted: boolean) => Promise<void>}} opts
   */
  constructor(opts) {
    Object.assign(this, opts);
    this.room = null;
    this.previews = new Map();
    /** @type {Map<string, Map<string, number>>} room -> user -> expiry timer */
    this._typing = new Map();

    this.title = h('h2', {class: 'conv-title', id: 'conv-title'}, 'No conversation open');
    this.sub = h('p', {class: 'conv-sub'});
    this.typingEl = h('p', {class: 'typing', role: 'status', 'aria-live': 'polite'});
    this.muteBtn = h('button', {type: 'button', onclick: () => this._toggleMute()}, 'Mute notifications');
    this.menu = h('div', {class: 'toolbar head-menu', role: 'group', 'aria-label': 'Room options', hidden: true}, this.muteBtn);
    this.optionsBtn = h('button', {type: 'button', class: 'icon-btn', 'aria-label': 'Room options', 'aria-expanded': 'false',
      onclick: () => this._menu()}, icon('more'));
    this.header = h('header', {class: 'conv-head'},
      h('button', {type: 'button', class: 'icon-btn back', 'aria-label': 'Back', onclick: () => this.onBack()}, icon('back')),
      h('div', {class: 'conv-names'}, this.title, this.sub, this.typingEl),
      this.optionsBtn, this.menu);
    this.log = new MessageLog({
      client: this.client, names: this.names, assets: this.assets, previews: this.previews,
      notify: this.notify, onSeen: this.onSeen, onViewImage: this.onViewImage,
      onReply: (m) => this.composer.reply(m),
      onEdit: (row) => this.composer.edit(row),
    });
    this.composer = new Composer({
      client: this.client, names: this.names, assets: this.assets, notify: this.notify,
      onQueued: (entry, url) => {
        if (url) this.previews.set(entry.ref, url);
        this.log.outboxChanged(entry);
        const row = this.log._byRef.get(entry.ref);
        if (row) this.log._render(row);
      },
    });
    this.placeholder = h('div', {class: 'conv-empty'}, h('p', {}, 'Choose a conversation from the list.'));
    this.el = h('section', {class: 'conversation', 'aria-labelledby': 'conv-title'},
      this.header, this.placeholder, this.log.el, this.composer.el);
    this._setOpen(false);
    this.names.onChange(() => this.paintHeader());
    // The options menu closes on Escape and on a click elsewhere, as menus do.
    this.header.addEventListener('keydown', (e) => {
      if (e.key === 'Escape' && !this.menu.hidden) {
        e.stopPropagation();
        this._menu(false);
        this.optionsBtn.focus();
      }
    });
    document.addEventListener('pointerdown', (e) => {
      if (!this.menu.hidden && !this.menu.contains(e.target) && !this.optionsBtn.contains(e.target)) this._menu(false);
    });
  }

  _setOpen(open) {
    this.placeholder.hidden = open;
    this.log.el.hidden = !open;
    this.composer.el.hidden = !open;
    this.optionsBtn.hidden = !open;
  }

  /**
   * Show `room` (around `aroundSeq`: a search result).
   * @param {any} room
   * @param {{aroundSeq?: number}} [opts]
   */
  async open(room, opts = {}) {
    this.room = room;
    this._setOpen(true);
    this.composer.setRoom(room);
    this._menu(false);
    this.paintHeader();
    this.paintTyping();
    if (room.kind === 'direct') this.names.want(room.member_ids || []);
    await this.log.show(room, opts);
  }

  /** No room open (it was left). */
  close() {
    this.room = null;
    this.log.close();
    this.composer.setRoom(null);
    this._setOpen(false);
    this.paintHeader();
  }

  /** A newer copy of the open room (renamed, members changed). @param {any} room */
  update(room) {
    if (!this.room || room.id !== this.room.id) return;
    this.room = {...this.room, ...room};
    this.log.room = this.room;
    this.composer.room = this.room;
    this.paintHeader();
  }

  /** The other member of a direct room. */
  peer(room = this.room) {
    return room && room.kind === 'direct' ? (room.member_ids || []).find((id) => id !== this.names.me) : null;
  }

  paintHeader() {
    const room = this.room;
    if (!room) {
      this.title.textContent = 'No conversation open';
      this.sub.textContent = '';
      return;
    }
    const peer = this.peer();
    const muted = this.isMuted(room.id);
    this.title.textContent = room.title || (peer ? this.names.name(peer) : room.name) || 'Conversation';
    const parts = [];
    const status = peer ? this.names.presence.get(peer) : null;
    if (peer) {
      if (status) parts.push(status);
    } else {
      const n = (room.member_ids || []).length;
      parts.push(`${n} member${n === 1 ? '' : 's'}`);
    }
    if (muted) parts.push('notifications off');
    this.sub.textContent = parts.join(' · ');
    this.sub.className = `conv-sub${status ? ` presence ${status}` : ''}`;
    this.muteBtn.textContent = muted ? 'Unmute notifications' : 'Mute notifications';
  }

  // --- typing ------------------------------------------------------------------------------

  /** Someone is typing (or stopped). @param {string} roomId @param {string} userId @param {boolean} active */
  typing(roomId, userId, active) {
    if (userId === this.names.me) return;
    let users = this._typing.get(roomId);
    if (!users) this._typing.set(roomId, users = new Map());
    clearTimeout(users.get(userId));
    if (active) users.set(userId, setTimeout(() => this.typing(roomId, userId, false), TYPING_TTL));
    else users.delete(userId);
    if (this.room && roomId === this.room.id) this.paintTyping();
  }

  paintTyping() {
    const users = (this.room && this._typing.get(this.room.id)) || new Map();
    const text = typingLine([...users.keys()].map((id) => this.names.name(id)));
    if (this.typingEl.textContent !== text) this.typingEl.textContent = text;
    this.sub.hidden = !!text;
  }

  // --- the room's options -----------------------------------------------------------------

  _menu(open) {
    const show = open ?? this.menu.hidden;
    this.menu.hidden = !show;
    this.optionsBtn.setAttribute('aria-expanded', String(show));
    if (show) this.muteBtn.focus();
  }

  async _toggleMute() {
    const room = this.room;
    this._menu(false);
    if (!room) return;
    const muted = !this.isMuted(room.id);
    try {
      await this.setMuted(room.id, muted);
      this.notify(muted ? 'Notifications of this conversation are off.' : 'Notifications of this conversation are on.');
    } catch (err) {
      this.notify(err.message || 'The setting was not saved.');
    }
    this.paintHeader();
    this.optionsBtn.focus();
  }
}
