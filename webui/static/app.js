// app.js owns the session, the navigation and the router. Routes are
// location.hash as #/<id>/<params…>; each view is a module in views/ that
// exports {id, title, roles, topics, nav?, render(root, ctx)}.
//
// Beyond webui/DESIGN.md a view may set:
//   nav: false     stay out of the navigation;
//   route, detail  answer #/<route>/<params…> when params are given
//                  (feature.js: route 'features', detail: true);
//   public: true   render without a session (settings, about);
//   keep: true     the app does not clear #view before a refresh: the view
//                  replaces its content itself (no flicker, forms kept).
// and ctx also carries state (an object kept for the route across
// refreshes and visits), refreshing (true on a refresh of the same route),
// rerender() and setTitle(text).

import { h, clear, track } from './dom.js';
import { api, ApiError, getSession, clearSession, onUnauthorized } from './api.js';
import { startEvents, stopEvents, subscribe, restartEvents } from './events.js';
import { settings, onSettingsChange, serverLabel } from './prefs.js';
import { tablesSettled } from './table.js';

// Every view, in navigation order.
const VIEW_MODULES = [
  './views/overview.js',
  './views/features.js',
  './views/feature.js',
  './views/devices.js',
  './views/device.js',
  './views/pools.js',
  './views/reservations.js',
  './views/properties.js',
  './views/offline.js',
  './views/clientkey.js',
  './views/licensingid.js',
  './views/keys.js',
  './views/users.js',
  './views/cluster.js',
  './views/discovery.js',
  './views/audit.js',
  './views/account.js',
  './views/settings.js',
  './views/about.js',
];

// Navigation sections; views not named here go to the last one.
const NAV_GROUPS = [
  { title: 'Licensing', ids: ['overview', 'features', 'devices', 'pools', 'reservations'] },
  { title: 'Server', ids: ['properties', 'offline', 'clientkey', 'licensingid', 'keys', 'users', 'cluster', 'discovery', 'audit'] },
  { title: 'General', ids: ['account', 'settings', 'about'] },
];

const DEFAULT_ROUTE = 'overview';
const REFRESH_DEBOUNCE_MS = 300;

const shell = {};
let views = [];
let session = null;
let current = null; // {view, key} of what #view shows
const states = new Map();
let loginMessage = '';
let loggingOut = false;
let expiryTimer = null;

// ---- helpers ---------------------------------------------------------------

function roles() {
  return session && Array.isArray(session.roles) ? session.roles : [];
}

function can(role) {
  const r = roles();
  return r.includes('ADMIN') || r.includes(role);
}

function canOpen(view) {
  const need = Array.isArray(view.roles) ? view.roles : [];
  return need.length === 0 || roles().includes('ADMIN') || need.some((r) => roles().includes(r));
}

function safeDecode(s) {
  try {
    return decodeURIComponent(s);
  } catch {
    return s;
  }
}

function parseRoute() {
  const raw = location.hash.replace(/^#\/?/, '');
  const parts = raw.split('/').filter((s) => s !== '').map(safeDecode);
  return { id: parts[0] || '', params: parts.slice(1) };
}

function findView(id, params) {
  const byRoute = views.filter((v) => (v.route || v.id) === id);
  if (params.length > 0) {
    return byRoute.find((v) => v.detail) || byRoute.find((v) => v.id === id) || views.find((v) => v.id === id);
  }
  return byRoute.find((v) => !v.detail) || byRoute[0] || views.find((v) => v.id === id);
}

function topicKey(t) {
  return String(t).toLowerCase().replace(/[^a-z]/g, '').replace(/s$/, '');
}

function navigate(hash) {
  let target = String(hash || '');
  if (!target.startsWith('#')) target = '#' + (target.startsWith('/') ? target : '/' + target);
  if (location.hash === target) render();
  else location.hash = target;
}

function toast(text, kind = 'ok') {
  const item = h('div', { class: `toast toast-${kind}`, role: kind === 'error' ? 'alert' : 'status', 'data-test': 'toast' },
    h('span', {}, text),
    h('button', { type: 'button', class: 'toast-close', 'aria-label': 'Dismiss', onclick: () => item.remove() }, '×'));
  shell.toasts.appendChild(item);
  setTimeout(() => item.remove(), kind === 'error' ? 10000 : 5000);
}

function setHeading(text) {
  shell.title.textContent = text || '';
  shell.title.hidden = !text;
  document.title = text ? `${text} — Tally` : 'Tally';
}

// ---- chrome: header and navigation -----------------------------------------

function buildNav() {
  clear(shell.navList);
  if (!session) return;
  const visible = views.filter((v) => v.nav !== false && !v.detail && canOpen(v));
  const placed = new Set();
  const groups = NAV_GROUPS.map((g) => ({ title: g.title, items: g.ids.map((id) => visible.find((v) => v.id === id)).filter(Boolean) }));
  for (const g of groups) for (const v of g.items) placed.add(v);
  const rest = visible.filter((v) => !placed.has(v));
  if (rest.length) groups[1].items.push(...rest);
  for (const g of groups) {
    if (g.items.length === 0) continue;
    shell.navList.appendChild(h('li', { class: 'nav-group' }, g.title));
    for (const v of g.items) {
      shell.navList.appendChild(h('li', {},
        h('a', { href: `#/${v.id}`, 'data-test': `nav-${v.id}`, 'data-id': v.id }, v.title)));
    }
  }
}

function markNav(view) {
  const active = view ? (view.detail ? view.route || view.id : view.id) : '';
  for (const a of shell.navList.querySelectorAll('a[data-id]')) {
    if (a.dataset.id === active) a.setAttribute('aria-current', 'page');
    else a.removeAttribute('aria-current');
  }
}

function updateChrome() {
  document.body.classList.toggle('logged-out', !session);
  shell.user.textContent = session ? session.user : '';
  shell.user.title = session ? `Roles: ${roles().join(', ')}` : '';
  shell.logout.hidden = !session;
  shell.navToggle.hidden = !session;
}

function setNavOpen(open) {
  document.body.classList.toggle('nav-open', open);
  shell.navToggle.setAttribute('aria-expanded', open ? 'true' : 'false');
}

async function loadNode() {
  try {
    const health = await api.get('/api/v1/health');
    shell.node.textContent = health && health.node ? health.node : '';
    shell.node.title = health && health.version ? `Node ${health.node}, version ${health.version}` : '';
  } catch {
    shell.node.textContent = '';
  }
}

// ---- session ---------------------------------------------------------------

function scheduleExpiry() {
  if (expiryTimer) clearTimeout(expiryTimer);
  expiryTimer = null;
  if (!session || !session.expires) return;
  const ms = Date.parse(session.expires) - Date.now();
  if (!Number.isFinite(ms)) return;
  expiryTimer = setTimeout(() => sessionEnded('Your session expired. Please log in again.'), Math.max(0, Math.min(ms, 2 ** 31 - 1)));
}

function sessionEnded(message) {
  if (loggingOut) return;
  stopEvents();
  clearSession();
  session = null;
  if (expiryTimer) clearTimeout(expiryTimer);
  loginMessage = message || '';
  current = null;
  buildNav();
  render();
}

function loggedIn() {
  session = getSession();
  loginMessage = '';
  buildNav();
  startEvents(() => sessionEnded('Your session ended. Please log in again.'));
  scheduleExpiry();
  const route = parseRoute();
  if (!route.id || route.id === 'login') history.replaceState(null, '', `#/${DEFAULT_ROUTE}`);
  render();
}

async function logout() {
  loggingOut = true;
  stopEvents();
  try {
    await api.logout();
  } finally {
    loggingOut = false;
    session = null;
    states.clear();
    current = null;
    loginMessage = '';
    if (expiryTimer) clearTimeout(expiryTimer);
    buildNav();
    history.replaceState(null, '', '#/');
    render();
  }
}

// importView loads a view module, asking again (under another URL, since
// the browser remembers a failed import) when the network dropped it.
async function importView(path) {
  for (let attempt = 0; ; attempt++) {
    try {
      return await import(attempt === 0 ? path : `${path}?attempt=${attempt}`);
    } catch (e) {
      if (attempt >= 2) throw e;
      await new Promise((resolve) => setTimeout(resolve, 500 * (attempt + 1)));
    }
  }
}

// ---- pages the app draws itself ---------------------------------------------

function showLogin(root) {
  root.dataset.view = 'login';
  setHeading('');
  clear(root);
  const user = h('input', { name: 'user', id: 'login-user', 'data-test': 'login-user', autocomplete: 'username', autocapitalize: 'off', spellcheck: 'false' });
  const password = h('input', { type: 'password', name: 'password', id: 'login-password', 'data-test': 'login-password', autocomplete: 'current-password' });
  const error = h('div', { class: 'form-error', 'data-test': 'login-error', role: 'alert', hidden: !loginMessage }, loginMessage);
  const submit = h('button', { type: 'submit', class: 'btn btn-primary', 'data-test': 'login-submit' }, 'Log in');
  const form = h('form', { class: 'login-card', novalidate: true },
    h('h1', {}, 'Log in to Tally'),
    error,
    h('div', { class: 'field' }, h('label', { for: 'login-user' }, 'User'), user),
    h('div', { class: 'field' }, h('label', { for: 'login-password' }, 'Password'), password),
    h('div', { class: 'actions' }, submit),
    h('p', { class: 'login-foot' },
      'Server: ', h('span', { 'data-test': 'login-server' }, serverLabel()), ' · ',
      h('a', { href: '#/settings', 'data-test': 'login-settings' }, 'Connection settings'), ' · ',
      h('a', { href: '#/about' }, 'About')));
  form.addEventListener('submit', async (ev) => {
    ev.preventDefault();
    const name = user.value.trim();
    if (!name || !password.value) {
      error.textContent = 'Enter your user name and password.';
      error.hidden = false;
      (name ? password : user).focus();
      return;
    }
    submit.disabled = true;
    error.hidden = true;
    error.textContent = '';
    try {
      await track(api.login(name, password.value));
      loggedIn();
    } catch (e) {
      error.textContent = e.message || String(e);
      error.hidden = false;
      password.value = '';
      password.focus();
    } finally {
      submit.disabled = false;
    }
  });
  root.appendChild(h('div', { class: 'login-page' }, form));
  loginMessage = '';
  queueMicrotask(() => (user.value ? password : user).focus());
}

function showDenied(root, view) {
  root.dataset.view = view.id;
  setHeading(view.title);
  clear(root);
  const need = (view.roles || []).join(' or ');
  root.appendChild(h('div', { class: 'notice notice-bad', 'data-test': 'access-denied', role: 'alert' },
    `Access denied: this view needs role ${need}`));
}

function showNotFound(root, id) {
  root.dataset.view = 'notfound';
  setHeading('Not found');
  clear(root);
  root.appendChild(h('div', { class: 'notice', 'data-test': 'not-found' },
    `There is no page "${id}". `, h('a', { href: `#/${DEFAULT_ROUTE}` }, 'Go to the overview'), '.'));
}

function showError(root, err, refreshing) {
  const box = h('div', { class: 'notice notice-bad', role: 'alert', 'data-test': 'view-error' },
    h('strong', {}, refreshing ? 'Could not refresh this page: ' : 'Could not load this page: '),
    err && err.message ? err.message : String(err), ' ',
    h('button', { type: 'button', class: 'btn btn-small', onclick: () => render() }, 'Retry'));
  for (const old of root.querySelectorAll(':scope > [data-test=view-error]')) old.remove();
  if (!refreshing) clear(root);
  root.prepend(box);
}

// ---- rendering -------------------------------------------------------------

function saveFocus(root) {
  const el = document.activeElement;
  if (!el || el === document.body || !root.contains(el)) return null;
  const f = { el, test: el.dataset ? el.dataset.test : undefined, start: null, end: null };
  try {
    if (typeof el.selectionStart === 'number') {
      f.start = el.selectionStart;
      f.end = el.selectionEnd;
    }
  } catch {
    // Not a text control.
  }
  return f;
}

function restoreFocus(root, f) {
  if (!f || document.activeElement === f.el) return;
  let el = f.el.isConnected ? f.el : null;
  if (!el && f.test) el = root.querySelector(`[data-test="${CSS.escape(f.test)}"]`);
  if (!el || document.activeElement === el) return;
  el.focus({ preventScroll: true });
  if (f.start !== null && typeof el.setSelectionRange === 'function') {
    try {
      el.setSelectionRange(f.start, f.end);
    } catch {
      // The control no longer holds text.
    }
  }
}

// Scrolled boxes inside the view (tables scroll in their own frame) keep
// their position across a refresh, matched by the table they hold.
function saveBoxScroll(root) {
  const saved = new Map();
  root.querySelectorAll('.table-wrap, [data-keep-scroll]').forEach((el, i) => {
    const t = el.querySelector('table[data-test]');
    saved.set(t ? t.dataset.test : el.dataset.keepScroll || `#${i}`, { top: el.scrollTop, left: el.scrollLeft });
  });
  return saved;
}

function restoreBoxScroll(root, saved) {
  if (!saved || saved.size === 0) return;
  root.querySelectorAll('.table-wrap, [data-keep-scroll]').forEach((el, i) => {
    const t = el.querySelector('table[data-test]');
    const pos = saved.get(t ? t.dataset.test : el.dataset.keepScroll || `#${i}`);
    if (pos && (el.scrollTop !== pos.top || el.scrollLeft !== pos.left)) {
      el.scrollTop = pos.top;
      el.scrollLeft = pos.left;
    }
  });
}

function makeCtx(view, params, state, refreshing) {
  return {
    api,
    params,
    state,
    refreshing,
    settings,
    user: session ? session.user : '',
    roles: roles(),
    view: view.id,
    can,
    navigate,
    toast,
    rerender: () => render(),
    setTitle: (text) => setHeading(text || view.title),
  };
}

async function renderOnce() {
  const root = shell.view;
  session = getSession();
  updateChrome();
  let route = parseRoute();
  if (!route.id) {
    history.replaceState(null, '', `#/${DEFAULT_ROUTE}`);
    route = parseRoute();
  }
  const view = findView(route.id, route.params);
  if (!session && !(view && view.public)) {
    stopEvents();
    current = null;
    markNav(null);
    showLogin(root);
    return;
  }
  markNav(view);
  if (!view) {
    current = null;
    showNotFound(root, route.id);
    return;
  }
  if (!canOpen(view)) {
    current = null;
    showDenied(root, view);
    return;
  }

  const key = `${view.id}/${route.params.join('/')}`;
  const refreshing = current !== null && current.key === key && root.dataset.view === view.id;
  let state = states.get(key);
  if (!state) {
    state = {};
    states.set(key, state);
  }
  const scroll = refreshing ? { x: window.scrollX, y: window.scrollY } : null;
  const focus = refreshing ? saveFocus(root) : null;
  const boxes = refreshing ? saveBoxScroll(root) : null;

  current = { view, key };
  root.dataset.view = view.id;
  if (!refreshing) {
    setHeading(view.title);
    clear(root);
    window.scrollTo(0, 0);
    if (view.keep) root.appendChild(h('p', { class: 'loading' }, 'Loading…'));
  } else if (!view.keep) {
    clear(root);
  }

  try {
    await view.render(root, makeCtx(view, route.params, state, refreshing));
  } catch (e) {
    if (e instanceof ApiError && e.status === 401) return;
    console.error(`view ${view.id}`, e);
    showError(root, e, refreshing);
  }
  await tablesSettled();
  if (current === null || current.key !== key) return;
  // A view that draws its own heading hides the app's.
  shell.title.hidden = !shell.title.textContent || root.querySelector(':scope > h1, :scope > * > h1:first-child') !== null;
  if (scroll) window.scrollTo(scroll.x, scroll.y);
  restoreBoxScroll(root, boxes);
  restoreFocus(root, focus);
}

let rendering = false;
let again = false;

// render draws the current route; while one render runs, further calls
// queue exactly one more.
function render() {
  if (rendering) {
    again = true;
    return;
  }
  rendering = true;
  track((async () => {
    try {
      do {
        again = false;
        try {
          await renderOnce();
        } catch (e) {
          console.error('render', e);
        }
      } while (again);
    } finally {
      rendering = false;
    }
  })());
}

let refreshTimer = null;

function onTopics(topics) {
  if (!session || !current) return;
  const want = (current.view.topics || []).map(topicKey);
  const hit = topics.some((t) => t === 'all' || want.includes(topicKey(t)));
  if (!hit) return;
  // The view is out of date from now until the refresh has drawn it.
  delete shell.view.dataset.loaded;
  if (refreshTimer) clearTimeout(refreshTimer);
  refreshTimer = setTimeout(() => {
    refreshTimer = null;
    render();
  }, REFRESH_DEBOUNCE_MS);
}

// ---- start -----------------------------------------------------------------

function placeholderView(path, error) {
  const id = path.replace(/^.*\/|\.js$/g, '');
  return {
    id,
    title: id,
    roles: [],
    topics: [],
    nav: false,
    broken: true,
    render(root) {
      root.appendChild(h('div', { class: 'notice notice-bad', role: 'alert' }, `The view ${path} could not be loaded: ${error}`));
    },
  };
}

async function boot() {
  shell.view = document.getElementById('view');
  shell.title = document.getElementById('view-title');
  shell.navList = document.getElementById('nav-list');
  shell.node = document.querySelector('[data-test=node-name]');
  shell.user = document.querySelector('[data-test=user-name]');
  shell.logout = document.querySelector('[data-test=logout]');
  shell.navToggle = document.querySelector('[data-test=nav-toggle]');
  shell.toasts = document.getElementById('toasts');

  shell.logout.addEventListener('click', () => logout());
  shell.navToggle.addEventListener('click', () => setNavOpen(!document.body.classList.contains('nav-open')));
  shell.navList.addEventListener('click', (ev) => {
    if (ev.target.closest('a')) setNavOpen(false);
  });
  document.addEventListener('keydown', (ev) => {
    if (ev.key === 'Escape') setNavOpen(false);
  });

  const loaded = await Promise.allSettled(VIEW_MODULES.map(importView));
  views = loaded.map((r, i) => {
    if (r.status === 'fulfilled' && r.value && r.value.default && r.value.default.id) return r.value.default;
    const why = r.status === 'rejected' ? r.reason : 'no default export with an id';
    console.error(`view ${VIEW_MODULES[i]}:`, why);
    return placeholderView(VIEW_MODULES[i], why && why.message ? why.message : String(why));
  });

  onUnauthorized(() => sessionEnded('Your session has ended. Please log in again.'));
  subscribe(onTopics);
  onSettingsChange((now, before) => {
    const moved = now.host !== before.host || now.port !== before.port || now.https !== before.https;
    if (!moved) return;
    loadNode();
    if (session) sessionEnded('The server changed. Please log in again.');
    else restartEvents();
  });
  window.addEventListener('hashchange', () => {
    setNavOpen(false);
    render();
  });

  session = getSession();
  updateChrome();
  buildNav();
  loadNode();
  if (session) {
    startEvents(() => sessionEnded('Your session ended. Please log in again.'));
    scheduleExpiry();
  }
  render();
}

boot();
