// Sign-in form. POST /api/auth/login sets the HttpOnly session cookie; the token in
// the response body is deliberately ignored so no script ever stores it.

export default {
  id: 'login',
  route: '#/login',
  navKey: null,
  roles: null, // public
  strings: {
    vi: {
      'login.title': 'Đăng nhập',
      'login.username': 'Tên đăng nhập',
      'login.password': 'Mật khẩu',
      'login.submit': 'Đăng nhập',
      'login.failed': 'Không đăng nhập được: {message}',
    },
    en: {
      'login.title': 'Sign in',
      'login.username': 'Username',
      'login.password': 'Password',
      'login.submit': 'Sign in',
      'login.failed': 'Could not sign in: {message}',
    },
  },
  render(root, { api, t, h, onLogin, signal }) {
    const user = h('input', { name: 'username', autocomplete: 'username', required: true, autofocus: true });
    const pass = h('input', { name: 'password', type: 'password', autocomplete: 'current-password', required: true });
    const error = h('p', { class: 'error', role: 'alert' });
    const submit = h('button', { type: 'submit', class: 'primary' }, t('login.submit'));
    const form = h('form', { class: 'login-form' },
      h('h1', {}, t('login.title')),
      h('label', {}, t('login.username'), user),
      h('label', {}, t('login.password'), pass),
      error,
      submit);
    form.addEventListener('submit', async (event) => {
      event.preventDefault();
      submit.disabled = true;
      error.textContent = '';
      try {
        await api.post('/api/auth/login', { username: user.value, password: pass.value }, { quiet: true });
        await onLogin();
      } catch (err) {
        error.textContent = t('login.failed', { message: err.message });
        submit.disabled = false;
      }
    }, { signal });
    root.append(form);
  },
};
