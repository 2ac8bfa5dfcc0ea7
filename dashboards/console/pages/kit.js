// Small helpers shared by the footage and admin pages (footage.js, admin-*.js).
import { ApiError } from '../api.js';
import { h, toast } from '../dom.js';

const SVG_NS = 'http://www.w3.org/2000/svg';

/** An SVG element: dom.js's h() makes HTML elements, which SVG does not render. */
export function svg(tag, attrs = {}, ...children) {
  const el = document.createElementNS(SVG_NS, tag);
  for (const [key, value] of Object.entries(attrs)) {
    if (value === null || value === undefined || value === false) continue;
    if (key.startsWith('on') && typeof value === 'function') el.addEventListener(key.slice(2), value);
    else if (key === 'dataset') Object.assign(el.dataset, value);
    else el.setAttribute(key, String(value));
  }
  for (const child of children.flat()) {
    if (child === null || child === undefined || child === false) continue;
    el.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return el;
}

/**
 * An async event handler whose failure is reported, not left as an unhandled rejection:
 * API errors were already shown with the API's message (api.js); leaving the page
 * aborts requests, which is no error; anything else is a bug worth a toast.
 */
export function safely(fn) {
  return (...args) => Promise.resolve()
    .then(() => fn(...args))
    .catch((err) => {
      if (err instanceof ApiError || (err && err.name === 'AbortError')) return;
      console.error(err);
      toast(String(err && err.message ? err.message : err), 'error');
    });
}

/** These pages' styles live in pages/admin.css so the shell's style.css stays its own.
 * A <link> from 'self' is allowed by the CSP (inline <style> is not). */
export function useStyles() {
  if (document.querySelector('link[data-kit-css]')) return;
  document.head.append(h('link', { rel: 'stylesheet', href: '/console/pages/admin.css', dataset: { kitCss: '1' } }));
}

/** A labelled form field; the label wraps the control so clicking it focuses the control. */
export function field(label, control, hint) {
  return h('label', {}, label, control, hint ? h('span', { class: 'hint' }, hint) : null);
}

/** A table from a header row and rows of cells (strings or nodes). */
export function table(headers, rows, attrs = {}) {
  return h('table', { class: 'grid', ...attrs },
    h('thead', {}, h('tr', {}, headers.map((x) => h('th', {}, x)))),
    h('tbody', {}, rows));
}

/**
 * A destructive action that asks first, in the page rather than with window.confirm()
 * (a modal dialog would block the wall's live updates and cannot be translated).
 * Returns a <span> holding the button; the question replaces it until answered.
 */
export function confirmButton(t, label, question, action) {
  const box = h('span', { class: 'confirm' });
  const idle = () => box.replaceChildren(h('button', { type: 'button', class: 'danger', onclick: ask }, label));
  function ask() {
    box.replaceChildren(
      h('span', { class: 'question' }, question),
      h('button', { type: 'button', class: 'danger', dataset: { confirm: 'yes' }, onclick: async () => {
        box.replaceChildren(h('span', { class: 'muted' }, t('kit.working')));
        await safely(action)();
        if (box.isConnected) idle();
      } }, t('kit.yes')),
      h('button', { type: 'button', onclick: idle }, t('kit.cancel')));
  }
  idle();
  return box;
}

/** The newest config version: each camera edit made one, and the admin wants its number. */
export async function latestVersion(api, signal) {
  const versions = await api.get('/api/config/versions', { params: { limit: 1 }, signal, quiet: true });
  return versions.length ? versions[0] : null;
}

/** A camera's config as PUT wants it: GET /api/cameras/{id} minus the read-only health.
 * Its URLs keep their '***' credentials: the API keeps the stored ones for a URL sent
 * back unchanged (api/routers/cameras.py _keep_secret), so they never reach the browser. */
export async function editableCamera(api, id, signal) {
  const camera = await api.get(`/api/cameras/${encodeURIComponent(id)}`, { signal });
  delete camera.health;
  return camera;
}

/** Number input value, or null when empty. */
export function numberOrNull(input) {
  return input.value.trim() === '' ? null : Number(input.value);
}

export const kitStrings = {
  vi: {
    'kit.yes': 'Đồng ý',
    'kit.cancel': 'Hủy',
    'kit.working': 'Đang xử lý…',
    'kit.saved': 'Đã lưu: cấu hình phiên bản {version}',
  },
  en: {
    'kit.yes': 'Yes',
    'kit.cancel': 'Cancel',
    'kit.working': 'Working…',
    'kit.saved': 'Saved: config version {version}',
  },
};
