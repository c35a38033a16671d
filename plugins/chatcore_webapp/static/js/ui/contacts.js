/**
 * Contacts: find people and invite them, invitations in (Accept / Decline) and out (Cancel),
 * contacts with presence (Message, Remove, Block), and the blocked list (Unblock).
 */
import {h, field, debounce} from './dom.js';
import {openModal, confirmModal} from './modal.js';
import {errorText, userName} from './format.js';

/**
 * Open the contacts dialog.
 * @param {{client: any, names: import('./names.js').Names, notify: (t: string) => void,
 *   openRoom: (id: string) => void, onClose: () => void}} ctx
 * @returns {{close: () => void, refresh: () => void}}
 */
export function openContacts({client, names, notify, openRoom, onClose}) {
  const {body, close} = openModal('Contacts', {onClose});
  const query = h('input', {type: 'search', autocomplete: 'off', spellcheck: 'false', placeholder: 'Name or username'});
  const found = h('ul', {class: 'people', 'aria-label': 'People found'});
  const status = h('p', {class: 'muted', role: 'status'});
  const incoming = h('ul', {class: 'people', 'aria-label': 'Invitations to you'});
  const outgoing = h('ul', {class: 'people', 'aria-label': 'Your invitations'});
  const contacts = h('ul', {class: 'people', 'aria-label': 'Your contacts'});
  const blocked = h('ul', {class: 'people', 'aria-label': 'Blocked people'});
  const sections = {
    incoming: h('section', {}, h('h3', {}, 'Invitations to you'), incoming),
    outgoing: h('section', {}, h('h3', {}, 'Your invitations'), outgoing),
    contacts: h('section', {}, h('h3', {}, 'Contacts'), contacts),
    blocked: h('section', {}, h('h3', {}, 'Blocked'), blocked),
  };
  body.append(
    h('section', {}, field('Find people', query), status, found),
    sections.incoming, sections.outgoing, sections.contacts, sections.blocked);

  let state = {contacts: [], incoming: [], outgoing: [], blocked: []};
  let serial = 0;

  /** One person row: name, username, then the buttons. */
  const person = (user, extra, buttons, note = '') => h('li', {class: 'person', 'data-user': user.id},
    extra,
    h('span', {class: 'person-name'}, userName(user), h('small', {}, '@' + user.username + note)),
    buttons.map(([label, fn]) => h('button', {type: 'button', onclick: () => act(fn)}, label)));

  async function act(fn) {
    try {
      await fn();
    } catch (err) {
      notify(errorText(err));
    }
    refresh();
  }

  async function block(user) {
    if (await confirmModal(`Block ${userName(user)}?`, 'Block')) await client.block(user.id);
  }

  async function message(user) {
    const room = await client.openDirect(user.id);
    close();
    openRoom(room.id);
  }

  function paint() {
    const {contacts: cs, incoming: inc, outgoing: out, blocked: bl} = state;
    incoming.replaceChildren(...inc.map((i) => person(i.from_user, null, [
      ['Accept', () => client.acceptInvitation(i.id)],
      ['Decline', () => client.declineInvitation(i.id)]])));
    outgoing.replaceChildren(...out.map((i) => person(i.to_user, null, [
      ['Cancel', () => client.declineInvitation(i.id)]])));
    contacts.replaceChildren(...cs.map((c) => {
      const presence = names.presence.get(c.user.id) || c.presence || 'offline';
      // The presence in words too, not only as a coloured dot.
      return person(c.user, h('span', {class: `presence-dot ${presence}`, 'aria-hidden': 'true'}),
        [['Message', () => message(c.user)],
          ['Remove', () => client.removeContact(c.user.id)],
          ['Block', () => block(c.user)]], ` · ${presence}`);
    }));
    blocked.replaceChildren(...bl.map((u) => person(u, null, [['Unblock', () => client.unblock(u.id)]])));
    sections.incoming.hidden = !inc.length;
    sections.outgoing.hidden = !out.length;
    sections.blocked.hidden = !bl.length;
    if (!cs.length) contacts.replaceChildren(h('li', {class: 'muted'}, 'No contacts yet: find people above and invite them.'));
  }

  async function refresh() {
    const mine = ++serial;
    try {
      const [cs, inv, bl] = await Promise.all([
        client.contacts(), client.invitations(), client.blocked().catch(() => state.blocked)]);
      if (mine !== serial) return;
      state = {contacts: cs, incoming: inv.incoming, outgoing: inv.outgoing, blocked: bl};
      names.remember(cs.map((c) => c.user), inv.incoming.map((i) => i.from_user), inv.outgoing.map((i) => i.to_user));
      for (const c of cs) if (!names.presence.has(c.user.id)) names.setPresence(c.user.id, c.presence);
    } catch (err) {
      status.textContent = errorText(err);
    }
    paint();
    search();
  }

  async function search() {
    const q = query.value.trim();
    if (!q) {
      found.replaceChildren();
      status.textContent = '';
      return;
    }
    let users;
    try {
      users = await client.searchUsers(q);
    } catch (err) {
      status.textContent = errorText(err);
      return;
    }
    if (query.value.trim() !== q) return; // typed on meanwhile
    const me = names.me;
    const isContact = new Set(state.contacts.map((c) => c.user.id));
    const isBlocked = new Set(state.blocked.map((u) => u.id));
    const invited = new Set(state.outgoing.map((i) => i.to_user.id));
    const inviting = new Map(state.incoming.map((i) => [i.from_user.id, i]));
    const rows = users.filter((u) => u.id !== me).map((u) => {
      const buttons = [];
      if (isBlocked.has(u.id)) buttons.push(['Unblock', () => client.unblock(u.id)]);
      else if (isContact.has(u.id)) buttons.push(['Message', () => message(u)]);
      else if (inviting.has(u.id)) buttons.push(['Accept', () => client.acceptInvitation(inviting.get(u.id).id)]);
      else if (invited.has(u.id)) buttons.push(['Invited', () => {}]);
      else buttons.push(['Invite', () => client.invite({userId: u.id}).then(() => notify(`Invitation sent to ${userName(u)}.`))]);
      if (!isBlocked.has(u.id)) buttons.push(['Block', () => block(u)]);
      return person(u, null, buttons);
    });
    found.replaceChildren(...rows);
    status.textContent = rows.length ? '' : 'Nobody found.';
    for (const b of found.querySelectorAll('button')) if (b.textContent === 'Invited') b.disabled = true;
  }

  const searchSoon = debounce(search, 200);
  query.addEventListener('input', searchSoon);
  query.addEventListener('keydown', (e) => {
    if (e.key === 'Enter') {
      e.preventDefault();
      search();
    }
  });

  paint();
  refresh();
  query.focus();
  return {close, refresh};
}
