/**
 * Settings: profile (display name, avatar), theme (this device), push settings (the server's
 * `push` settings: on/off, levels, previews, do-not-disturb, muted rooms), notifications in
 * this browser (Web Push, js/engine/push.js), and "Log out".
 */
import {h, field} from './dom.js';
import {openModal} from './modal.js';
import {errorText} from './format.js';

const LEVELS = [['all', 'All messages'], ['mentions', 'Mentions only'], ['none', 'Nothing']];

/**
 * Open the settings dialog.
 * @param {{client: any, main: any, notify: (t: string) => void, applyTheme: (t: string) => void, onClose: () => void}} ctx
 * @returns {{close: () => void}}
 */
export function openSettings({client, main, notify, applyTheme, onClose}) {
  const {body, close} = openModal('Settings', {onClose});
  const status = h('p', {class: 'error', role: 'alert'});
  const say = (err) => { status.textContent = errorText(err); };

  // --- profile ---------------------------------------------------------------------------
  const user = client.user || {};
  const displayName = h('input', {type: 'text', maxlength: '64', value: user.display_name || '', autocomplete: 'nickname'});
  const saveName = h('button', {type: 'button', onclick: async () => {
    const value = displayName.value.trim();
    if (!value) return say({message: 'A display name cannot be empty.', code: 'x'});
    saveName.disabled = true;
    try {
      await client.setProfile({displayName: value});
      notify('Display name saved.');
      status.textContent = '';
    } catch (err) { say(err); } finally { saveName.disabled = false; }
  }}, 'Save name');
  const avatar = h('input', {type: 'file', accept: 'image/png,image/jpeg,image/gif,image/webp', onchange: async () => {
    const file = avatar.files[0];
    if (!file) return;
    try {
      await client.setProfile({avatar: file});
      notify('Avatar saved.');
    } catch (err) { say(err); }
    avatar.value = '';
  }});

  // --- theme (this device) -------------------------------------------------------------
  const themes = h('fieldset', {}, h('legend', {}, 'Theme'));
  for (const [value, label] of [['system', 'System'], ['light', 'Light'], ['dark', 'Dark']]) {
    themes.append(h('label', {class: 'check'},
      h('input', {type: 'radio', name: 'theme', value, onchange: async () => {
        applyTheme(value);
        await client.setPreferences({theme: value}).catch(say);
      }}), label));
  }
  client.preferences().then((p) => {
    const current = p.theme || 'system';
    themes.querySelector(`input[value="${current}"]`).checked = true;
  });

  // --- push settings (the server's) ----------------------------------------------------
  const enabled = h('input', {type: 'checkbox'});
  const level = (name) => h('select', {name}, LEVELS.map(([v, l]) => h('option', {value: v}, l)));
  const direct = level('direct');
  const group = level('group');
  const previewBox = h('input', {type: 'checkbox'});
  const dnd = h('input', {type: 'checkbox'});
  const dndStart = h('input', {type: 'time', value: '22:00'});
  const dndEnd = h('input', {type: 'time', value: '07:00'});
  const muted = h('ul', {class: 'people', 'aria-label': 'Muted conversations'});
  const push = h('fieldset', {disabled: true}, h('legend', {}, 'Push notifications'),
    h('label', {class: 'check'}, enabled, 'Push notifications'),
    field('Direct chats', direct), field('Groups', group),
    h('label', {class: 'check'}, previewBox, 'Show message text in notifications'),
    h('label', {class: 'check'}, dnd, 'Do not disturb'),
    h('div', {class: 'inline'}, field('Do not disturb from', dndStart), field('Do not disturb until', dndEnd)),
    h('h3', {}, 'Muted conversations'), muted);

  function paintPush(settings) {
    const p = (settings && settings.push) || {};
    enabled.checked = p.enabled !== false;
    direct.value = p.direct || 'all';
    group.value = p.group || 'all';
    previewBox.checked = p.preview !== false;
    dnd.checked = !!p.dnd;
    if (p.dnd) {
      dndStart.value = p.dnd.start || '22:00';
      dndEnd.value = p.dnd.end || '07:00';
    }
    dndStart.disabled = dndEnd.disabled = !dnd.checked;
    const rooms = Object.entries(p.rooms || {}).filter(([, v]) => v === 'none');
    muted.replaceChildren(...(rooms.length ? rooms.map(([id]) => h('li', {class: 'person'},
      h('span', {class: 'person-name'}, main.roomTitle(id)),
      h('button', {type: 'button', onclick: () => save({rooms: {[id]: null}})}, 'Unmute'))) : [h('li', {class: 'muted'}, 'None')]));
  }

  async function save(patch) {
    try {
      main.settings = await client.updateAccountSettings({push: patch});
      status.textContent = '';
      main.conv.paintHeader();
    } catch (err) {
      say(err);
    }
    paintPush(main.settings);
  }

  enabled.addEventListener('change', () => save({enabled: enabled.checked}));
  direct.addEventListener('change', () => save({direct: direct.value}));
  group.addEventListener('change', () => save({group: group.value}));
  previewBox.addEventListener('change', () => save({preview: previewBox.checked}));
  const saveDnd = () => save({dnd: dnd.checked ? {start: dndStart.value || '22:00', end: dndEnd.value || '07:00',
    timezone: Intl.DateTimeFormat().resolvedOptions().timeZone || 'UTC'} : null});
  dnd.addEventListener('change', saveDnd);
  dndStart.addEventListener('change', saveDnd);
  dndEnd.addEventListener('change', saveDnd);

  paintPush(main.settings);
  client.accountSettings().then((s) => {
    main.settings = s;
    paintPush(s);
    push.disabled = false;
  }, (err) => {
    say(err);
    if (main.settings) push.disabled = false;
  });

  // --- Web Push in this browser (hidden when it cannot work here) ------------------------
  const browserSwitch = h('input', {type: 'checkbox', role: 'switch'});
  const browserNote = h('p', {class: 'muted', role: 'status'});
  const browserBox = h('fieldset', {hidden: true}, h('legend', {}, 'This browser'),
    h('label', {class: 'check'}, browserSwitch, 'Notifications in this browser'), browserNote);
  const NOTES = {
    on: 'This browser gets notifications while the app is closed.',
    off: 'Turn on to get notifications while the app is closed.',
    denied: 'Notifications are blocked for this site in the browser settings.',
  };
  import('../engine/push.js').then(async (pushApi) => {
    if (!pushApi.pushSupported()) return;
    const paint = (state) => {
      browserSwitch.checked = state === 'on';
      browserSwitch.disabled = state === 'denied';
      browserNote.textContent = NOTES[state] || '';
    };
    const state = await pushApi.pushStatus();
    if (state === 'unsupported' || state === 'unavailable') return;
    browserBox.hidden = false;
    paint(state);
    browserSwitch.addEventListener('change', async () => {
      browserSwitch.disabled = true;
      try {
        if (browserSwitch.checked) await pushApi.enablePush();
        else await pushApi.disablePush();
      } catch (err) {
        browserNote.textContent = errorText(err);
      }
      browserSwitch.disabled = false;
      paint(await pushApi.pushStatus().catch(() => 'off'));
    });
  }).catch(() => { /* no push module: the switch stays hidden */ });

  // --- log out ---------------------------------------------------------------------------
  const logout = h('button', {type: 'button', class: 'danger', onclick: async () => {
    logout.disabled = true;
    try {
      await client.logout();
      close();
    } catch (err) {
      say(err);
      logout.disabled = false;
    }
  }}, 'Log out');

  body.append(
    h('fieldset', {}, h('legend', {}, 'Profile'),
      h('div', {class: 'inline'}, field('Display name', displayName), saveName),
      field('Avatar', avatar)),
    themes, push, browserBox, status,
    h('div', {class: 'row-end'}, logout));
  displayName.focus();
  return {close};
}
