/*
 * commune-vision console shell: hash router, login gate, role-aware navigation.
 * No build step: plain ES modules served from /console/ (see api/routers/console.py).
 *
 * PAGE CONTRACT — how to add a page
 * ----------------------------------
 * 1. Write dashboards/console/pages/<name>.js with a default export:
 *
 *      export default {
 *        id: 'footage',                 // unique; also the CSS hook <main data-page="footage">
 *        route: '#/footage',            // hash route; '#/footage?camera=x' passes params
 *        navKey: 'nav.footage',         // string key of the nav label; null = not in the nav
 *        roles: ['admin', 'operator', 'police'],  // who sees it (nav + route); mirror the API's
 *                                                  // roles of the data the page needs
 *        strings: { vi: { 'nav.footage': 'Xem lại', ... }, en: { 'nav.footage': 'Footage', ... } },
 *        render(root, ctx) { ... },     // may be async; may return a cleanup function
 *      };
 *
 *    Every visible string goes through ctx.t(key, params). Both dictionaries must have the
 *    same keys (tests/console checks it). Prefix keys with the page id ('footage.title')
 *    to avoid clashes; i18n.js holds the shared ones (status.*, type.*, health.*, label.*,
 *    severity.*, category.*, role.*, app.*).
 * 2. Add it to the array in pages/index.js. Order there is the order in the nav.
 *
 * render(root, ctx): root is an empty <section> owned by the page. ctx has:
 *   api       — api.js: get/post/put/del(path, ...) → JSON, errors shown to the user with
 *               the API's message (pass {quiet: true} to handle them yourself, e.g. a 404
 *               you expect); api.url(path, params) for <img>/<video> src; api.wsUrl(...).
 *               The session is an HttpOnly cookie: never handle tokens in pages.
 *   t         — t(key, params) in the current language.
 *   me        — /api/auth/me: {username, role, actor}.
 *   navigate  — navigate('#/review?id=abc').
 *   fmtTime   — fmtTime(epochSeconds, Intl options?) in Asia/Ho_Chi_Minh.
 *   params    — URLSearchParams of the hash query ('#/review?id=abc' → params.get('id')).
 *   signal    — AbortSignal aborted when the page is left: pass it to api calls and
 *               addEventListener so nothing outlives the page.
 *   h, clear, toast — DOM helpers from dom.js (build elements without innerHTML).
 *   lang      — 'vi' | 'en'.
 *   onLogin   — for the login page only: call after a successful POST /api/auth/login.
 * Leaving the page (route change, language switch, logout) aborts ctx.signal, then calls
 * the cleanup function render returned (close sockets, stop timers). A language switch
 * re-renders the current page with the same params.
 *
 * Content-Security-Policy forbids inline scripts and styles: no style="" attributes set
 * from markup strings and no on*="" attributes; el.style.x = ... from JS is fine.
 */
import { api, setUnauthorizedHandler } from './api.js';
import { clear, h, toast } from './dom.js';
import { addStrings, fmtTime, lang, setLang, t } from './i18n.js';
import login from './pages/login.js';
import pages from './pages/index.js';

for (const page of [login, ...pages]) addStrings(page.strings);

const state = { me: null, leave: null };
const main = document.getElementById('main');

/** '#/review?id=1' → {path: '#/review', params}. */
function parseHash(hash) {
  const [path, query = ''] = (hash || '').split('?');
  return { path: path || '', params: new URLSearchParams(query) };
}

export function navigate(route) {
  if (location.hash === route) render();
  else location.hash = route;
}

function allowed(page, me) {
  return !page.roles || (me && page.roles.includes(me.role));
}

function defaultRoute(me) {
  const first = pages.find((p) => p.navKey && allowed(p, me));
  return first ? first.route : '#/wall';
}

function renderNav(currentPath) {
  const nav = document.getElementById('nav');
  const visible = state.me ? pages.filter((p) => p.navKey && allowed(p, state.me)) : [];
  clear(nav, visible.map((p) => h('a', {
    href: p.route,
    class: p.route === currentPath ? 'active' : null,
    'aria-current': p.route === currentPath ? 'page' : null,
    dataset: { page: p.id },
  }, t(p.navKey))));
  document.getElementById('whoami').textContent = state.me
    ? t('app.whoami', { user: state.me.username || state.me.actor, role: t(`role.${state.me.role}`) })
    : '';
  const logout = document.getElementById('logout');
  logout.hidden = !state.me;
  logout.textContent = t('app.logout');
  document.getElementById('lang').textContent = t('app.switchLang');
  document.title = t('app.title');
}

async function loadMe() {
  try {
    state.me = await api.get('/api/auth/me', { quiet: true });
  } catch (err) {
    if (err.status !== 401) toast(t('app.error', { message: err.message }), 'error');
    state.me = null;
  }
  return state.me;
}

function leavePage() {
  if (state.leave) {
    const leave = state.leave;
    state.leave = null;
    leave();
  }
}

async function render() {
  leavePage();
  const { path, params } = parseHash(location.hash);
  if (!state.me && path !== login.route) {
    sessionStorage.setItem('cv.after-login', location.hash || '');
    location.replace(login.route);
    return;
  }
  if (state.me && (path === '' || path === '#/' || path === login.route)) {
    location.replace(defaultRoute(state.me));
    return;
  }
  const page = path === login.route ? login : pages.find((p) => p.route === path);
  renderNav(path);
  const root = h('section', { class: 'page' });
  clear(main, root);
  main.dataset.page = page ? page.id : '';
  if (!page) {
    root.append(h('p', { class: 'empty' }, t('app.notFound')));
    return;
  }
  if (!allowed(page, state.me)) {
    root.append(h('p', { class: 'empty' }, t('app.forbidden')));
    return;
  }
  const controller = new AbortController();
  let cleanup = null;
  state.leave = () => {
    controller.abort();
    if (typeof cleanup === 'function') cleanup();
  };
  const ctx = {
    api, t, me: state.me, navigate, fmtTime, params, signal: controller.signal,
    h, clear, toast, lang: lang(), onLogin,
  };
  try {
    const result = await page.render(root, ctx);
    if (controller.signal.aborted) {
      if (typeof result === 'function') result(); // left while rendering
    } else {
      cleanup = result;
    }
  } catch (err) {
    if (err.name === 'AbortError') return;
    console.error(err);
    root.append(h('p', { class: 'error' }, t('app.error', { message: err.message })));
  }
}

/** The login page calls this after a successful POST /api/auth/login. */
async function onLogin() {
  await loadMe();
  const after = sessionStorage.getItem('cv.after-login');
  sessionStorage.removeItem('cv.after-login');
  const target = after && after !== login.route ? after : defaultRoute(state.me);
  if (location.hash === target) render(); // no hashchange when the hash stays the same
  else location.replace(target);
}

setUnauthorizedHandler(() => {
  if (!state.me) return;
  state.me = null;
  render();
});

document.getElementById('lang').addEventListener('click', () => {
  setLang(lang() === 'vi' ? 'en' : 'vi');
  render();
});

document.getElementById('logout').addEventListener('click', async () => {
  try {
    await api.post('/api/auth/logout', undefined, { quiet: true });
  } finally {
    state.me = null;
    location.hash = login.route;
    render();
  }
});

window.addEventListener('hashchange', render);

await loadMe();
render();
