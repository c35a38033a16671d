/**
 * Who is who: user names and presence, learned from the engine (store first, then the
 * server), shared by every view. Unknown ids are asked for in one batch; listeners repaint
 * when names arrive.
 */
import {userName} from './format.js';

export class Names {
  /** @param {any} client the engine facade */
  constructor(client) {
    this.client = client;
    /** @type {Map<string, any>} */
    this.users = new Map();
    /** @type {Map<string, string>} user id -> 'online' | 'offline' */
    this.presence = new Map();
    this._wanted = new Set();
    this._asked = new Set();
    this._listeners = new Set();
  }

  /** The signed-in user's id. */
  get me() {
    return this.client.user ? this.client.user.id : null;
  }

  /**
   * A person's display name ("You" for oneself); asks for it when unknown.
   * @param {string} id
   * @param {{you?: boolean}} [opts] `you: false` gives one's own name instead of "You"
   */
  name(id, {you = true} = {}) {
    if (id === this.me) return you ? 'You' : userName(this.client.user);
    const user = this.users.get(id);
    if (!user) this.want([id]);
    return userName(user);
  }

  /** Remember users seen elsewhere (contacts, invitations, search results). @param {...any} users */
  remember(...users) {
    let changed = false;
    for (const user of users.flat()) {
      if (!user || !user.id) continue;
      const old = this.users.get(user.id);
      if (!old || old.display_name !== user.display_name || old.avatar_media_id !== user.avatar_media_id) changed = true;
      this.users.set(user.id, user);
    }
    if (changed) this._emit('names');
  }

  /**
   * Ask for the users among `ids` not known yet (one batch per tick).
   * @param {Iterable<string>} ids
   */
  want(ids) {
    let any = false;
    for (const id of ids) {
      if (id && !this.users.has(id) && !this._asked.has(id) && id !== this.me) {
        this._wanted.add(id);
        any = true;
      }
    }
    if (any && this._wanted.size && !this._timer) {
      this._timer = setTimeout(() => this._resolve(), 0);
    }
  }

  async _resolve() {
    this._timer = 0;
    const ids = [...this._wanted];
    this._wanted.clear();
    ids.forEach((id) => this._asked.add(id));
    try {
      const found = await this.client.users(ids);
      this.remember([...found.values()]);
    } catch {
      ids.forEach((id) => this._asked.delete(id)); // asked again next time
    }
  }

  /** Forget failed look-ups (after reconnecting: the server may answer now). */
  retryMisses() {
    this._asked.clear();
  }

  /**
   * Set a user's presence.
   * @param {string} id
   * @param {string} status
   */
  setPresence(id, status) {
    if (this.presence.get(id) === status) return;
    this.presence.set(id, status);
    this._emit('presence');
  }

  /**
   * Call `fn(what)` when names or presence changed (`what` has 'names' and/or 'presence':
   * a presence change need not repaint every message). Returns the unsubscribe function.
   * @param {(what: Set<string>) => void} fn
   */
  onChange(fn) {
    this._listeners.add(fn);
    return () => this._listeners.delete(fn);
  }

  /** Tell the listeners once per tick, whatever changed in it. */
  _emit(what) {
    if (this._changed) {
      this._changed.add(what);
      return;
    }
    this._changed = new Set([what]);
    queueMicrotask(() => {
      const changed = this._changed;
      this._changed = null;
      for (const fn of this._listeners) fn(changed);
    });
  }
}
