// table.js is the server-paged table of every list: the rows of one page,
// the total number of records, previous/next and the page number. The page
// is kept in the view's state so that a refresh stays on it.

import { h, clear, track } from './dom.js';
import { settings } from './prefs.js';

// RETRY_MS is how long an unreachable server is left before the table
// asks again.
const RETRY_MS = 3000;

// localFetch pages an array that the API answers whole (pool features,
// served devices) the same way the server pages its lists.
// In-flight page loads of every table, so the app can wait for them.
const inflight = new Set();

// tablesSettled resolves when every page load started so far has ended.
export function tablesSettled() {
  return Promise.allSettled([...inflight]);
}

function pending(promise) {
  inflight.add(promise);
  const done = () => inflight.delete(promise);
  promise.then(done, done);
  return track(promise);
}

export function localFetch(items) {
  return (page, pageSize) => {
    const start = (page - 1) * pageSize;
    return { total: items.length, page, pageSize, items: items.slice(start, start + pageSize) };
  };
}

function renderCell(col, row) {
  let v;
  try {
    v = col.value(row);
  } catch (e) {
    console.error('table cell', e);
    v = '';
  }
  return h('td', { class: col.class, 'data-col': col.key }, v === null || v === undefined ? '' : v);
}

// pagedTable({name, columns, fetch, key, onRow, state, pageSize, rowAttrs,
// empty, caption}) returns the table element at once and loads the page
// kept in state (or 1). columns: [{title, value: row => string|Node,
// class?, key?}]; fetch(page, pageSize) answers {total, page, pageSize,
// items} (a promise or not); key(row) is the row's data-key; onRow(row)
// opens a row (click or Enter); rowAttrs(row) adds attributes to its tr.
// The element has .loaded (a promise of the first page) and .reload().
export function pagedTable(opts) {
  const { name, columns, fetch, key, onRow, rowAttrs, caption } = opts;
  const state = opts.state || {};
  state.pages = state.pages || {};
  const pageSize = () => opts.pageSize || settings.pageSize;
  let seq = 0;

  const tbody = h('tbody');
  const table = h('table', { class: 'data', 'data-test': `table-${name}` },
    caption ? h('caption', {}, caption) : null,
    h('thead', {}, h('tr', {}, columns.map((c) => h('th', { scope: 'col', class: c.class }, c.title)))),
    tbody);
  const total = h('span', { 'data-test': 'total' }, '0');
  const pageNumber = h('span', { 'data-test': 'page-number' }, '1');
  const pageCount = h('span', { 'data-test': 'page-count' }, '1');
  const prev = h('button', { type: 'button', class: 'btn btn-small', 'data-test': 'page-prev', 'aria-label': 'Previous page', disabled: true, onclick: () => go(current - 1) }, '‹ Prev');
  const next = h('button', { type: 'button', class: 'btn btn-small', 'data-test': 'page-next', 'aria-label': 'Next page', disabled: true, onclick: () => go(current + 1) }, 'Next ›');
  const error = h('div', { class: 'table-error', 'data-test': 'table-error', role: 'alert', hidden: true });
  const el = h('div', { class: 'paged', 'data-table': name },
    h('div', { class: 'table-wrap' }, table),
    error,
    h('div', { class: 'pager' },
      h('span', { class: 'pager-total' }, 'Total: ', total),
      h('span', { class: 'pager-nav' },
        prev,
        h('span', { class: 'pager-page' }, 'Page ', pageNumber, ' of ', pageCount),
        next)));

  let current = Math.max(1, Number(state.pages[name]) || 1);
  let pages = 1;

  function showRows(res) {
    clear(tbody);
    const items = Array.isArray(res.items) ? res.items : [];
    if (items.length === 0) {
      tbody.appendChild(h('tr', { class: 'empty' },
        h('td', { colspan: columns.length, 'data-test': 'empty' }, opts.empty || 'No records')));
    }
    for (const row of items) {
      const attrs = { 'data-test': 'row', 'data-key': key ? key(row) : undefined, ...(rowAttrs ? rowAttrs(row) : {}) };
      if (onRow) {
        attrs.class = 'clickable';
        attrs.tabindex = '0';
        attrs.onclick = (ev) => {
          if (ev.target.closest('button, a, input, select, textarea, label')) return;
          onRow(row);
        };
        attrs.onkeydown = (ev) => {
          if (ev.key === 'Enter' && ev.target === ev.currentTarget) onRow(row);
        };
      }
      tbody.appendChild(h('tr', attrs, columns.map((c) => renderCell(c, row))));
    }
    const n = Number(res.total) || 0;
    const size = Number(res.pageSize) || pageSize();
    pages = Math.max(1, Math.ceil(n / size));
    total.textContent = String(n);
    pageNumber.textContent = String(current);
    pageCount.textContent = String(pages);
    prev.disabled = current <= 1;
    next.disabled = current >= pages;
  }

  async function load(page) {
    const my = ++seq;
    const size = pageSize();
    let res = await fetch(page, size);
    // A page past the end (rows were deleted): go to the last one.
    if (res && Array.isArray(res.items) && res.items.length === 0 && page > 1 && res.total > 0) {
      page = Math.max(1, Math.ceil(res.total / size));
      res = await fetch(page, size);
    }
    if (my !== seq) return;
    current = page;
    state.pages[name] = page;
    error.hidden = true;
    showRows(res || { total: 0, items: [] });
  }

  async function safeLoad(page) {
    try {
      await load(page);
    } catch (e) {
      error.textContent = e.message || String(e);
      error.hidden = false;
      clear(tbody);
      tbody.appendChild(h('tr', { class: 'empty' }, h('td', { colspan: columns.length }, 'Could not load the records.')));
      // A server that could not be reached is asked again while the
      // table is on screen; a refusal is shown until something changes.
      if (e && e.code === 'unreachable') {
        const my = seq;
        setTimeout(() => {
          if (el.isConnected && my === seq) pending(safeLoad(current));
        }, RETRY_MS);
      }
      if (opts.throwErrors) throw e;
    }
  }

  function go(page) {
    if (page < 1 || page > pages || page === current) return;
    pending(safeLoad(page));
  }

  el.loaded = pending(safeLoad(current));
  el.reload = () => pending(safeLoad(current));
  return el;
}
