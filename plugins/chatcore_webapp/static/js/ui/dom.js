/**
 * Small DOM helpers. Every text goes into the page as a text node (never as HTML), so a
 * message, a name or a server's sentence can never become markup: no innerHTML anywhere.
 */

/** Keys set as DOM properties (their live state matters), not as attributes. */
const PROPS = new Set(['value', 'checked', 'disabled', 'hidden', 'selected', 'multiple', 'indeterminate']);

/**
 * Make an element: `h('button', {class: 'x', onclick: fn, 'aria-label': 'Send'}, 'Send')`.
 * `text` sets textContent; `on<event>` adds a listener; null/false values are left out.
 * @param {string} tag
 * @param {Object<string, any>} [props]
 * @param {...(Node|string|number|null|false|Array)} children
 * @returns {HTMLElement}
 */
export function h(tag, props = {}, ...children) {
  const el = document.createElement(tag);
  for (const [key, value] of Object.entries(props)) {
    if (value == null || value === false) continue;
    if (key === 'class') el.className = value;
    else if (key === 'text') el.textContent = value;
    else if (key.startsWith('on') && typeof value === 'function') el.addEventListener(key.slice(2), value);
    else if (PROPS.has(key)) el[key] = value;
    else el.setAttribute(key, value === true ? '' : String(value));
  }
  append(el, children);
  return el;
}

/**
 * Append children (nodes, or strings as text nodes; nested arrays flattened; null skipped).
 * @param {Element} el
 * @param {Array} children
 */
export function append(el, children) {
  for (const child of children.flat(Infinity)) {
    if (child == null || child === false) continue;
    el.append(child instanceof Node ? child : String(child));
  }
}

/**
 * A visually hidden text for screen readers ("3 unread" beside a badge showing "3").
 * @param {string} text
 */
export const srOnly = (text) => h('span', {class: 'sr-only'}, text);

/** Unique ids for aria-labelledby/for pairs. */
let serial = 0;
/** @param {string} prefix @returns {string} */
export const uid = (prefix = 'id') => `${prefix}-${++serial}`;

/**
 * A labelled form field: `<label>Text <input></label>` keeps label and control tied without ids.
 * @param {string} label
 * @param {HTMLElement} control
 * @param {string} [cls]
 */
export function field(label, control, cls = 'field') {
  return h('label', {class: cls}, h('span', {class: 'field-label'}, label), control);
}

/**
 * Call `fn` at most once per `ms`, after the last call (a trailing debounce).
 * @template {Function} F
 * @param {F} fn
 * @param {number} ms
 * @returns {F}
 */
export function debounce(fn, ms) {
  let timer = 0;
  return /** @type {any} */ ((...args) => {
    clearTimeout(timer);
    timer = setTimeout(() => fn(...args), ms);
  });
}
