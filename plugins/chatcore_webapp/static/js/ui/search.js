/**
 * Search over what this browser has stored: results as you type (room, sender, text, time);
 * choosing one opens its room at the message.
 */
import {h, field, debounce} from './dom.js';
import {openModal} from './modal.js';
import {dayLabel, errorText, firstLine, timeLabel} from './format.js';

/**
 * Open the search dialog.
 * @param {{client: any, names: import('./names.js').Names, main: any, openRoom: (id: string, o?: any) => void, onClose: () => void}} ctx
 * @returns {{close: () => void}}
 */
export function openSearch({client, names, main, openRoom, onClose}) {
  const {body, close} = openModal('Search', {onClose});
  const query = h('input', {type: 'search', autocomplete: 'off', placeholder: 'Words in messages'});
  const status = h('p', {class: 'muted', role: 'status'}, 'Searches the messages stored in this browser.');
  const results = h('ul', {class: 'results', 'aria-label': 'Results'});
  body.append(field('Search messages', query), status, results);
  let serial = 0;

  const run = debounce(async () => {
    const mine = ++serial;
    const text = query.value.trim();
    if (!text) {
      results.replaceChildren();
      status.textContent = 'Searches the messages stored in this browser.';
      return;
    }
    let found;
    try {
      found = await client.search(text);
    } catch (err) {
      status.textContent = errorText(err);
      return;
    }
    if (mine !== serial) return;
    names.want(found.map((m) => m.sender_id));
    status.textContent = found.length ? `${found.length} message${found.length === 1 ? '' : 's'} found` : 'No messages found.';
    results.replaceChildren(...found.map((m) => h('li', {},
      h('button', {type: 'button', class: 'result', onclick: () => { close(); openRoom(m.room_id, {aroundSeq: m.seq}); }},
        h('span', {class: 'result-top'},
          h('strong', {}, main.roomTitle(m.room_id)),
          h('span', {}, names.name(m.sender_id)),
          h('time', {datetime: new Date(m.ts).toISOString()}, `${dayLabel(m.ts)} ${timeLabel(m.ts)}`)),
        h('span', {}, firstLine(m.body, 140))))));
  }, 120);
  query.addEventListener('input', run);
  query.focus();
  return {close};
}
