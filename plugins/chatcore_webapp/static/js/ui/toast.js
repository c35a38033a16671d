/**
 * In-app notifications: a message from someone else in a room that is not open shows a toast
 * (sender, room, text) with "Reply", "Open" and "Dismiss". "Reply" opens a quick-reply box in
 * the toast: Enter answers in that room (`client.reply`) and the open dialog stays as it is.
 * Also short notices (errors, "Sent").
 */
import {h} from './dom.js';
import {errorText, preview} from './format.js';

/** How long a toast stays when left alone (ms). */
const TOAST_MS = 10_000;
/** At most this many toasts at once (the oldest goes). */
const MAX_TOASTS = 3;

export class Toasts {
  /**
   * @param {{client: any, names: import('./names.js').Names, assets: import('./assets.js').Assets,
   *   roomTitle: (id: string) => string, isDirect: (id: string) => boolean, openRoom: (id: string) => void}} opts
   */
  constructor(opts) {
    Object.assign(this, opts);
    this.el = h('section', {class: 'toasts', role: 'status', 'aria-label': 'Notifications', 'aria-live': 'polite'});
  }

  /**
   * Show a new message of another room.
   * @param {any} message
   * @param {{reply?: boolean}} [opts] open the quick-reply box at once
   */
  message(message, {reply = false} = {}) {
    const sender = this.names.name(message.sender_id);
    const room = this.roomTitle(message.room_id);
    const sticker = message.kind === 'sticker' ? this.assets.sticker(message.sticker_id) : null;
    const text = preview(message, {stickerEmoji: sticker && sticker.emoji, limit: 160});
    const toast = h('div', {class: 'toast', 'data-room': message.room_id});
    const close = () => this._close(toast);
    const actions = h('div', {class: 'toast-actions'},
      h('button', {type: 'button', onclick: () => this._reply(toast, message)}, 'Reply'),
      h('button', {type: 'button', onclick: () => { close(); this.openRoom(message.room_id); }}, 'Open'),
      h('button', {type: 'button', onclick: close}, 'Dismiss'));
    toast.append(
      h('p', {class: 'toast-title'}, h('strong', {}, sender),
        this.isDirect(message.room_id) ? '' : ` in ${room}`),
      h('p', {class: 'toast-text'}, text),
      actions);
    this._add(toast);
    if (reply) this._reply(toast, message);
    return toast;
  }

  /**
   * A short notice ("Sent", an error sentence).
   * @param {string} text
   * @param {{ms?: number}} [opts]
   */
  notice(text, {ms = 6000} = {}) {
    // The same sentence twice at once (a refused typing hint and its end) is shown once.
    for (const shown of this.el.querySelectorAll('.notice p')) if (shown.textContent === text) return;
    const toast = h('div', {class: 'toast notice'}, h('p', {}, text),
      h('button', {type: 'button', class: 'link', onclick: () => this._close(toast)}, 'Dismiss'));
    this._add(toast, ms);
  }

  _add(toast, ms = TOAST_MS) {
    while (this.el.children.length >= MAX_TOASTS) this.el.firstChild.remove();
    this.el.append(toast);
    this._arm(toast, ms);
    // A toast someone is using (hover, focus, a reply being written) does not go away.
    toast.addEventListener('pointerenter', () => clearTimeout(toast._timer));
    toast.addEventListener('pointerleave', () => this._arm(toast, ms));
    toast.addEventListener('focusin', () => clearTimeout(toast._timer));
  }

  _arm(toast, ms) {
    clearTimeout(toast._timer);
    if (toast.classList.contains('replying')) return;
    toast._timer = setTimeout(() => this._close(toast), ms);
  }

  _close(toast) {
    clearTimeout(toast._timer);
    const hadFocus = toast.contains(document.activeElement);
    toast.remove();
    if (hadFocus) document.querySelector('.composer textarea')?.focus();
  }

  /** Open the quick-reply box in `toast`. */
  _reply(toast, message) {
    if (toast.classList.contains('replying')) return toast.querySelector('input').focus();
    toast.classList.add('replying');
    clearTimeout(toast._timer);
    const input = h('input', {type: 'text', 'aria-label': 'Quick reply', placeholder: 'Reply…', enterkeyhint: 'send'});
    const send = async () => {
      const text = input.value.trim();
      if (!text) return;
      input.disabled = true;
      try {
        await this.client.reply(message.room_id, text, {replyTo: message.id});
      } catch (err) {
        input.disabled = false;
        error.textContent = errorText(err);
        return;
      }
      toast.classList.remove('replying');
      toast.replaceChildren(h('p', {class: 'toast-sent'}, 'Sent'));
      toast._timer = setTimeout(() => this._close(toast), 1500);
      document.querySelector('.composer textarea')?.focus();
    };
    const error = h('p', {class: 'error', role: 'alert'});
    input.addEventListener('keydown', (e) => {
      if (e.key === 'Enter' && !e.isComposing) {
        e.preventDefault();
        send();
      } else if (e.key === 'Escape') {
        e.preventDefault();
        e.stopPropagation();
        this._close(toast);
      }
    });
    toast.querySelector('.toast-actions').before(
      h('div', {class: 'quick-reply'}, input, h('button', {type: 'button', onclick: send}, 'Send reply')), error);
    input.focus();
  }
}
