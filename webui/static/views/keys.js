// First-authentication keys: the secrets devices onboard with. One-time
// keys onboard one device each; a mass-deployment key onboards any number.
// Only KEYS (and ADMIN, which holds it) may see them at all.
//
// Test hooks: the create form [data-test=key-type] (ONE_TIME / MASS),
// [data-test=key-quantity] (one-time), [data-test=key-password] (mass;
// empty for a random one), [data-test=key-description],
// [data-test=key-create]; the keys just made [data-test=key-created] with
// table[data-test=table-created-keys], [data-test=key-created-copy] and
// [data-test=key-created-dismiss]; the filters [data-test=key-filter-state],
// [data-test=key-filter-type], [data-test=key-filter-text]; the table
// table[data-test=table-keys] with rows keyed by key ID, in each row
// [data-test=key-secret], [data-test=key-show] (Show / Hide),
// [data-test=key-toggle] (Activate / Deactivate), [data-test=key-edit],
// [data-test=key-edit-description], [data-test=key-edit-save],
// [data-test=key-edit-cancel], [data-test=key-delete]. Errors:
// [data-test=error-type|count|secret|description|edit-description],
// [data-test=form-error].

import { h, fieldError, clearErrors } from '../dom.js';
import { formError } from '../form.js';
import { pagedTable } from '../table.js';
import {
  busy, clientPage, codeOf, copyButton, field, fmtTime, forget, hostidText, input, keep, messageOf, mount, note, pill, ready, section, select,
} from './widgets.js';

const MAX_COUNT = 10000;
const TYPES = [['ONE_TIME', 'One-time'], ['MASS', 'Mass deployment']];
const STATES = { ACTIVE: 'active', INACTIVE: 'inactive', USED: 'used' };
const TYPE_TEXT = { ONE_TIME: 'one-time', MASS: 'mass' };

export default {
  id: 'keys',
  title: 'Keys',
  roles: ['KEYS'],
  topics: ['keys'],
  keep: true,

  async render(root, ctx) {
    const state = ctx.state;
    if (!state.revealed) state.revealed = {};
    if (!state.filter) state.filter = { state: '', type: '', text: '' };
    if (!state.table) state.table = {};
    const can = ctx.can('KEYS');
    if (ctx.setTitle) ctx.setTitle('First-authentication keys');

    const view = { root, ctx, state, can };
    view.createdSlot = h('div', { class: 'slot' });
    view.tableSlot = h('div', { class: 'slot' });
    await Promise.all([fillCreated(view), fillTable(view)]);

    mount(root,
      note('Devices onboard with a key: a one-time key onboards one device, a mass-deployment key any number. '
        + 'Secrets are masked unless shown.'),
      can ? createSection(view) : null,
      view.createdSlot,
      section('Keys', { 'data-test': 'keys-list' }, filterBar(view), view.tableSlot));
  },
};

// ------------------------------------------------------------ the list

function filterBar(view) {
  const { state } = view;
  const st = select({ 'data-test': 'key-filter-state', 'aria-label': 'State' },
    [['', 'Any state'], ['active', 'Active'], ['inactive', 'Inactive'], ['used', 'Used']], state.filter.state);
  const ty = select({ 'data-test': 'key-filter-type', 'aria-label': 'Type' },
    [['', 'Any type'], ['ONE_TIME', 'One-time'], ['MASS', 'Mass deployment']], state.filter.type);
  const text = input({ type: 'search', 'data-test': 'key-filter-text', placeholder: 'Filter…',
    'aria-label': 'Text filter' }, { value: state.filter.text });
  const changed = () => {
    state.filter = { state: st.value, type: ty.value, text: text.value.trim() };
    state.table = {};
    fillTable(view);
  };
  st.addEventListener('change', changed);
  ty.addEventListener('change', changed);
  let timer = null;
  text.addEventListener('input', () => {
    clearTimeout(timer);
    timer = setTimeout(changed, 250);
  });
  return h('div', { class: 'toolbar filters' },
    field('State', st), field('Type', ty), field('Search', text, 'ID, description, state, type or device'));
}

function query(state, page, pageSize, show) {
  const q = { page, pageSize };
  if (state.filter.state) q.state = state.filter.state;
  if (state.filter.type) q.type = state.filter.type;
  if (show) q.show = 'true';
  return q;
}

function matches(k, text) {
  if (!text) return true;
  const t = text.toLowerCase();
  return [k.id, k.description, hostidText(k.usedBy), hostidText(k.for), STATES[k.state], TYPE_TEXT[k.type]]
    .some((v) => (v || '').toLowerCase().includes(t));
}

async function fillTable(view) {
  const { ctx, state } = view;
  const columns = [
    { title: 'ID', class: 'nowrap', value: (k) => h('code', {}, k.id) },
    { title: 'Type', class: 'nowrap', value: (k) => TYPE_TEXT[k.type] || k.type },
    { title: 'Key', class: 'nowrap', value: (k) => secretCell(view, k) },
    { title: 'Description', value: (k) => descriptionCell(view, k) },
    { title: 'State', class: 'nowrap', value: (k) => pill({ ACTIVE: 'ok', INACTIVE: 'warn', USED: 'neutral' }[k.state] || 'neutral',
      STATES[k.state] || k.state, { 'data-test': 'key-state' }) },
    { title: 'Created', class: 'nowrap', value: (k) => fmtTime(k.created) },
    { title: 'Used by (when)', value: (k) => usedBy(k) },
  ];
  if (view.can) columns.push({ title: 'Actions', class: 'col-actions', value: (k) => actions(view, k) });
  const table = pagedTable({
    name: 'keys',
    columns,
    fetch: async (page, pageSize) => {
      if (state.filter.text) {
        // The server filters by state and type only: read the keys that
        // pass those and page the text's matches here.
        view.lastPage = null;
        const all = await allKeys(ctx, state);
        return clientPage(all.filter((k) => matches(k, state.filter.text)))(page, pageSize);
      }
      view.lastPage = { page, pageSize };
      return ctx.api.get('/api/v1/keys', query(state, page, pageSize, false));
    },
    key: (k) => k.id,
    state: state.table,
  });
  await ready(table);
  mount(view.tableSlot, table);
}

// allKeys reads every key that passes the state and type filters, up to
// MAX_SCAN of them.
const MAX_SCAN = 20000;
async function allKeys(ctx, state, show) {
  const out = [];
  for (let page = 1; out.length < MAX_SCAN; page++) {
    const res = await ctx.api.get('/api/v1/keys', query(state, page, 1000, show));
    const items = (res && res.items) || [];
    out.push(...items);
    if (items.length < 1000 || out.length >= (res.total || 0)) break;
  }
  return out;
}

// reloadTable loads the keys' page again, keeping the table.
function reloadTable(view) {
  const table = view.tableSlot.firstChild;
  if (table && table.reload) return table.reload();
  return fillTable(view);
}

// usedBy shows the device the key last onboarded and when (and how many
// a mass key onboarded), or the device an invitation's key is for.
function usedBy(k) {
  const parts = [];
  if (k.usedBy && k.usedBy.value) parts.push(h('div', { 'data-test': 'key-used-by' }, hostidText(k.usedBy)));
  if (k.usedAt) parts.push(h('div', { class: 'muted nowrap', 'data-test': 'key-used-at' }, fmtTime(k.usedAt)));
  if (k.type === 'MASS' && k.uses) parts.push(h('div', { class: 'muted' }, `${k.uses} device${k.uses === 1 ? '' : 's'} in all`));
  if (k.for && k.for.value && !(k.usedBy && k.usedBy.value)) {
    parts.push(h('div', { class: 'muted' }, 'for ' + hostidText(k.for)));
  }
  return parts.length ? h('div', {}, ...parts) : '—';
}

// secretCell shows the masked secret, or the secret when the row was
// shown, with the Show / Hide button.
function secretCell(view, k) {
  const { state } = view;
  const text = h('code', { class: 'secret', 'data-test': 'key-secret' }, state.revealed[k.id] || k.secret);
  const btn = h('button', { type: 'button', class: 'btn btn-small btn-secondary', 'data-test': 'key-show',
    'aria-pressed': state.revealed[k.id] ? 'true' : 'false' }, state.revealed[k.id] ? 'Hide' : 'Show');
  btn.addEventListener('click', () => busy(btn, async () => {
    if (state.revealed[k.id]) {
      delete state.revealed[k.id];
      text.textContent = k.secret;
      btn.textContent = 'Show';
      btn.setAttribute('aria-pressed', 'false');
      return;
    }
    try {
      const secret = await revealSecret(view, k.id);
      state.revealed[k.id] = secret;
      text.textContent = secret;
      btn.textContent = 'Hide';
      btn.setAttribute('aria-pressed', 'true');
    } catch (err) {
      view.ctx.toast('Could not show the key: ' + messageOf(err), 'error');
    }
  }));
  return h('span', { class: 'secret-cell' }, text, ' ', btn);
}

// revealSecret asks for the page the key is on with the secrets shown and
// keeps the one asked for.
async function revealSecret(view, id) {
  const { ctx, state } = view;
  const p = view.lastPage;
  let k = null;
  if (p) {
    const res = await ctx.api.get('/api/v1/keys', query(state, p.page, p.pageSize, true));
    k = (res.items || []).find((x) => x.id === id);
  }
  if (!k) {
    // Text-filtered, or the list moved under us: look through it all.
    k = (await allKeys(ctx, { filter: { state: '', type: '' } }, true)).find((x) => x.id === id);
  }
  if (!k) throw new Error('the key is gone');
  return k.secret;
}

function descriptionCell(view, k) {
  const { state, ctx } = view;
  const cell = h('div', { class: 'desc-cell' });
  const showView = () => {
    cell.replaceChildren(h('span', { 'data-test': 'key-description-text' }, k.description || '—'));
  };
  const showEdit = () => {
    const inp = keep(state, 'edit:' + k.id, input({ type: 'text', maxlength: '256', name: 'description',
      'data-test': 'key-edit-description', 'data-write': '', 'aria-label': 'Description' }, { value: k.description }));
    const save = h('button', { type: 'submit', class: 'btn btn-small', 'data-write': '', 'data-test': 'key-edit-save' }, 'Save');
    const cancel = h('button', { type: 'button', class: 'btn btn-small btn-secondary', 'data-test': 'key-edit-cancel' }, 'Cancel');
    const form = h('form', { class: 'inline-form', novalidate: '' }, inp, save, cancel);
    cancel.addEventListener('click', () => {
      state.editing = null;
      forget(state, 'edit:' + k.id);
      showView();
    });
    form.addEventListener('submit', async (ev) => {
      ev.preventDefault();
      clearErrors(form);
      const problem = checkDescription(inp.value);
      if (problem) {
        fieldError(inp, problem, 'edit-description');
        return;
      }
      await busy(save, async () => {
        try {
          const got = await ctx.api.send('PUT', '/api/v1/keys/' + encodeURIComponent(k.id), { description: inp.value });
          k.description = got && typeof got.description === 'string' ? got.description : inp.value;
          state.editing = null;
          forget(state, 'edit:' + k.id);
          showView();
          ctx.toast('Description saved');
        } catch (err) {
          fieldError(inp, messageOf(err), 'edit-description');
        }
      });
    });
    cell.replaceChildren(form);
    inp.focus();
  };
  cell.edit = showEdit;
  if (view.can && state.editing === k.id) showEdit();
  else showView();
  return cell;
}

function actions(view, k) {
  const { ctx, state } = view;
  const box = h('div', { class: 'row-actions' });
  if (k.state !== 'USED') {
    const activate = k.state !== 'ACTIVE';
    const toggle = h('button', { type: 'button', class: 'btn btn-small', 'data-write': '', 'data-test': 'key-toggle' },
      activate ? 'Activate' : 'Deactivate');
    toggle.addEventListener('click', () => busy(toggle, async () => {
      try {
        await ctx.api.send('PUT', '/api/v1/keys/' + encodeURIComponent(k.id), { active: activate });
        ctx.toast(`Key ${k.id} ${activate ? 'activated' : 'deactivated'}`);
        reloadTable(view);
      } catch (err) {
        ctx.toast(messageOf(err), 'error');
      }
    }));
    box.append(toggle);
  }
  const edit = h('button', { type: 'button', class: 'btn btn-small', 'data-write': '', 'data-test': 'key-edit' }, 'Edit');
  edit.addEventListener('click', () => {
    state.editing = k.id;
    const row = edit.closest('tr');
    const cell = row && row.querySelector('.desc-cell');
    if (cell && cell.edit) cell.edit();
  });
  const del = h('button', { type: 'button', class: 'btn btn-small btn-danger', 'data-write': '', 'data-test': 'key-delete' }, 'Delete');
  del.addEventListener('click', () => {
    // eslint-disable-next-line no-alert
    if (!window.confirm(`Delete key ${k.id}${k.description ? ' (' + k.description + ')' : ''}? `
      + 'Onboarding with its secret will be refused.')) return;
    busy(del, async () => {
      try {
        await ctx.api.send('DELETE', '/api/v1/keys/' + encodeURIComponent(k.id));
        delete state.revealed[k.id];
        ctx.toast(`Key ${k.id} deleted`);
        reloadTable(view);
      } catch (err) {
        ctx.toast(messageOf(err), 'error');
      }
    });
  });
  box.append(edit, del);
  return box;
}

// ------------------------------------------------------------ creating

function checkDescription(d) {
  if (new TextEncoder().encode(d).length > 256) return 'At most 256 bytes.';
  if (/[\u0000-\u001f\u007f]/.test(d)) return 'No control characters.'; // eslint-disable-line no-control-regex
  return '';
}

function checkSecret(s) {
  if (s.length < 8 || s.length > 128) return 'A typed password has 8 to 128 characters.';
  if (!/^[\x20-\x7e]+$/.test(s)) return 'Only printable ASCII characters.';
  if (s.startsWith(' ') || s.endsWith(' ')) return 'No space at the start or the end.';
  return '';
}

function createSection(view) {
  const { ctx, state } = view;
  const type = keep(state, 'type', select({ name: 'type', 'data-test': 'key-type' }, TYPES, 'ONE_TIME'));
  const quantity = keep(state, 'count', input({ type: 'number', name: 'count', 'data-test': 'key-quantity',
    min: '1', max: String(MAX_COUNT), step: '1', inputmode: 'numeric' }, { value: '1' }));
  const password = keep(state, 'secret', input({ type: 'text', name: 'secret', 'data-test': 'key-password',
    autocomplete: 'off', maxlength: '128', placeholder: 'Empty: a random one' }));
  const description = keep(state, 'description', input({ type: 'text', name: 'description',
    'data-test': 'key-description', maxlength: '256', autocomplete: 'off' }));
  const submit = h('button', { type: 'submit', class: 'btn btn-primary', 'data-write': '', 'data-test': 'key-create' },
    'Create');
  const quantityField = field('Quantity', quantity, `1 to ${MAX_COUNT} keys, each with a random secret.`);
  const passwordField = field('Password', password,
    'Type the secret devices will use (8 to 128 characters), or leave it empty for a random one.');
  const sync = () => {
    const mass = type.value === 'MASS';
    quantityField.hidden = mass;
    passwordField.hidden = !mass;
  };
  type.addEventListener('change', sync);
  sync();

  const form = h('form', { class: 'form form-grid', 'data-test': 'key-create-form', novalidate: '' },
    field('Type', type), quantityField, passwordField, field('Description', description),
    h('div', { class: 'actions' }, submit));
  form.addEventListener('submit', async (ev) => {
    ev.preventDefault();
    clearErrors(form);
    const body = { type: type.value, description: description.value };
    let bad = false;
    if (type.value === 'ONE_TIME') {
      const n = quantity.value.trim();
      if (!/^\d+$/.test(n) || Number(n) < 1 || Number(n) > MAX_COUNT) {
        fieldError(quantity, `Enter a whole number from 1 to ${MAX_COUNT}.`, 'count');
        bad = true;
      }
      body.count = Number(n);
    } else if (password.value !== '') {
      const problem = checkSecret(password.value);
      if (problem) {
        fieldError(password, problem, 'secret');
        bad = true;
      }
      body.secret = password.value;
    }
    const dp = checkDescription(description.value);
    if (dp) {
      fieldError(description, dp, 'description');
      bad = true;
    }
    if (bad) return;
    await busy(submit, async () => {
      try {
        const res = await ctx.api.send('POST', '/api/v1/keys', body);
        state.created = (res && res.items) || [];
        state.createdTable = {};
        for (const k of ['type', 'count', 'secret', 'description']) forget(state, k);
        password.value = '';
        description.value = '';
        ctx.toast(`${state.created.length} key${state.created.length === 1 ? '' : 's'} created`);
        fillCreated(view);
        reloadTable(view);
      } catch (err) {
        const msg = messageOf(err);
        const code = codeOf(err);
        if (code === 'duplicate_key_secret') fieldError(password, msg, 'secret');
        else if ((code === 'invalid_key' || code === 'bad_json') && /count|made one at a time/i.test(msg)) fieldError(quantity, msg, 'count');
        else if (code === 'invalid_key' && /secret|password/i.test(msg)) fieldError(password, msg, 'secret');
        else if (code === 'invalid_key' && /description/i.test(msg)) fieldError(description, msg, 'description');
        else if ((code === 'invalid_key' || code === 'bad_json') && /type/i.test(msg)) fieldError(type, msg, 'type');
        else formError(form, msg);
      }
    });
  });
  return section('Create keys', { 'data-test': 'key-create-section' }, form);
}

// fillCreated shows the keys just made with their secrets: the one time
// they are shown unasked.
async function fillCreated(view) {
  const { ctx, state } = view;
  const created = state.created;
  if (!created || created.length === 0) {
    mount(view.createdSlot);
    return;
  }
  if (!state.createdTable) state.createdTable = {};
  const table = pagedTable({
    name: 'created-keys',
    columns: [
      { title: 'ID', value: (k) => h('code', {}, k.id) },
      { title: 'Type', value: (k) => TYPE_TEXT[k.type] || k.type },
      { title: 'Key', value: (k) => h('code', { class: 'secret', 'data-test': 'key-secret' }, k.secret) },
      { title: 'Description', value: (k) => k.description || '—' },
      { title: '', value: (k) => copyButton(k.secret, 'key-copy', ctx) },
    ],
    fetch: clientPage(created),
    key: (k) => k.id,
    state: state.createdTable,
  });
  const all = () => created.map((k) => `${k.id}\t${k.secret}`).join('\n') + '\n';
  const dismiss = h('button', { type: 'button', class: 'btn', 'data-test': 'key-created-dismiss' }, 'Done');
  dismiss.addEventListener('click', () => {
    state.created = null;
    mount(view.createdSlot);
  });
  await ready(table);
  mount(view.createdSlot, section('New keys', { 'data-test': 'key-created', class: 'highlight' },
    note('Copy the secrets now: they are shown unasked only this once (use Show in the list later).'),
    table,
    h('div', { class: 'actions' }, copyButton(all, 'key-created-copy', ctx, 'Copy all'), dismiss)));
}
