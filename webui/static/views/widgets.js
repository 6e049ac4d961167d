// Helpers shared by the administration views (properties, offline, client
// key, licensing ID, keys, users, account, cluster, discovery). Everything is
// built with dom.js's h() and text; nothing here parses HTML.
//
// Field errors follow the test contract: the element that shows the
// server's (or the form's own) error for a field carries
// data-test="error-<field>" and sits right after the field; a form-wide
// error carries data-test="form-error".

import { h, clear, track } from '../dom.js';
import { field as formField } from '../form.js';
import { fmtDateTime, details, pill } from '../format.js';
import { localFetch } from '../table.js';

export { pill };

// ---------------------------------------------------------------- errors

// messageOf returns the one line an error shows to people.
export function messageOf(err) {
  if (!err) return '';
  if (typeof err === 'string') return err;
  return err.message || String(err);
}

// codeOf returns an ApiError's code ('' for any other error).
export function codeOf(err) {
  return (err && typeof err.code === 'string') ? err.code : '';
}

// ---------------------------------------------------------------- forms

// field builds a labelled field (form.js's .field): label text, the
// control, and an optional hint. The error of the field goes after the
// control.
export function field(label, control, hint) {
  return formField(label, control, hint ? { hint } : {});
}

// input builds an <input>; props are set as properties after the
// attributes (value, checked, disabled, required …) so that booleans work.
export function input(attrs, props) {
  const el = h('input', attrs);
  if (props) Object.assign(el, props);
  return el;
}

// select builds a <select> from [value, label] pairs and selects value.
export function select(attrs, options, value) {
  const el = h('select', attrs, ...options.map(([v, label]) => h('option', { value: v }, label)));
  if (value !== undefined && value !== null) el.value = String(value);
  return el;
}

// button builds a <button type=button>.
export function button(attrs, label, onClick) {
  const el = h('button', Object.assign({ type: 'button' }, attrs), label);
  if (onClick) el.addEventListener('click', onClick);
  return el;
}

// busy disables el (a button or a form's submit) while promise runs, and
// returns the promise's result.
export async function busy(el, run) {
  const was = el.disabled;
  el.disabled = true;
  el.setAttribute('aria-busy', 'true');
  try {
    return await run();
  } finally {
    el.disabled = was;
    el.removeAttribute('aria-busy');
  }
}

// keep binds the value of a form control to state[key] so that a draft
// survives the view's refreshes; it returns the control.
export function keep(state, key, control) {
  if (!state.drafts) state.drafts = {};
  const drafts = state.drafts;
  if (Object.prototype.hasOwnProperty.call(drafts, key)) {
    if (control.type === 'checkbox') control.checked = !!drafts[key];
    else control.value = drafts[key];
  }
  const save = () => {
    drafts[key] = control.type === 'checkbox' ? control.checked : control.value;
  };
  control.addEventListener('input', save);
  control.addEventListener('change', save);
  return control;
}

// forget drops the drafts whose keys start with prefix.
export function forget(state, prefix) {
  if (!state.drafts) return;
  for (const k of Object.keys(state.drafts)) if (k.startsWith(prefix)) delete state.drafts[k];
}

// ---------------------------------------------------------------- layout

// mount replaces root's content with nodes at once. The control that had
// the focus (known by its data-test and its row's data-key) gets it back,
// so that a live refresh does not take the caret from someone typing.
export function mount(root, ...nodes) {
  const focus = focusedControl(root);
  clear(root);
  for (const n of nodes) if (n) root.append(n);
  if (focus) refocus(root, focus);
}

function focusedControl(root) {
  const el = document.activeElement;
  if (!el || el === root || !root.contains(el) || !el.dataset || !el.dataset.test) return null;
  const row = el.closest('[data-key]');
  let start = null;
  let end = null;
  try {
    start = el.selectionStart;
    end = el.selectionEnd;
  } catch (e) {
    // Inputs without a caret (number, checkbox …).
  }
  return { test: el.dataset.test, key: row ? row.dataset.key : null, start, end };
}

function refocus(root, f) {
  for (const el of root.querySelectorAll('[data-test="' + CSS.escape(f.test) + '"]')) {
    const row = el.closest('[data-key]');
    if ((row ? row.dataset.key : null) !== f.key || el.disabled) continue;
    el.focus();
    if (f.start !== null && typeof el.setSelectionRange === 'function') {
      try { el.setSelectionRange(f.start, f.end); } catch (e) { /* no caret */ }
    }
    return;
  }
}

// section builds a titled panel; attrs.class adds classes.
export function section(title, attrs, ...children) {
  const a = Object.assign({}, attrs || {});
  a.class = 'panel' + (a.class ? ' ' + a.class : '');
  return h('section', a, h('h2', {}, title), ...children);
}

// ready waits until the first page of every pagedTable given has loaded
// (so that a refresh replaces the old content with complete new content).
export async function ready(...tables) {
  await Promise.all(tables.filter((t) => t && t.loaded).map((t) => t.loaded));
}

// dl builds a label/value list (format.js's details) from [term, value,
// test] rows; rows whose value is undefined are left out.
export function dl(rows, attrs) {
  return details(rows.filter((r) => r[1] !== undefined), attrs || {});
}

// note builds a paragraph of muted text.
export function note(text, attrs) {
  return h('p', Object.assign({ class: 'muted' }, attrs || {}), text);
}

// showResult fills box (a result area) with r = {kind: 'ok' | 'error',
// text, lines?}, or empties and hides it when r is null.
export function showResult(box, r) {
  clear(box);
  box.className = 'result';
  box.hidden = !r;
  if (!r) return box;
  box.classList.add('notice', r.kind === 'error' ? 'notice-bad' : 'notice-ok');
  box.setAttribute('role', r.kind === 'error' ? 'alert' : 'status');
  box.append(h('div', {}, r.text));
  if (r.lines && r.lines.length) box.append(h('ul', {}, ...r.lines.map((l) => h('li', {}, l))));
  return box;
}

// resultBox builds a result area named test showing r.
export function resultBox(r, test) {
  return showResult(h('div', { class: 'result', 'data-test': test, 'aria-live': 'polite' }), r);
}

// clientPage returns a pagedTable fetch function that pages items held in
// the browser (for the API's unpaged lists).
export function clientPage(items) {
  return localFetch(items);
}

// ---------------------------------------------------------------- values

// fmtTime shows an RFC 3339 time as a local date and time; '' for none.
export function fmtTime(s) {
  return fmtDateTime(s, true);
}

// hostidText shows a hostid as VALUE (TYPE).
export function hostidText(id) {
  if (!id || !id.value) return '';
  return id.type ? `${id.value} (${id.type})` : id.value;
}

// parseDuration reads a Go duration ("90m", "1h30m", "168h", "1.5h",
// "300ms") and returns seconds, or NaN.
export function parseDuration(s) {
  const text = String(s).trim();
  if (text === '0') return 0;
  const re = /(\d+(?:\.\d*)?|\.\d+)(ns|us|µs|μs|ms|s|m|h)/y;
  const unit = { ns: 1e-9, us: 1e-6, 'µs': 1e-6, 'μs': 1e-6, ms: 1e-3, s: 1, m: 60, h: 3600 };
  let sign = 1;
  let i = 0;
  if (text[0] === '+' || text[0] === '-') { sign = text[0] === '-' ? -1 : 1; i = 1; }
  if (i >= text.length) return NaN;
  let total = 0;
  re.lastIndex = i;
  while (re.lastIndex < text.length) {
    const m = re.exec(text);
    if (!m) return NaN;
    total += parseFloat(m[1]) * unit[m[2]];
  }
  return sign * total;
}

// fmtSeconds shows seconds as a duration one can type back (Go's form
// without the zero parts: 3600 → "1h", 5400 → "1h30m", 2592000 → "720h").
export function fmtSeconds(sec) {
  let s = Math.round(sec);
  const hh = Math.floor(s / 3600); s -= hh * 3600;
  const mm = Math.floor(s / 60); s -= mm * 60;
  let out = '';
  if (hh) out += hh + 'h';
  if (mm) out += mm + 'm';
  if (s || !out) out += s + 's';
  return out;
}

// ---------------------------------------------------------------- files

// copyText copies text to the clipboard; it resolves to whether it could.
export async function copyText(text) {
  try {
    if (navigator.clipboard && window.isSecureContext) {
      await navigator.clipboard.writeText(text);
      return true;
    }
  } catch (e) {
    // Fall through to the selection copy.
  }
  const ta = h('textarea', { class: 'visually-hidden', readonly: '' });
  ta.value = text;
  document.body.append(ta);
  ta.select();
  let ok = false;
  try { ok = document.execCommand('copy'); } catch (e) { ok = false; }
  ta.remove();
  return ok;
}

// copyButton builds a button that copies text() and says so.
export function copyButton(text, test, ctx, label) {
  const name = label || 'Copy';
  return button({ class: 'btn btn-small', 'data-test': test }, name, async (ev) => {
    const ok = await copyText(typeof text === 'function' ? text() : text);
    if (ctx && ctx.toast) ctx.toast(ok ? 'Copied to the clipboard' : 'Could not copy; select the text and copy it');
    ev.target.textContent = ok ? 'Copied' : name;
  });
}

// stillShown tells whether root still shows the view id (the user may have
// gone elsewhere while a request or a timer ran).
export function stillShown(root, id) {
  return root.isConnected && (!root.dataset.view || root.dataset.view === id);
}

// refreshView draws view again in root after a change this browser made,
// without waiting for the live update (which may be down): through the
// framework's ctx.refresh when it has one.
export async function refreshView(view, root, ctx) {
  if (!root.isConnected) return;
  if (typeof ctx.rerender === 'function') {
    ctx.rerender();
    return;
  }
  await track(Promise.resolve().then(() => view.render(root, ctx)));
}

// postForFile POSTs body (JSON) to path and saves the file the server
// answers with under the name the server gives (or fallback); it returns
// that name.
export async function postForFile(ctx, path, body, fallback) {
  const got = await ctx.api.download(path, null, { method: 'POST', body });
  return (got && got.filename) || fallback;
}
