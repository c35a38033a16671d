/**
 * New group: a name and members picked from the contacts.
 */
import {h, field} from './dom.js';
import {openModal} from './modal.js';
import {errorText, userName} from './format.js';

/**
 * Open the new-group dialog.
 * @param {{client: any, names: import('./names.js').Names, openRoom: (id: string) => void, onClose: () => void}} ctx
 * @returns {{close: () => void}}
 */
export function openGroup({client, names, openRoom, onClose}) {
  const {body, close} = openModal('New group', {onClose});
  const name = h('input', {type: 'text', maxlength: '100', required: true, autocomplete: 'off'});
  const members = h('fieldset', {}, h('legend', {}, 'Members'), h('p', {class: 'muted'}, 'Loading contacts…'));
  const error = h('p', {class: 'error', role: 'alert'});
  const create = h('button', {type: 'button', class: 'primary', onclick: submit}, 'Create group');
  body.append(field('Group name', name), members, error, h('div', {class: 'row-end'}, create));
  name.addEventListener('keydown', (e) => { if (e.key === 'Enter') submit(); });

  client.contacts().then((contacts) => {
    names.remember(contacts.map((c) => c.user));
    const boxes = contacts.map((c) => h('label', {class: 'check'},
      h('input', {type: 'checkbox', value: c.user.id}), userName(c.user)));
    members.replaceChildren(h('legend', {}, 'Members'),
      ...(boxes.length ? boxes : [h('p', {class: 'muted'}, 'No contacts yet: a group can start with just you.')]));
  }, (err) => {
    members.lastChild.textContent = errorText(err);
  });

  async function submit() {
    const title = name.value.trim();
    if (!title) {
      error.textContent = 'Give the group a name.';
      name.focus();
      return;
    }
    const ids = [...members.querySelectorAll('input:checked')].map((i) => i.value);
    create.disabled = true;
    try {
      const room = await client.createGroup(title, ids);
      close();
      openRoom(room.id);
    } catch (err) {
      error.textContent = errorText(err);
    } finally {
      create.disabled = false;
    }
  }

  name.focus();
  return {close};
}
