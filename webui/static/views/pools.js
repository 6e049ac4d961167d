// Named license pools: each pool's share and use per feature, and the
// model definition that makes them, which users with RESERVATIONS edit,
// upload, save and delete. A parse error names its line and column; the
// line is marked in the gutter and selected in the editor.

import { h, clear, track } from '../dom.js';
import { pagedTable, localFetch } from '../table.js';
import { fmtExpiry, pill } from '../format.js';

const STATUS = { ok: ['ok', 'ok'], short: ['warn', 'short'], over: ['bad', 'over'] };
const MODEL_TOPICS = ['pools', 'features'];

// parseErrorText writes a model error as "Line L, column C: message".
export function parseErrorText(err) {
  if (err.line) {
    const m = /line \d+, column \d+:\s*(.*)$/i.exec(err.message);
    const msg = m ? m[1] : err.message;
    return `Line ${err.line}, column ${err.column || 1}: ${msg}`;
  }
  return err.message;
}

function lineRange(text, line) {
  const lines = text.split('\n');
  const n = Math.min(Math.max(1, line), lines.length);
  let start = 0;
  for (let i = 0; i < n - 1; i++) start += lines[i].length + 1;
  return [start, start + lines[n - 1].length, n];
}

function poolRows(pools) {
  const rows = [];
  for (const p of pools) {
    const features = p.features || [];
    if (features.length === 0) rows.push({ poolId: p.id, pool: p.name, feature: '', version: '' });
    for (const f of features) rows.push({ poolId: p.id, ...f, pool: p.name || f.pool });
  }
  return rows;
}

function editor(ctx, serverText) {
  const { api, state } = ctx;
  const writable = ctx.can('RESERVATIONS');
  const gutter = h('div', { class: 'gutter', 'aria-hidden': 'true', 'data-test': 'model-gutter' });
  const text = h('textarea', {
    class: 'code',
    name: 'model',
    'data-test': 'model-text',
    'aria-label': 'Model definition',
    rows: 18,
    wrap: 'off',
    spellcheck: 'false',
    autocapitalize: 'off',
    readonly: !writable,
    placeholder: writable ? 'model "sites" {\n  partitions { … }\n  on any() { accept }\n}' : 'No model is installed.',
    value: state.dirty ? state.draft : serverText,
  });
  const error = h('div', { class: 'form-error', 'data-test': 'model-error', role: 'alert', hidden: true });
  const notice = h('div', { class: 'notice notice-warn', 'data-test': 'model-changed', hidden: true });
  let badLine = 0;

  function drawGutter() {
    const count = text.value.split('\n').length;
    if (gutter.childElementCount !== count) {
      clear(gutter);
      for (let i = 1; i <= count; i++) gutter.appendChild(h('div', { class: 'gutter-line', 'data-line': i }, String(i)));
    }
    for (const el of gutter.querySelectorAll('.bad')) {
      el.classList.remove('bad');
      delete el.dataset.test;
    }
    if (badLine) {
      const el = gutter.children[badLine - 1];
      if (el) {
        el.classList.add('bad');
        el.dataset.test = 'bad-line';
      }
    }
    gutter.scrollTop = text.scrollTop;
  }

  function showError(err, focus = true) {
    state.error = { message: err.message, line: err.line || null, column: err.column || null };
    error.textContent = parseErrorText(err);
    error.hidden = false;
    badLine = 0;
    if (err.line) {
      const [start, end, n] = lineRange(text.value, err.line);
      badLine = n;
      if (focus) {
        text.focus();
        text.setSelectionRange(start, end);
        const lh = parseFloat(getComputedStyle(text).lineHeight) || 20;
        text.scrollTop = Math.max(0, (n - 3) * lh);
      }
    }
    drawGutter();
  }

  function clearError() {
    state.error = null;
    error.hidden = true;
    error.textContent = '';
    badLine = 0;
    drawGutter();
  }

  async function save() {
    clearError();
    if (text.value.trim() === '') {
      showError({ message: 'The model is empty. Use "Delete model" to remove the model in force.' });
      return;
    }
    try {
      await track(api.send('PUT', '/api/v1/model', text.value, 'text/plain; charset=utf-8'));
      state.dirty = false;
      state.draft = '';
      ctx.toast('Model saved.');
      ctx.rerender();
    } catch (e) {
      showError(e);
    }
  }

  text.addEventListener('input', () => {
    state.draft = text.value;
    state.dirty = true;
    state.base = serverText;
    drawGutter();
  });
  text.addEventListener('scroll', () => {
    gutter.scrollTop = text.scrollTop;
    state.scroll = text.scrollTop;
  });

  const buttons = [];
  if (writable) {
    const upload = h('input', {
      type: 'file',
      accept: '.model,.txt,.tally,text/plain',
      'data-write': '',
      'data-test': 'model-upload',
      id: 'model-upload',
      class: 'visually-hidden',
      onchange: async () => {
        const file = upload.files && upload.files[0];
        if (!file) return;
        text.value = await file.text();
        upload.value = '';
        state.draft = text.value;
        state.dirty = true;
        drawGutter();
        await save();
      },
    });
    buttons.push(
      h('button', { type: 'button', class: 'btn btn-primary', 'data-write': '', 'data-test': 'model-save', onclick: save }, 'Save model'),
      h('label', { for: 'model-upload', class: 'btn btn-secondary file-button', 'data-write': '' }, 'Upload file…'),
      upload,
      h('button', {
        type: 'button',
        class: 'btn btn-secondary',
        'data-test': 'model-revert',
        onclick: () => {
          text.value = serverText;
          state.dirty = false;
          state.draft = '';
          clearError();
        },
      }, 'Revert'),
      h('button', {
        type: 'button',
        class: 'btn btn-danger',
        'data-write': '',
        'data-test': 'model-delete',
        disabled: serverText === '',
        onclick: async () => {
          if (!confirm('Delete the license model? Every count goes back to the default pool.')) return;
          clearError();
          try {
            await track(api.send('DELETE', '/api/v1/model'));
            state.dirty = false;
            state.draft = '';
            ctx.toast('Model deleted.');
            ctx.rerender();
          } catch (e) {
            showError(e);
          }
        },
      }, 'Delete model'));
  }

  if (state.dirty && state.base !== serverText) {
    notice.textContent = 'The model changed on the server since you began editing; your edits are kept. Revert to see the model in force.';
    notice.hidden = false;
  }

  const box = h('div', { class: 'model-editor' },
    notice,
    error,
    h('div', { class: 'code-editor' }, gutter, text),
    buttons.length ? h('div', { class: 'actions' }, buttons) : null,
    writable ? h('p', { class: 'hint' }, 'Reservations and a model are mutually exclusive: the server refuses a model while reservations exist.') : null);
  drawGutter();
  if (state.error && state.dirty) showError(state.error, false);
  else state.error = null;
  queueMicrotask(() => {
    if (state.scroll) text.scrollTop = state.scroll;
    gutter.scrollTop = text.scrollTop;
  });
  return box;
}

export default {
  id: 'pools',
  title: 'License pools',
  roles: [],
  topics: MODEL_TOPICS,
  keep: true,

  async render(root, ctx) {
    const { api, state } = ctx;
    const [pools, model] = await Promise.all([
      api.get('/api/v1/pools'),
      api.get('/api/v1/model'),
    ]);
    const table = pagedTable({
      name: 'pools',
      state,
      columns: [
        { title: 'ID', key: 'poolId', class: 'num', value: (r) => String(r.poolId ?? '') },
        { title: 'Pool', key: 'pool', value: (r) => r.pool },
        { title: 'Feature', key: 'feature', value: (r) => r.feature || '—' },
        { title: 'Version', key: 'version', value: (r) => r.version },
        { title: 'Expiration', key: 'expiry', value: (r) => r.feature ? fmtExpiry(r.expiry) : '' },
        { title: 'Allocated', key: 'allocated', class: 'num', value: (r) => r.feature ? String(r.allocated ?? 0) : '' },
        { title: 'Used', key: 'used', class: 'num', value: (r) => r.feature ? String(r.used ?? 0) : '' },
        {
          title: 'Status', key: 'status', value: (r) => {
            if (!r.feature) return '';
            const [kind, label] = STATUS[r.status] || ['neutral', r.status || ''];
            return pill(kind, label, { 'data-test': 'pool-status' });
          },
        },
      ],
      key: (r) => r.feature ? `${r.pool}/${r.feature}/${r.version}` : r.pool,
      rowAttrs: (r) => ({ 'data-pool': r.pool }),
      fetch: localFetch(poolRows(pools.items || [])),
    });
    await table.loaded;
    const serverText = (model && model.text) || '';
    root.replaceChildren(
      h('section', { class: 'panel' },
        h('h2', {}, 'Pools ', h('span', { class: 'muted' }, `(${pools.total ?? (pools.items || []).length})`)),
        table),
      h('section', { class: 'panel' },
        h('h2', {}, 'Model definition'),
        serverText === '' && !state.dirty ? h('p', { class: 'muted', 'data-test': 'no-model' }, 'No model is installed: every device draws from the default pool.') : null,
        editor(ctx, serverText)));
  },
};
