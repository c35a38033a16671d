/**
 * The sticker picker: the server's packs in a modal, each sticker a button named by its
 * emoji (or "Sticker"). Loaded only when first opened.
 */
import {h} from './dom.js';
import {openModal} from './modal.js';
import {errorText} from './format.js';

/**
 * Let the user pick a sticker.
 * @param {import('./assets.js').Assets} assets
 * @returns {Promise<string|null>} the sticker's id, or null when closed without one
 */
export function pickSticker(assets) {
  return new Promise((resolve) => {
    let chosen = null;
    const {body, close} = openModal('Stickers', {className: 'stickers-modal', onClose: () => resolve(chosen)});
    const status = h('p', {class: 'muted', role: 'status'}, 'Loading stickers…');
    body.append(status);
    assets.packs().then((packs) => {
      status.remove();
      if (!packs.length) {
        body.append(h('p', {class: 'muted'}, 'This server has no stickers.'));
        return;
      }
      for (const pack of packs) {
        const grid = h('div', {class: 'sticker-grid'});
        for (const sticker of pack.stickers) {
          const img = h('img', {alt: '', width: 72, height: 72});
          assets.url(sticker.media_id).then((url) => { if (url) img.src = url; });
          grid.append(h('button', {type: 'button', class: 'sticker-btn', 'aria-label': sticker.emoji || 'Sticker',
            title: sticker.emoji || 'Sticker', onclick: () => { chosen = sticker.id; close(); }}, img));
        }
        body.append(h('section', {class: 'pack'}, h('h3', {}, pack.name || 'Stickers'), grid));
      }
      body.querySelector('.sticker-btn')?.focus();
    }, (err) => {
      status.textContent = `Stickers cannot be loaded: ${errorText(err)}`;
    });
  });
}
