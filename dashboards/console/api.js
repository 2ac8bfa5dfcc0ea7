// fetch wrapper. The session is the HttpOnly cookie set by /api/auth/login, so
// scripts never hold a token; same-origin credentials send it on every call.
import { toast } from './dom.js';

export class ApiError extends Error {
  constructor(status, message, body) {
    super(message);
    this.status = status;
    this.body = body;
  }
}

// app.js sets this so a 401 anywhere (expired session) returns to the login page.
let onUnauthorized = () => {};
export function setUnauthorizedHandler(fn) {
  onUnauthorized = fn;
}

/** The API's own words: FastAPI's {"detail": "..."} or its validation error list. */
function messageOf(status, body) {
  const detail = body && body.detail;
  if (typeof detail === 'string') return detail;
  if (Array.isArray(detail)) {
    return detail.map((d) => `${(d.loc || []).slice(1).join('.')}: ${d.msg}`).join('; ');
  }
  if (detail && typeof detail === 'object') return detail.message || JSON.stringify(detail);
  return `HTTP ${status}`;
}

/** Path plus query; null/undefined/'' values are left out, arrays repeat the key. */
export function url(path, params = {}) {
  const query = new URLSearchParams();
  for (const [key, value] of Object.entries(params || {})) {
    if (value === null || value === undefined || value === '') continue;
    for (const v of Array.isArray(value) ? value : [value]) query.append(key, String(v));
  }
  const qs = query.toString();
  return qs ? `${path}?${qs}` : path;
}

/**
 * request('GET', '/api/incidents', {params, body, signal, quiet})
 * Resolves to the JSON body (null for 204). Throws ApiError; unless quiet, the
 * error is also shown to the user with the API's message.
 */
export async function request(method, path, { params, body, signal, quiet = false } = {}) {
  const init = { method, credentials: 'same-origin', signal, headers: { Accept: 'application/json' } };
  if (body !== undefined) {
    init.headers['Content-Type'] = 'application/json';
    init.body = JSON.stringify(body);
  }
  let response;
  try {
    response = await fetch(url(path, params), init);
  } catch (err) {
    if (err.name === 'AbortError') throw err; // the page was left: nothing to tell
    const error = new ApiError(0, `network: ${err.message}`, null);
    if (!quiet) toast(error.message, 'error');
    throw error;
  }
  const type = response.headers.get('content-type') || '';
  const data = type.includes('json') ? await response.json().catch(() => null) : null;
  if (!response.ok) {
    const error = new ApiError(response.status, messageOf(response.status, data), data);
    // A wrong password is a 401 too, but not a lost session.
    if (response.status === 401 && path !== '/api/auth/login') onUnauthorized();
    if (!quiet) toast(error.message, 'error');
    throw error;
  }
  return response.status === 204 ? null : data;
}

export const api = {
  url,
  request,
  get: (path, opts) => request('GET', path, opts),
  post: (path, body, opts) => request('POST', path, { ...opts, body }),
  put: (path, body, opts) => request('PUT', path, { ...opts, body }),
  del: (path, opts) => request('DELETE', path, opts),
  /** ws(s)://host/path?query, for the alert socket (the cookie goes with it). */
  wsUrl(path, params) {
    const proto = location.protocol === 'https:' ? 'wss:' : 'ws:';
    return `${proto}//${location.host}${url(path, params)}`;
  },
};
