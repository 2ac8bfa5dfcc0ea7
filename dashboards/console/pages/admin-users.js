// Admin: users (create, change role, deactivate) and API keys (create, shown once; revoke).
import { confirmButton, field, kitStrings, safely, table, useStyles } from './kit.js';

const ROLES = ['viewer', 'operator', 'police', 'admin'];

const STRINGS = {
  vi: {
    'nav.adminUsers': 'Người dùng',
    'users.title': 'Người dùng và khóa API',
    'users.users': 'Người dùng',
    'users.col.username': 'Tên đăng nhập', 'users.col.display': 'Họ tên', 'users.col.role': 'Vai trò',
    'users.col.active': 'Trạng thái', 'users.col.lastLogin': 'Đăng nhập gần nhất', 'users.col.actions': '',
    'users.active': 'Đang hoạt động', 'users.inactive': 'Đã khóa',
    'users.deactivate': 'Khóa tài khoản', 'users.activate': 'Mở khóa',
    'users.confirmDeactivate': 'Khóa {username}? Phiên đăng nhập của người này dừng ngay.',
    'users.roleChanged': 'Đã đổi vai trò của {username} thành {role}',
    'users.create': 'Tạo người dùng',
    'users.f.username': 'Tên đăng nhập (chữ thường)', 'users.f.display': 'Họ tên',
    'users.f.role': 'Vai trò', 'users.f.password': 'Mật khẩu (ít nhất 10 ký tự)',
    'users.created': 'Đã tạo người dùng {username}',
    'users.keys': 'Khóa API (cho hệ thống tích hợp)',
    'keys.col.name': 'Tên', 'keys.col.prefix': 'Mã đầu', 'keys.col.role': 'Vai trò', 'keys.col.createdBy': 'Người tạo',
    'keys.col.created': 'Tạo lúc', 'keys.col.lastUsed': 'Dùng gần nhất', 'keys.col.actions': '',
    'keys.revoked': 'Đã thu hồi', 'keys.revoke': 'Thu hồi',
    'keys.confirmRevoke': 'Thu hồi khóa {name}? Hệ thống dùng khóa này sẽ mất quyền truy cập ngay.',
    'keys.create': 'Tạo khóa API', 'keys.f.name': 'Tên (hệ thống dùng khóa, vd. vms-bridge)', 'keys.f.role': 'Vai trò',
    'keys.shownOnce': 'Khóa mới, chỉ hiện một lần. Hãy sao chép và cất giữ an toàn:',
    'keys.copy': 'Sao chép', 'keys.copied': 'Đã sao chép',
    'users.none': 'Chưa có.',
    'users.you': '(bạn)',
  },
  en: {
    'nav.adminUsers': 'Users',
    'users.title': 'Users and API keys',
    'users.users': 'Users',
    'users.col.username': 'Username', 'users.col.display': 'Name', 'users.col.role': 'Role',
    'users.col.active': 'Status', 'users.col.lastLogin': 'Last sign-in', 'users.col.actions': '',
    'users.active': 'Active', 'users.inactive': 'Deactivated',
    'users.deactivate': 'Deactivate', 'users.activate': 'Reactivate',
    'users.confirmDeactivate': 'Deactivate {username}? Their sessions stop at once.',
    'users.roleChanged': '{username} is now {role}',
    'users.create': 'Create user',
    'users.f.username': 'Username (lowercase)', 'users.f.display': 'Display name',
    'users.f.role': 'Role', 'users.f.password': 'Password (10 characters or more)',
    'users.created': 'User {username} created',
    'users.keys': 'API keys (for integrations)',
    'keys.col.name': 'Name', 'keys.col.prefix': 'Prefix', 'keys.col.role': 'Role', 'keys.col.createdBy': 'Created by',
    'keys.col.created': 'Created', 'keys.col.lastUsed': 'Last used', 'keys.col.actions': '',
    'keys.revoked': 'Revoked', 'keys.revoke': 'Revoke',
    'keys.confirmRevoke': 'Revoke key {name}? Whatever uses it loses access at once.',
    'keys.create': 'Create API key', 'keys.f.name': 'Name (what uses the key, e.g. vms-bridge)', 'keys.f.role': 'Role',
    'keys.shownOnce': 'The new key, shown only this once. Copy it and keep it safe:',
    'keys.copy': 'Copy', 'keys.copied': 'Copied',
    'users.none': 'None yet.',
    'users.you': '(you)',
  },
};

function roleSelect(h, t, name, value) {
  return h('select', { name }, ROLES.map((r) => h('option', { value: r, selected: r === value ? 'selected' : null }, t(`role.${r}`))));
}

export default {
  id: 'admin-users',
  route: '#/admin/users',
  navKey: 'nav.adminUsers',
  roles: ['admin'],
  strings: { vi: { ...kitStrings.vi, ...STRINGS.vi }, en: { ...kitStrings.en, ...STRINGS.en } },
  async render(root, { api, t, h, fmtTime, me, signal, toast }) {
    useStyles();
    const users = h('div', { 'data-testid': 'user-list' });
    const keys = h('div', { 'data-testid': 'key-list' });
    const newKey = h('div', { class: 'card secret', hidden: true, 'data-testid': 'new-key' });

    const userForm = (() => {
      const username = h('input', { name: 'username', required: true, autocomplete: 'off' });
      const display = h('input', { name: 'display_name' });
      const role = roleSelect(h, t, 'role', 'operator');
      const password = h('input', { name: 'password', type: 'password', required: true, minlength: 10, autocomplete: 'new-password' });
      const form = h('form', { class: 'toolbar', 'data-testid': 'user-form' },
        field(t('users.f.username'), username), field(t('users.f.display'), display),
        field(t('users.f.role'), role), field(t('users.f.password'), password),
        h('button', { type: 'submit', class: 'primary' }, t('users.create')));
      form.addEventListener('submit', (event) => event.preventDefault(), { signal });
      form.addEventListener('submit', safely(async () => {
        const created = await api.post('/api/users', {
          username: username.value.trim(), display_name: display.value.trim(), role: role.value, password: password.value,
        }, { signal });
        form.reset();
        toast(t('users.created', { username: created.username }));
        await loadUsers();
      }), { signal });
      return form;
    })();

    const keyForm = (() => {
      const name = h('input', { name: 'key_name', required: true, autocomplete: 'off' });
      const role = roleSelect(h, t, 'key_role', 'viewer');
      const form = h('form', { class: 'toolbar', 'data-testid': 'key-form' },
        field(t('keys.f.name'), name), field(t('keys.f.role'), role),
        h('button', { type: 'submit', class: 'primary' }, t('keys.create')));
      form.addEventListener('submit', (event) => event.preventDefault(), { signal });
      form.addEventListener('submit', safely(async () => {
        const created = await api.post('/api/users/api-keys', { name: name.value.trim(), role: role.value }, { signal });
        form.reset();
        showKey(created.key);
        await loadKeys();
      }), { signal });
      return form;
    })();

    /** The only time the secret exists outside its hash: show it, offer a copy, never store it. */
    function showKey(secret) {
      const value = h('input', { readOnly: true, value: secret, class: 'mono', size: 60, 'data-testid': 'new-key-value' });
      const copy = h('button', { type: 'button', onclick: async () => {
        value.select();
        try { await navigator.clipboard.writeText(secret); toast(t('keys.copied')); } catch { /* selected for Ctrl+C */ }
      } }, t('keys.copy'));
      newKey.replaceChildren(h('p', {}, t('keys.shownOnce')), h('div', { class: 'actions' }, value, copy));
      newKey.hidden = false;
    }

    const patch = (username, body) => api.request('PATCH', `/api/users/${encodeURIComponent(username)}`, { body, signal });

    async function loadUsers() {
      const list = await api.get('/api/users', { signal });
      const rows = list.map((u) => {
        // Not yourself: a slip would lock the admin out of this page.
        const self = u.username === me.username;
        const role = roleSelect(h, t, `role-${u.username}`, u.role);
        role.disabled = self;
        role.addEventListener('change', safely(async () => {
          try {
            await patch(u.username, { role: role.value });
            toast(t('users.roleChanged', { username: u.username, role: t(`role.${role.value}`) }));
          } finally {
            await loadUsers(); // on refusal (last admin), show the role it still has
          }
        }), { signal });
        const toggle = self ? h('span', { class: 'muted' }, t('users.you')) : u.active
          ? confirmButton(t, t('users.deactivate'), t('users.confirmDeactivate', { username: u.username }), async () => {
            await patch(u.username, { active: false });
            await loadUsers();
          })
          : h('button', { type: 'button', onclick: safely(async () => { await patch(u.username, { active: true }); await loadUsers(); }) }, t('users.activate'));
        return h('tr', { dataset: { username: u.username }, class: u.active ? null : 'inactive' },
          h('td', {}, u.username), h('td', {}, u.display_name), h('td', {}, role),
          h('td', {}, u.active ? t('users.active') : t('users.inactive')),
          h('td', {}, u.last_login_ts ? fmtTime(u.last_login_ts) : '—'), h('td', { class: 'row-actions' }, toggle));
      });
      users.replaceChildren(table(['username', 'display', 'role', 'active', 'lastLogin', 'actions'].map((k) => t(`users.col.${k}`)), rows));
    }

    async function loadKeys() {
      const list = await api.get('/api/users/api-keys', { signal });
      if (!list.length) {
        keys.replaceChildren(h('p', { class: 'empty' }, t('users.none')));
        return;
      }
      const rows = list.map((k) => h('tr', { dataset: { key: k.id }, class: k.revoked ? 'inactive' : null },
        h('td', {}, k.name), h('td', { class: 'mono' }, k.prefix), h('td', {}, t(`role.${k.role}`)), h('td', {}, k.created_by),
        h('td', {}, fmtTime(k.created_ts)), h('td', {}, k.last_used_ts ? fmtTime(k.last_used_ts) : '—'),
        h('td', { class: 'row-actions' }, k.revoked ? t('keys.revoked')
          : confirmButton(t, t('keys.revoke'), t('keys.confirmRevoke', { name: k.name }), async () => {
            await api.del(`/api/users/api-keys/${k.id}`, { signal });
            await loadKeys();
          }))));
      keys.replaceChildren(table(['name', 'prefix', 'role', 'createdBy', 'created', 'lastUsed', 'actions'].map((k) => t(`keys.col.${k}`)), rows));
    }

    root.append(
      h('h1', {}, t('users.title')),
      h('div', { class: 'card' }, h('h2', {}, t('users.users')), userForm, users),
      h('div', { class: 'card' }, h('h2', {}, t('users.keys')), keyForm, newKey, keys));
    await Promise.all([loadUsers(), loadKeys()]);
  },
};
