// Sign in and create account: one form, two modes.
import { $, ID_RE } from './dom.js';

// createLogin binds the form. signIn(body) asks the user function and
// resolves with the session; onSession(session) starts it.
export function createLogin({ signIn, onSession }) {
  let mode = 'login';
  const form = $('login-form');
  const err = $('login-error');
  for (const t of form.querySelectorAll('[data-mode]')) {
    t.addEventListener('click', () => {
      mode = t.dataset.mode;
      form.dataset.mode = mode;
      for (const o of form.querySelectorAll('[data-mode]')) o.setAttribute('aria-selected', String(o === t));
      $('login-submit').textContent = mode === 'login' ? 'Sign in' : 'Create account';
      form.password.autocomplete = mode === 'login' ? 'current-password' : 'new-password';
      err.textContent = '';
    });
  }
  form.dataset.mode = mode;
  form.addEventListener('submit', async (e) => {
    e.preventDefault();
    const userId = form.userId.value.trim();
    const password = form.password.value;
    if (!ID_RE.test(userId)) { err.textContent = 'User ids are 3–32 letters, digits, “.” or “-”.'; return; }
    if (mode === 'register' && password.length < 8) { err.textContent = 'Use at least 8 characters for the password.'; return; }
    if (!password) { err.textContent = 'Enter your password.'; return; }
    err.textContent = '';
    $('login-submit').disabled = true;
    try {
      const body = { action: mode, userId, password };
      if (mode === 'register') body.nickname = form.nickname.value.trim();
      const s = await signIn(body);
      form.password.value = '';
      onSession({ userId: s.userId, nickname: s.nickname, token: s.token });
    } catch (ex) {
      err.textContent = ex.status === 409 ? 'That user id is taken.' : ex.status === 401 ? 'Wrong user id or password.' : ex.message;
    } finally {
      $('login-submit').disabled = false;
    }
  });

  return {
    show(msg) {
      $('app').hidden = true;
      $('login').hidden = false;
      err.textContent = msg || '';
      document.title = 'Easy Chat';
      setTimeout(() => form.userId.focus(), 0);
    },
    hide() { $('login').hidden = true; },
  };
}
