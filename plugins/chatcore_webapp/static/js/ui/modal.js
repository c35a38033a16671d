/**
 * Modal dialogs on the native `<dialog>`: focus is trapped and Escape closes it by the
 * browser itself; the element is removed once closed and focus goes back where it was.
 */
import {h, uid} from './dom.js';
import {icon} from './icons.js';

/**
 * Open a modal dialog with a heading and a Close button.
 * @param {string} title
 * @param {{className?: string, onClose?: () => void}} [opts]
 * @returns {{dialog: HTMLDialogElement, body: HTMLElement, close: () => void}}
 */
export function openModal(title, {className = '', onClose} = {}) {
  const titleId = uid('dlg');
  const opener = document.activeElement;
  const body = h('div', {class: 'modal-body'});
  const dialog = /** @type {HTMLDialogElement} */ (h('dialog', {class: `modal ${className}`, 'aria-labelledby': titleId},
    h('header', {class: 'modal-head'},
      h('h2', {id: titleId}, title),
      h('button', {type: 'button', class: 'icon-btn', 'aria-label': 'Close', onclick: () => dialog.close()}, icon('close'))),
    body));
  dialog.addEventListener('close', () => {
    dialog.remove();
    if (onClose) onClose();
    if (opener instanceof HTMLElement && opener.isConnected) opener.focus();
  });
  // A click on the backdrop (outside the box) closes it, as people expect.
  dialog.addEventListener('click', (e) => {
    if (e.target === dialog) {
      const r = dialog.getBoundingClientRect();
      const inside = e.clientX >= r.left && e.clientX <= r.right && e.clientY >= r.top && e.clientY <= r.bottom;
      if (!inside) dialog.close();
    }
  });
  document.body.append(dialog);
  dialog.showModal();
  return {dialog, body, close: () => dialog.close()};
}

/**
 * Ask a yes/no question in a small modal.
 * @param {string} question
 * @param {string} okLabel the confirming button's text ("Delete")
 * @returns {Promise<boolean>}
 */
export function confirmModal(question, okLabel) {
  return new Promise((resolve) => {
    let answer = false;
    const {body, close} = openModal(question, {className: 'confirm', onClose: () => resolve(answer)});
    const ok = h('button', {type: 'button', class: 'danger', onclick: () => { answer = true; close(); }}, okLabel);
    body.append(h('div', {class: 'row-end'},
      h('button', {type: 'button', onclick: close}, 'Cancel'), ok));
    ok.focus();
  });
}
