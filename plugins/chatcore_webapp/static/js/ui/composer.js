/**
 * The composer: the message box (Enter sends, Shift+Enter a new line), "Send", "Attach file",
 * "Stickers", and the reply / edit banner. It never locks: offline, a send goes to the
 * outbox like any other. It tells the room when the user is typing.
 */
import {h} from './dom.js';
import {icon} from './icons.js';
import {errorText, firstLine, preview} from './format.js';

/** While typing, the room hears "typing" again at most this often (ms). */
const TYPING_REFRESH = 3000;
/** Typing stops counting after this long without a key (ms). */
const TYPING_IDLE = 5000;

export class Composer {
  /**
   * @param {{client: any, names: import('./names.js').Names, assets: import('./assets.js').Assets,
   *   notify: (text: string) => void, onQueued: (entry: any, localUrl: string|null) => void}} opts
   */
  constructor(opts) {
    Object.assign(this, opts);
    this.room = null;
    /** @type {{kind: 'reply'|'edit', message?: any, entry?: any}|null} */
    this.mode = null;
    this._drafts = new Map();
    this._typingRoom = null;
    this._typingSent = 0;
    this._idle = 0;

    this.modeText = h('span', {class: 'mode-text'});
    this.bar = h('div', {class: 'mode-bar', hidden: true},
      this.modeText,
      h('button', {type: 'button', class: 'link', onclick: () => this.leaveMode(true)}, 'Cancel'));
    this.text = /** @type {HTMLTextAreaElement} */ (h('textarea', {
      'aria-label': 'Message', rows: '1', placeholder: 'Message', enterkeyhint: 'send',
      oninput: () => this._input(), onkeydown: (e) => this._key(e),
    }));
    this.file = /** @type {HTMLInputElement} */ (h('input', {type: 'file', hidden: true, multiple: true,
      'aria-label': 'File to send', onchange: () => this._files()}));
    this.el = h('div', {class: 'composer'},
      this.bar,
      h('div', {class: 'composer-row'},
        h('button', {type: 'button', class: 'icon-btn', 'aria-label': 'Attach file', title: 'Attach file',
          onclick: () => this.file.click()}, icon('attach')),
        h('button', {type: 'button', class: 'icon-btn', 'aria-label': 'Stickers', title: 'Stickers',
          onclick: () => this._stickers()}, icon('sticker')),
        this.text,
        this.file,
        h('button', {type: 'button', class: 'icon-btn send', 'aria-label': 'Send', title: 'Send (Enter)',
          onclick: () => this.submit()}, icon('send'))));
  }

  /**
   * Write in `room` from now on (the draft of the previous room is kept for its return).
   * @param {any} room
   */
  setRoom(room) {
    if (this.room && this.room.id === room?.id) {
      this.room = room;
      return;
    }
    this._stopTyping();
    if (this.room) this._drafts.set(this.room.id, this.text.value);
    this.leaveMode(false);
    this.room = room;
    this.text.value = (room && this._drafts.get(room.id)) || '';
    this._grow();
  }

  focus() {
    this.text.focus();
  }

  /** Answer `message` with the next send. @param {any} message */
  reply(message) {
    this.mode = {kind: 'reply', message};
    this._showMode(`Replying to ${this.names.name(message.sender_id)}: ${firstLine(preview(message), 60)}`);
  }

  /**
   * Reply to a message by id that may not be loaded (a notification's "Reply").
   * @param {string} id
   * @param {any} [message]
   */
  replyTo(id, message) {
    if (message) return this.reply(message);
    this.mode = {kind: 'reply', message: {id}};
    this._showMode('Replying to a message');
  }

  /** Edit a sent message, or a queued one. @param {{message?: any, entry?: any}} row */
  edit(row) {
    this.mode = {kind: 'edit', message: row.message, entry: row.entry};
    this._showMode(row.entry ? 'Editing a queued message: Enter saves' : 'Editing your message: Enter saves');
    this.text.value = (row.message || row.entry).body || '';
    this._grow();
    this.text.setSelectionRange(this.text.value.length, this.text.value.length);
  }

  _showMode(text) {
    this.modeText.textContent = text;
    this.bar.hidden = false;
    this.focus();
  }

  /** Leave reply / edit mode; `clear` empties the box after an edit was dropped. */
  leaveMode(clear) {
    if (clear && this.mode && this.mode.kind === 'edit') this.text.value = '';
    this.mode = null;
    this.bar.hidden = true;
    if (clear) this.focus();
  }

  /** Send (or save the edit of) what is in the box. */
  async submit() {
    const body = this.text.value.replace(/^\n+|\s+$/g, '');
    const room = this.room;
    if (!room) return this.notify('Open a conversation first.');
    if (!body.trim()) return;
    const limit = this.client.info?.limits?.max_message_bytes;
    if (limit && new TextEncoder().encode(body).length > limit) {
      return this.notify(`The message is too long: at most ${limit} bytes.`);
    }
    // Taken at once (a second Enter must not send it twice); given back if it fails.
    const mode = this.mode;
    this.text.value = '';
    this._grow();
    this.leaveMode(false);
    this._stopTyping();
    this._drafts.delete(room.id);
    try {
      if (mode && mode.kind === 'edit' && mode.entry) await this.client.editPending(mode.entry.ref, body);
      else if (mode && mode.kind === 'edit') await this.client.edit(room.id, mode.message.id, body);
      else await this.client.send(room.id, body, mode && mode.kind === 'reply' ? {replyTo: mode.message.id} : {});
    } catch (err) {
      this.notify(`Not sent: ${errorText(err)}`);
      if (!this.text.value) {
        this.text.value = body;
        this._grow();
      }
    }
  }

  _key(e) {
    if (e.key === 'Enter' && !e.shiftKey && !e.altKey && !e.isComposing) {
      e.preventDefault();
      this.submit();
    } else if (e.key === 'Escape' && this.mode) {
      e.preventDefault();
      e.stopPropagation();
      this.leaveMode(true);
    }
  }

  _input() {
    this._grow();
    if (this.mode && this.mode.kind === 'edit') return; // an edit is not "typing" to the room
    if (this.text.value.trim()) this._typing();
    else this._stopTyping();
  }

  /** Grow the box with its lines, up to a few (no inline style: the rows attribute). */
  _grow() {
    const lines = this.text.value.split('\n').length;
    this.text.rows = Math.min(6, Math.max(1, lines));
  }

  _typing() {
    const room = this.room;
    if (!room) return;
    const now = Date.now();
    if (this._typingRoom !== room.id || now - this._typingSent > TYPING_REFRESH) {
      this._typingRoom = room.id;
      this._typingSent = now;
      this._safe(() => this.client.typing(room.id, true));
    }
    clearTimeout(this._idle);
    this._idle = setTimeout(() => this._stopTyping(), TYPING_IDLE);
  }

  _stopTyping() {
    clearTimeout(this._idle);
    if (this._typingRoom) {
      const id = this._typingRoom;
      this._typingRoom = null;
      this._typingSent = 0;
      this._safe(() => this.client.typing(id, false));
    }
  }

  _safe(fn) {
    try {
      const result = fn();
      if (result && result.catch) result.catch(() => {});
    } catch { /* typing is a hint: never an error for the user */ }
  }

  async _files() {
    const files = [...this.file.files];
    this.file.value = '';
    const room = this.room;
    if (!room) return;
    const limit = this.client.info?.limits?.max_upload_bytes;
    for (const file of files) {
      if (limit && file.size > limit) {
        this.notify(`${file.name} is too large to send (at most ${Math.floor(limit / 1048576)} MB).`);
        continue;
      }
      const local = /^image\//.test(file.type) ? URL.createObjectURL(file) : null;
      try {
        const entry = await this.client.sendFile(room.id, file, {});
        this.onQueued(entry, local);
      } catch (err) {
        if (local) URL.revokeObjectURL(local);
        this.notify(`${file.name} was not sent: ${errorText(err)}`);
      }
    }
    this.focus();
  }

  async _stickers() {
    const room = this.room;
    if (!room) return this.notify('Open a conversation first.');
    const {pickSticker} = await import('./stickers.js');
    const id = await pickSticker(this.assets);
    if (!id) return this.focus();
    try {
      await this.client.sendSticker(room.id, id);
    } catch (err) {
      this.notify(`Sticker not sent: ${errorText(err)}`);
    }
    this.focus();
  }
}
