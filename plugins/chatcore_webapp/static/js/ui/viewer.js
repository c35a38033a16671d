/**
 * The image viewer: the full picture of a media in a modal (the thumbnail came first).
 */
import {h} from './dom.js';
import {openModal} from './modal.js';

/**
 * Show the full image of `mediaId`.
 * @param {import('./assets.js').Assets} assets
 * @param {string} mediaId
 */
export function viewImage(assets, mediaId) {
  const {body} = openModal('Image', {className: 'viewer'});
  const status = h('p', {class: 'muted', role: 'status'}, 'Loading…');
  const save = h('a', {class: 'button', download: 'image', hidden: true}, 'Download');
  body.append(status, h('div', {class: 'row-end'}, save));
  assets.url(mediaId).then((url) => {
    if (!url) {
      status.textContent = 'The image cannot be loaded now.';
      return;
    }
    // The picture goes in once it has its source: never an empty image in the meantime.
    status.replaceWith(h('img', {class: 'full', alt: 'Image', src: url}));
    save.href = url;
    save.hidden = false;
  });
}
