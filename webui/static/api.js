// api.js is the REST client: it adds the bearer token, encodes bodies,
// parses JSON and turns every non-2xx answer into an ApiError. A 401 ends
// the session and hands over to the login page.

import { apiBase, serverLabel } from './prefs.js';

const SESSION_KEY = 'tally.session';

// ApiError is a refused or failed request: the HTTP status (0 when the
// server could not be reached), the server's snake_case code, its one-line
// message, and for parse errors the line and column it names.
export class ApiError extends Error {
  constructor(status, code, message, extra = {}) {
    super(message || `request failed (${status})`);
    this.name = 'ApiError';
    this.status = status;
    this.code = code || '';
    this.line = extra.line ?? null;
    this.column = extra.column ?? null;
    this.field = extra.field ?? null;
    if (this.line === null) {
      const m = /\bline (\d+), column (\d+)/i.exec(this.message);
      if (m) {
        this.line = Number(m[1]);
        this.column = Number(m[2]);
      }
    }
  }
}

// The session: token, expiry, user name and roles from POST /auth/login.
export function getSession() {
  try {
    const s = JSON.parse(sessionStorage.getItem(SESSION_KEY) || 'null');
    if (!s || typeof s.token !== 'string') return null;
    if (s.expires && Date.parse(s.expires) <= Date.now()) {
      clearSession();
      return null;
    }
    return s;
  } catch {
    return null;
  }
}

export function setSession(s) {
  sessionStorage.setItem(SESSION_KEY, JSON.stringify({
    token: s.token,
    expires: s.expires,
    user: s.user,
    roles: Array.isArray(s.roles) ? s.roles : [],
  }));
}

export function clearSession() {
  sessionStorage.removeItem(SESSION_KEY);
}

let unauthorizedHandler = null;

// onUnauthorized sets what happens when the server answers 401 to a
// request made with a token (app.js shows the login page).
export function onUnauthorized(fn) {
  unauthorizedHandler = fn;
}

function url(path, query) {
  let u = apiBase() + path;
  if (query) {
    const params = new URLSearchParams();
    for (const [k, v] of Object.entries(query)) {
      if (v === null || v === undefined || v === '') continue;
      params.append(k, String(v));
    }
    const qs = params.toString();
    if (qs) u += (u.includes('?') ? '&' : '?') + qs;
  }
  return u;
}

async function errorFrom(res) {
  let body = null;
  try {
    const text = await res.text();
    body = text ? JSON.parse(text) : null;
  } catch {
    body = null;
  }
  if (body && typeof body === 'object') {
    return new ApiError(res.status, body.code, body.error || body.message, {
      line: Number.isInteger(body.line) ? body.line : null,
      column: Number.isInteger(body.column) ? body.column : null,
      field: typeof body.field === 'string' ? body.field : null,
    });
  }
  return new ApiError(res.status, 'http_' + res.status, `${res.status} ${res.statusText || 'error'}`);
}

function isRaw(body) {
  return typeof body === 'string' || body instanceof Blob || body instanceof ArrayBuffer ||
    ArrayBuffer.isView(body) || body instanceof FormData || body instanceof URLSearchParams;
}

// request sends one request and returns the Response (2xx only).
async function request(method, path, { query, body, contentType, auth = true } = {}) {
  const headers = { Accept: 'application/json' };
  const session = auth ? getSession() : null;
  if (session) headers.Authorization = `Bearer ${session.token}`;
  const init = { method, headers, cache: 'no-store', credentials: 'omit' };
  if (body !== undefined && body !== null) {
    if (isRaw(body)) {
      init.body = body;
      const ct = contentType || (typeof body === 'string' ? 'text/plain; charset=utf-8' : body.type || 'application/octet-stream');
      if (!(body instanceof FormData)) headers['Content-Type'] = ct;
    } else {
      init.body = JSON.stringify(body);
      headers['Content-Type'] = contentType || 'application/json';
    }
  }
  let res;
  try {
    res = await fetch(url(path, query), init);
  } catch (e) {
    throw new ApiError(0, 'unreachable', `Cannot reach the server at ${serverLabel()} (${e.message || e}).`);
  }
  if (res.ok) return res;
  const err = await errorFrom(res);
  // A 401 ends the session it was sent with; one that a request of an
  // earlier session brings back (sent before a logout) ends nothing.
  const now = getSession();
  if (res.status === 401 && session && now && now.token === session.token) {
    clearSession();
    if (unauthorizedHandler) unauthorizedHandler(err);
  }
  throw err;
}

async function parse(res) {
  if (res.status === 204) return null;
  const ct = res.headers.get('Content-Type') || '';
  const text = await res.text();
  if (!text) return null;
  if (ct.includes('json')) {
    try {
      return JSON.parse(text);
    } catch {
      throw new ApiError(res.status, 'bad_json', 'The server answered with malformed JSON.');
    }
  }
  return text;
}

function filenameFrom(res, fallback) {
  const cd = res.headers.get('Content-Disposition') || '';
  const star = /filename\*=UTF-8''([^;]+)/i.exec(cd);
  if (star) {
    try {
      return decodeURIComponent(star[1]);
    } catch {
      // Fall through to the plain form.
    }
  }
  const plain = /filename="?([^";]+)"?/i.exec(cd);
  return fallback || (plain ? plain[1] : 'download');
}

function saveBlob(blob, filename) {
  const href = URL.createObjectURL(blob);
  const a = document.createElement('a');
  a.href = href;
  a.download = filename;
  a.className = 'hidden';
  document.body.appendChild(a);
  a.click();
  a.remove();
  setTimeout(() => URL.revokeObjectURL(href), 30000);
}

export const api = {
  // get fetches path with the query parameters (null/empty ones left out).
  async get(path, query) {
    return parse(await request('GET', path, { query }));
  },

  // send sends body: objects as JSON, strings, Blobs and buffers as they
  // are with contentType.
  async send(method, path, body, contentType) {
    return parse(await request(method, path, { body, contentType }));
  },

  // download fetches path and saves the answer as filename (or the name
  // the server gives). opts.method and opts.body allow a POST that
  // answers with a file.
  async download(path, filename, opts = {}) {
    const res = await request(opts.method || 'GET', path, { body: opts.body, contentType: opts.contentType, query: opts.query });
    const blob = await res.blob();
    const name = filenameFrom(res, filename);
    saveBlob(blob, name);
    return { filename: name, size: blob.size };
  },

  // upload sends a File (or Blob) as the request body.
  async upload(method, path, file, contentType) {
    const ct = contentType || file.type || 'application/octet-stream';
    return parse(await request(method, path, { body: file, contentType: ct }));
  },

  // login exchanges user and password for a token and keeps the session.
  async login(user, password) {
    const res = await request('POST', '/api/v1/auth/login', { body: { user, password }, auth: false });
    const tok = await parse(res);
    setSession(tok);
    return getSession();
  },

  // logout ends the user's tokens on the server (best effort) and locally.
  async logout() {
    try {
      if (getSession()) await request('POST', '/api/v1/auth/logout', {});
    } catch {
      // The session ends locally either way.
    } finally {
      clearSession();
    }
  },
};

export default api;
