/**
 * The main screen: the sidebar (who is signed in, the main buttons, the connection banner,
 * the room list) and the open conversation, side by side (one at a time under 720 px). It
 * paints the device store at once, then follows the engine's events: each goes to the few
 * views it concerns. Secondary screens (contacts, search, new group, settings, viewer) are
 * modules loaded when first opened.
 */
import {h} from './dom.js';
import {icon} from './icons.js';
import {connectionLine, errorText} from './format.js';
import {Names} from './names.js';
import {Assets} from './assets.js';
import {RoomList, avatar} from './rooms.js';
import {Conversation} from './conversation.js';
import {Toasts} from './toast.js';

/** Narrower than this, one pane at a time (CSS has the same number). */
const NARROW = '(max-width: 719.98px)';

export class MainScreen {
  /**
   * @param {any} client the engine facade
   * @param {{applyTheme: (theme: string) => void}} hooks
   */
  constructor(client, hooks) {
    this.client = client;
    this.hooks = hooks;
    this.names = new Names(client);
    this.assets = new Assets(client);
    this.settings = null;
    this._read = new Map();
    this._unsubscribe = [];
    this._modal = null;
    this.narrow = matchMedia(NARROW);

    const notify = (text) => this.toasts.notice(text);
    this.toasts = new Toasts({
      client, names: this.names, assets: this.assets,
      roomTitle: (id) => this.roomTitle(id),
      isDirect: (id) => this.rooms.get(id)?.kind === 'direct',
      openRoom: (id) => this.openRoom(id),
    });
    this.rooms = new RoomList({
      client, names: this.names,
      onOpen: (id) => this.openRoom(id, {focus: true}),
      onPainted: (list) => this._painted(list),
      stickerEmoji: (id) => this.assets.sticker(id)?.emoji,
      assets: this.assets,
    });
    this.conv = new Conversation({
      client, names: this.names, assets: this.assets, notify,
      onBack: () => this.showPane('list'),
      onSeen: (roomId, seq) => this.markRead(roomId, seq),
      onViewImage: (id) => import('./viewer.js').then((m) => m.viewImage(this.assets, id)),
      isMuted: (id) => this.isMuted(id),
      setMuted: (id, muted) => this.setMuted(id, muted),
    });

    this.meName = h('h1', {class: 'me-name'});
    this.meAvatar = h('span', {class: 'avatar', 'aria-hidden': 'true'});
    this.contactsBadge = h('span', {class: 'dot-badge', hidden: true});
    this.banner = h('p', {class: 'banner', role: 'status', hidden: true});
    const button = (label, name, onclick, extra) => h('button', {type: 'button', class: 'icon-btn', 'aria-label': label, title: label, onclick}, icon(name), extra);
    this.contactsBtn = button('Contacts', 'contacts', () => this.openContacts(), this.contactsBadge);
    this.sidebar = h('nav', {class: 'sidebar', 'aria-label': 'Conversations'},
      h('header', {class: 'side-head'},
        this.meAvatar, this.meName,
        h('div', {class: 'side-buttons'},
          this.contactsBtn,
          button('Search', 'search', () => this.openSearch()),
          button('New group', 'group', () => this.openGroup()),
          button('Settings', 'settings', () => this.openSettings()))),
      this.banner,
      h('div', {class: 'rooms-scroll'}, this.rooms.el, this.rooms.empty));
    this.el = h('div', {class: 'app', 'data-pane': 'list'}, this.sidebar, this.conv.el, this.toasts.el);
    this.names.onChange((what) => {
      if (!what.has('names')) return; // presence: the header repaints itself
      this.paintMe();
      this.rooms.refresh();
      this.conv.log.repaint();
      this.conv.paintTyping();
    });
  }

  /**
   * Put the screen into `root` and show the device store's rooms at once.
   * @param {HTMLElement} root
   */
  async mount(root) {
    this.paintMe();
    root.replaceChildren(this.el);
    this._listen();
    this.showConnection(this.client.state, this.client.retryIn);
    await this.rooms.load();
    performance.mark('chatcore:rooms-painted');
    // Connected only now: the catch-up's writes would otherwise queue the first read behind them.
    this.client.start();
    this._title();
    const params = new URLSearchParams(location.search);
    const wanted = params.get('room');
    if (wanted) {
      history.replaceState(null, '', location.pathname);
      await this.openRoom(wanted, {replyTo: params.get('reply') || undefined, focus: true});
    } else {
      this._mounted = true;
      this._painted(this.rooms.rooms);
    }
    this._background();
  }

  /** As the terminal client: with nothing open yet, a wide screen opens the latest room (also
   * when the rooms arrive with the first catch-up after a first login; not a room made later,
   * which would be marked read without anyone choosing it). */
  _painted(list) {
    this._title();
    if (this._mounted && !this._settled && !this._requested && !this.narrow.matches && list.length) {
      this.openRoom(list[0].id);
    }
  }

  /** What the store alone cannot say: presence, invitations, settings (the server's). */
  async _background() {
    const client = this.client;
    try {
      const contacts = await client.contacts();
      this.names.remember(contacts.map((c) => c.user));
      for (const c of contacts) this.names.setPresence(c.user.id, c.presence);
      this.conv.paintHeader();
    } catch { /* offline: shown when the connection is back */ }
    this._countInvitations();
    try {
      this.settings = await client.accountSettings();
      this.conv.paintHeader();
    } catch { /* later */ }
  }

  async _countInvitations() {
    try {
      const {incoming} = await this.client.invitations();
      this.names.remember(incoming.map((i) => i.from_user));
      const n = incoming.length;
      this.contactsBadge.hidden = !n;
      this.contactsBadge.textContent = n ? String(n) : '';
      this.contactsBtn.setAttribute('aria-label', n ? `Contacts (${n} invitation${n === 1 ? '' : 's'})` : 'Contacts');
    } catch { /* offline */ }
  }

  /** Stop listening (logged out). */
  unmount() {
    this._unsubscribe.forEach((f) => f());
    this._unsubscribe = [];
    clearInterval(this._countdown);
    document.removeEventListener('keydown', this._keys);
    document.removeEventListener('visibilitychange', this._visible);
    navigator.serviceWorker?.removeEventListener('message', this._worker);
    this.narrow.removeEventListener('change', this._resized);
    if (this._modal) this._modal.close?.();
    document.querySelectorAll('dialog').forEach((d) => d.close());
    this.el.remove();
  }

  paintMe() {
    const user = this.client.user;
    const name = user ? user.display_name || user.username : '';
    const sig = `${name}|${user && user.avatar_media_id}`;
    if (sig === this._meSig) return;
    this._meSig = sig;
    this.meName.textContent = name;
    const next = avatar(name, user ? user.id : '', user && user.avatar_media_id, this.assets);
    this.meAvatar.replaceWith(next);
    this.meAvatar = next;
  }

  // --- events --------------------------------------------------------------------------------

  _listen() {
    const on = (type, fn) => this._unsubscribe.push(this.client.on(type, fn));
    on('connection', ({state, retryIn}) => {
      this.showConnection(state, retryIn);
      if (state === 'ready') {
        this.names.retryMisses();
        this.rooms.load().then(() => { this._settled = true; }, () => {});
        this._background();
      }
    });
    on('message', ({message, live}) => {
      this.conv.log.addMessage(message);
      this.conv.typing(message.room_id, message.sender_id, false);
      this.rooms.refresh();
      const open = this.conv.room && this.conv.room.id === message.room_id && (!this.narrow.matches || this.el.dataset.pane === 'dialog');
      if (live && message.sender_id !== this.names.me && !open && !this.isMuted(message.room_id)) {
        // A room new to the list (its first message): read the list first, for its title.
        if (this.rooms.get(message.room_id)) this.toasts.message(message);
        else this.rooms.load().then(() => this.toasts.message(message), () => this.toasts.message(message));
      }
    });
    on('message_updated', ({message}) => {
      this.conv.log.updateMessage(message);
      this.rooms.refresh();
    });
    on('outbox', ({entry}) => {
      this.conv.log.outboxChanged(entry);
      if (entry.state === 'sent') this.rooms.refresh();
      if (entry.state === 'failed' && entry.room_id !== this.conv.room?.id) {
        const reason = (entry.error && entry.error.message) || 'refused';
        this.toasts.notice(`A message to ${this.roomTitle(entry.room_id)} was not sent: ${reason}`);
      }
    });
    on('upload', ({ref, progress}) => this.conv.log.upload(ref, progress));
    on('room', ({room, left}) => {
      this.rooms.refresh();
      if (left && this.conv.room && room.id === this.conv.room.id) {
        this.conv.close();
        this.rooms.setActive(null);
        this.showPane('list');
        this.toasts.notice('You are no longer in that conversation.');
      } else if (!left) {
        this.conv.update(room);
      }
    });
    on('contact', ({event, invitation, user, contact}) => {
      if (invitation) this.names.remember(invitation.from_user, invitation.to_user);
      if (user) this.names.remember(user);
      if (contact) {
        this.names.remember(contact.user);
        this.names.setPresence(contact.user.id, contact.presence);
      }
      if (event === 'invited' && invitation && invitation.to_user.id === this.names.me) {
        this.toasts.notice(`${invitation.from_user.display_name || invitation.from_user.username} invited you. Open Contacts to answer.`);
      }
      this._countInvitations();
      this._modal?.refresh?.();
    });
    on('typing', ({room_id: roomId, user_id: userId, active}) => this.conv.typing(roomId, userId, active));
    on('receipt', ({room_id: roomId, user_id: userId, seq}) => {
      this.conv.log.receipt(roomId, userId, seq);
      if (userId === this.names.me) this.rooms.refresh();
    });
    on('presence', ({user_id: userId, status}) => {
      this.names.setPresence(userId, status);
      this._modal?.refresh?.();
    });
    on('error', ({message, code, ref}) => {
      if (!ref) this.toasts.notice(message || code); // with a ref: the outbox entry shows it
    });
    on('account', ({user}) => {
      if (user) this.paintMe();
    });
    this._keys = (e) => this._key(e);
    this._visible = () => this.conv.log.visible();
    document.addEventListener('keydown', this._keys);
    document.addEventListener('visibilitychange', this._visible);
    // A notification clicked while the app is open: the service worker says which room.
    this._worker = (e) => {
      const d = e.data || {};
      if ((d.type === 'open' || d.type === 'open-room') && d.room_id) this.openRoom(d.room_id, {replyTo: d.reply_to, focus: true});
    };
    navigator.serviceWorker?.addEventListener('message', this._worker);
    this._resized = () => this.showPane(this.conv.room ? 'dialog' : 'list');
    this.narrow.addEventListener('change', this._resized);
  }

  /** The banner: offline with a countdown, connecting, catching up; hidden when live. */
  showConnection(state, retryIn) {
    clearInterval(this._countdown);
    const deadline = retryIn != null ? Date.now() + retryIn : null;
    const paint = () => {
      const text = connectionLine(state, deadline != null ? deadline - Date.now() : null);
      this.banner.textContent = text;
      this.banner.hidden = !text;
      this.banner.dataset.state = state;
    };
    paint();
    if (state === 'offline' && deadline != null) this._countdown = setInterval(paint, 1000);
  }

  _key(e) {
    if ((e.ctrlKey || e.metaKey) && !e.altKey && e.key.toLowerCase() === 'k') {
      e.preventDefault();
      this.openSearch();
    } else if (e.altKey && (e.key === 'ArrowUp' || e.key === 'ArrowDown')) {
      e.preventDefault();
      const id = this.rooms.neighbour(this.conv.room?.id ?? null, e.key === 'ArrowUp' ? -1 : 1);
      if (id) this.openRoom(id, {focus: true});
    }
  }

  // --- rooms ---------------------------------------------------------------------------------

  /** @param {string} id */
  roomTitle(id) {
    return this.rooms.get(id)?.title || 'a conversation';
  }

  /** 'list' or 'dialog': which pane a narrow screen shows. */
  showPane(pane) {
    this.el.dataset.pane = pane;
    if (pane === 'list') {
      const current = this.conv.room && this.rooms.el.querySelector(`li[data-id="${CSS.escape(this.conv.room.id)}"] button`);
      if (this.narrow.matches) (current || this.rooms.el.querySelector('button'))?.focus();
    }
  }

  /**
   * Open a room: from the list's copy, else the store, else the server.
   * @param {string} id
   * @param {{aroundSeq?: number, replyTo?: string, focus?: boolean}} [opts]
   */
  async openRoom(id, {aroundSeq, replyTo, focus = false} = {}) {
    this._requested = id;
    let room = this.rooms.get(id);
    if (!room) {
      try {
        room = await this.client.room(id);
      } catch { /* below */ }
    }
    if (!room) {
      this.toasts.notice('That conversation is not on this device yet.');
      return;
    }
    this.rooms.setActive(id);
    this.rooms.refresh();
    this.showPane('dialog');
    await this.conv.open(room, {aroundSeq});
    if (replyTo) {
      let message = this.conv.log.message(replyTo);
      if (!message && this.client.message) message = await this.client.message(replyTo).catch(() => null);
      this.conv.composer.replyTo(replyTo, message || undefined);
    }
    if (focus && aroundSeq == null) this.conv.composer.focus();
  }

  /** The open room's newest message is on screen: read up to it (once per seq). */
  markRead(roomId, seq) {
    const room = this.rooms.get(roomId);
    const known = this._read.get(roomId) || 0;
    if (seq <= known && !(room && room.unread)) return;
    this._read.set(roomId, seq);
    Promise.resolve(this.client.markRead(roomId, seq)).catch(() => this._read.delete(roomId));
  }

  _title() {
    const n = this.rooms.unread;
    document.title = n ? `(${n}) chatcore` : 'chatcore';
  }

  // --- push settings of a room -----------------------------------------------------------

  isMuted(id) {
    return this.settings?.push?.rooms?.[id] === 'none';
  }

  async setMuted(id, muted) {
    this.settings = await this.client.updateAccountSettings({push: {rooms: {[id]: muted ? 'none' : null}}});
  }

  // --- secondary screens (loaded when first opened) ------------------------------------------

  /**
   * Open a secondary screen once at a time. The imports are written out (not built from a
   * name) so that the service worker's shell walk finds and caches them for offline starts.
   */
  async _open(load, extra = {}) {
    if (this._modal) return;
    this._modal = {}; // taken while the module loads: a second click opens nothing more
    try {
      const open = await load();
      this._modal = open({
        client: this.client, names: this.names, assets: this.assets, main: this,
        notify: (text) => this.toasts.notice(text),
        openRoom: (id, opts) => this.openRoom(id, {focus: true, ...opts}),
        onClose: () => { this._modal = null; },
        ...extra,
      });
    } catch (err) {
      this._modal = null;
      this.toasts.notice(errorText(err));
    }
  }

  openContacts() { this._open(() => import('./contacts.js').then((m) => m.openContacts)); }
  openSearch() { this._open(() => import('./search.js').then((m) => m.openSearch)); }
  openGroup() { this._open(() => import('./group.js').then((m) => m.openGroup)); }
  openSettings() {
    this._open(() => import('./settings.js').then((m) => m.openSettings), {applyTheme: this.hooks.applyTheme});
  }
}
