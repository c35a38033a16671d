/**
 * The login / registration screen. Errors are the server's own sentences, in role=alert.
 */
import {h, field} from './dom.js';
import {errorText} from './format.js';

/**
 * Show the login screen in `root`; `onDone()` runs once a user is logged in.
 * @param {HTMLElement} root
 * @param {any} client
 * @param {() => void} onDone
 */
export function mountLogin(root, client, onDone) {
  let registering = false;
  const username = h('input', {name: 'username', autocomplete: 'username', required: true, autocapitalize: 'none', spellcheck: 'false'});
  const password = h('input', {name: 'password', type: 'password', autocomplete: 'current-password', required: true});
  const displayName = h('input', {name: 'display_name', autocomplete: 'nickname', placeholder: 'optional'});
  const nameField = field('Display name', displayName);
  const error = h('p', {class: 'error', role: 'alert'});
  const submit = h('button', {type: 'submit', class: 'primary'});
  const heading = h('h1', {});
  const switchBtn = h('button', {type: 'button', class: 'link', onclick: () => setMode(!registering)});
  const form = h('form', {class: 'login-form', novalidate: true, 'aria-labelledby': 'login-title'},
    field('Username', username), field('Password', password), nameField, error, submit);
  heading.id = 'login-title';

  function setMode(register) {
    registering = register;
    heading.textContent = register ? 'Create an account' : 'Log in to chatcore';
    submit.textContent = register ? 'Create account' : 'Log in';
    switchBtn.textContent = register ? 'I already have an account' : 'Create an account';
    password.autocomplete = register ? 'new-password' : 'current-password';
    nameField.hidden = !register;
    error.textContent = '';
  }

  form.addEventListener('submit', async (e) => {
    e.preventDefault(); // the Content-Security-Policy forbids real form submissions anyway
    const user = username.value.trim();
    if (!user || !password.value) {
      error.textContent = 'Enter your username and password.';
      (user ? password : username).focus();
      return;
    }
    error.textContent = '';
    submit.disabled = true;
    try {
      if (registering) await client.register(user, password.value, displayName.value.trim() || undefined);
      if (!client.user) await client.login(user, password.value);
      onDone();
    } catch (err) {
      error.textContent = errorText(err);
      password.focus();
    } finally {
      submit.disabled = false;
    }
  });

  setMode(false);
  root.replaceChildren(h('section', {class: 'login'},
    h('div', {class: 'login-box'},
      h('img', {src: 'icon.svg', alt: '', width: 56, height: 56, class: 'login-logo'}),
      heading, form, h('p', {class: 'login-switch'}, switchBtn))));
  username.focus();
}
