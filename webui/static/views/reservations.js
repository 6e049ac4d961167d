// Reservations: every reservation entry with whether it can be satisfied,
// the groups (edit, delete), a form that collects entries and submits them
// as one group, and import/export in the JSON form of core.ParseReservations.
//
// POST /api/v1/reservations replaces a group of the same name whole, so
// submitting a name that exists replaces that group: the form says so, and
// "Edit" loads a group's entries so that it can be changed and resubmitted.

import { h, clear, track, fieldError, clearErrors } from '../dom.js';
import { pagedTable, localFetch } from '../table.js';
import { pill } from '../format.js';
import { field, validate, formError } from '../form.js';

export const HOSTID_TYPES = ['ETHERNET', 'UUID', 'SERIAL', 'STRING', 'USER'];
const MAX_COUNT = 1000000000;
const VERSION_PATTERN = '[0-9]+(\\.[0-9]+)*';

// groupJSON builds a group in the import form from pending entries,
// gathering the entries of one hostid into one reservation.
export function groupJSON(name, pending) {
  const byHost = new Map();
  for (const e of pending) {
    const k = `${e.type}\u0000${e.device}`;
    if (!byHost.has(k)) byHost.set(k, { hostId: { value: e.device, type: e.type }, reservationEntries: [] });
    byHost.get(k).reservationEntries.push({ featureName: e.feature, featureVersion: e.version, featureCount: e.count });
  }
  return { name, reservations: [...byHost.values()] };
}

function entriesOf(group) {
  const out = [];
  for (const r of group.reservations || []) {
    for (const e of r.reservationEntries || []) {
      out.push({ device: r.hostId.value, type: r.hostId.type, feature: e.featureName, version: e.featureVersion, count: e.featureCount });
    }
  }
  return out;
}

function addForm(ctx, groups) {
  const { api, state } = ctx;
  state.pending = state.pending || [];
  state.draft = state.draft || { group: '', device: '', idtype: 'ETHERNET', feature: '', version: '', count: '1' };
  const d = state.draft;
  const remember = (ev) => {
    const el = ev.target;
    if (el.name && el.name in d) d[el.name] = el.value;
  };

  const group = h('input', { name: 'group', 'data-test': 'res-group', required: true, maxlength: 128, autocomplete: 'off', value: d.group });
  const device = h('input', { name: 'device', 'data-test': 'res-device', autocomplete: 'off', spellcheck: 'false', placeholder: '00:11:22:33:44:55', value: d.device });
  const idtype = h('select', { name: 'idtype', 'data-test': 'res-idtype', value: d.idtype },
    HOSTID_TYPES.map((t) => h('option', { value: t }, t)));
  const feature = h('input', { name: 'feature', 'data-test': 'res-feature', autocomplete: 'off', spellcheck: 'false', value: d.feature });
  const version = h('input', {
    name: 'version', 'data-test': 'res-version', autocomplete: 'off', placeholder: '1.0', value: d.version,
    pattern: VERSION_PATTERN, 'data-pattern-message': 'Enter a dotted numeric version such as 1.0.',
  });
  const count = h('input', { name: 'count', 'data-test': 'res-count', type: 'number', min: 1, max: MAX_COUNT, step: 1, value: d.count });
  const entryFields = [device, feature, version, count];
  const existsNote = h('p', { class: 'hint', 'data-test': 'res-replaces', hidden: true });
  const pendingList = h('ul', { class: 'pending', 'data-test': 'pending', 'aria-live': 'polite' });
  const pendingEmpty = h('p', { class: 'muted', 'data-test': 'pending-empty' }, 'No entries yet: fill in an entry and choose "Add entry".');

  function noteExisting() {
    const g = groups.find((x) => x.name === group.value.trim());
    existsNote.hidden = !g;
    existsNote.textContent = g ? `Group "${g.name}" exists: submitting replaces it whole (${entriesOf(g).length} entries now).` : '';
  }

  function drawPending() {
    clear(pendingList);
    pendingEmpty.hidden = state.pending.length > 0;
    pendingList.hidden = state.pending.length === 0;
    state.pending.forEach((e, i) => {
      pendingList.appendChild(h('li', { 'data-test': 'pending-entry', 'data-index': i },
        h('span', {}, `${e.device} (${e.type}): ${e.feature} ${e.version} × ${e.count}`),
        h('button', {
          type: 'button', class: 'btn btn-small btn-secondary', 'data-test': 'pending-remove',
          'aria-label': `Remove ${e.feature} ${e.version} for ${e.device}`,
          onclick: () => {
            state.pending.splice(i, 1);
            drawPending();
          },
        }, 'Remove')));
    });
  }

  // entryFilled: an entry was typed but not added (the device fields stay
  // filled after "Add entry" on purpose, so they do not count).
  function entryFilled() {
    return feature.value.trim() !== '' || version.value.trim() !== '';
  }

  // addEntry checks the entry fields and moves them to the pending list.
  function addEntry() {
    for (const el of entryFields) fieldError(el, '');
    for (const el of [device, feature, version]) el.required = true;
    count.required = true;
    const ok = validate(form, entryFields);
    for (const el of entryFields) el.required = false;
    if (!ok) return false;
    const e = {
      device: device.value.trim(),
      type: idtype.value,
      feature: feature.value.trim(),
      version: version.value.trim(),
      count: Number(count.value),
    };
    if (state.pending.some((p) => p.device === e.device && p.type === e.type && p.feature === e.feature && p.version === e.version)) {
      fieldError(feature, `${e.feature} ${e.version} is already pending for this device.`);
      feature.focus();
      return false;
    }
    state.pending.push(e);
    feature.value = '';
    version.value = '';
    count.value = '1';
    Object.assign(d, { feature: '', version: '', count: '1' });
    drawPending();
    feature.focus();
    return true;
  }

  const submit = h('button', { type: 'submit', class: 'btn btn-primary', 'data-write': '', 'data-test': 'res-submit' }, 'Submit group');
  const form = h('form', { class: 'res-form', novalidate: true, oninput: remember, onchange: remember },
    h('div', { class: 'form-error', 'data-test': 'form-error', role: 'alert', hidden: true }),
    h('div', { class: 'form-row' }, field('Group name', group)),
    existsNote,
    h('fieldset', {},
      h('legend', {}, 'Entry'),
      h('div', { class: 'form-grid' },
        field('Device ID', device),
        field('ID type', idtype),
        field('Feature', feature),
        field('Version', version),
        field('Count', count)),
      h('div', { class: 'actions' },
        h('button', { type: 'button', class: 'btn', 'data-write': '', 'data-test': 'res-add-entry', onclick: addEntry }, 'Add entry'))),
    h('h3', {}, 'Pending entries'),
    pendingEmpty,
    pendingList,
    h('div', { class: 'actions' },
      submit,
      h('button', {
        type: 'button', class: 'btn btn-secondary', 'data-test': 'res-clear',
        onclick: () => {
          state.pending = [];
          group.value = '';
          d.group = '';
          clearErrors(form);
          noteExisting();
          drawPending();
        },
      }, 'Clear')));

  group.addEventListener('input', noteExisting);

  form.addEventListener('submit', async (ev) => {
    ev.preventDefault();
    if (form.dataset.busy) return;
    clearErrors(form);
    if (!validate(form, [group])) return;
    if (entryFilled() && !addEntry()) return;
    if (state.pending.length === 0) {
      formError(form, 'Add at least one entry to the group.');
      device.focus();
      return;
    }
    const name = group.value.trim();
    form.dataset.busy = '1';
    submit.disabled = true;
    try {
      await track(api.send('POST', '/api/v1/reservations', [groupJSON(name, state.pending)]));
      ctx.toast(`Reservation group "${name}" saved.`);
      state.pending = [];
      state.draft = null;
      ctx.rerender();
    } catch (e) {
      formError(form, e.message);
    } finally {
      delete form.dataset.busy;
      submit.disabled = false;
    }
  });

  // edit loads a group into the form.
  form.edit = (g) => {
    state.pending = entriesOf(g);
    group.value = g.name;
    d.group = g.name;
    clearErrors(form);
    noteExisting();
    drawPending();
    form.scrollIntoView({ block: 'start' });
    group.focus();
  };

  noteExisting();
  drawPending();
  return form;
}

export default {
  id: 'reservations',
  title: 'Reservations',
  roles: [],
  topics: ['reservations'],
  keep: true,

  async render(root, ctx) {
    const { api, state } = ctx;
    const writable = ctx.can('RESERVATIONS');
    const groups = await api.get('/api/v1/reservations/export');
    const list = Array.isArray(groups) ? groups : [];

    const table = pagedTable({
      name: 'reservations',
      state,
      columns: [
        { title: 'Status', key: 'status', value: (r) => r.satisfiable ? pill('ok', 'satisfiable', { 'data-test': 'res-status' }) : pill('bad', 'not satisfiable', { 'data-test': 'res-status' }) },
        { title: 'Device ID', key: 'device', value: (r) => r.hostId ? r.hostId.value : '' },
        { title: 'ID type', key: 'type', value: (r) => r.hostId ? r.hostId.type : '' },
        { title: 'Group', key: 'group', value: (r) => r.group },
        { title: 'Feature', key: 'feature', value: (r) => r.feature },
        { title: 'Version', key: 'version', value: (r) => r.version },
        { title: 'Count', key: 'count', class: 'num', value: (r) => String(r.count ?? 0) },
      ],
      key: (r) => r.group,
      rowAttrs: (r) => ({
        'data-group': r.group,
        'data-device': r.hostId ? `${r.hostId.type}/${r.hostId.value}` : undefined,
        'data-satisfiable': r.satisfiable ? 'true' : 'false',
      }),
      fetch: (page, pageSize) => api.get('/api/v1/reservations', { page, pageSize }),
    });

    const form = writable ? addForm(ctx, list) : null;

    const groupColumns = [
      { title: 'Group', key: 'name', value: (g) => g.name },
      { title: 'Devices', key: 'devices', class: 'num', value: (g) => String((g.reservations || []).length) },
      { title: 'Entries', key: 'entries', class: 'num', value: (g) => String(entriesOf(g).length) },
    ];
    if (writable) {
      groupColumns.push({
        title: 'Actions', key: 'actions', class: 'col-actions', value: (g) => h('span', { class: 'row-actions' },
          h('button', { type: 'button', class: 'btn btn-small btn-secondary', 'data-write': '', 'data-test': 'edit-group', 'data-group': g.name, onclick: () => form.edit(g) }, 'Edit'),
          h('button', {
            type: 'button', class: 'btn btn-small btn-danger', 'data-write': '', 'data-test': 'delete-group', 'data-group': g.name,
            onclick: async (ev) => {
              if (!confirm(`Delete the reservation group "${g.name}"?`)) return;
              ev.currentTarget.disabled = true;
              try {
                await track(api.send('DELETE', `/api/v1/reservations/${encodeURIComponent(g.name)}`));
                ctx.toast(`Reservation group "${g.name}" deleted.`);
                ctx.rerender();
              } catch (e) {
                ctx.toast(e.message, 'error');
                ctx.rerender();
              }
            },
          }, 'Delete')),
      });
    }
    const groupTable = pagedTable({
      name: 'groups',
      state,
      columns: groupColumns,
      key: (g) => g.name,
      rowAttrs: (g) => ({ 'data-group': g.name }),
      fetch: localFetch(list),
    });
    await Promise.all([table.loaded, groupTable.loaded]);

    const importError = h('div', { class: 'form-error', 'data-test': 'import-error', role: 'alert', hidden: true });
    const tools = [
      h('button', {
        type: 'button', class: 'btn btn-secondary', 'data-test': 'res-export',
        onclick: () => track(api.download('/api/v1/reservations/export', 'reservations.json')).catch((e) => ctx.toast(e.message, 'error')),
      }, 'Export'),
    ];
    if (writable) {
      const file = h('input', {
        type: 'file', id: 'res-import', accept: '.json,application/json', class: 'visually-hidden',
        'data-write': '', 'data-test': 'res-import',
        onchange: async () => {
          const f = file.files && file.files[0];
          if (!f) return;
          importError.hidden = true;
          try {
            const text = await f.text();
            await track(api.send('POST', '/api/v1/reservations', text, 'application/json'));
            ctx.toast(`Imported reservations from ${f.name}.`);
            ctx.rerender();
          } catch (e) {
            importError.textContent = `Import of ${f.name} refused: ${e.message}`;
            importError.hidden = false;
          } finally {
            file.value = '';
          }
        },
      });
      tools.push(h('label', { for: 'res-import', class: 'btn btn-secondary file-button', 'data-write': '' }, 'Import…'), file);
    }

    root.replaceChildren(
      h('div', { class: 'toolbar' }, tools),
      importError,
      h('section', { class: 'panel' }, table),
      h('div', { class: writable ? 'columns' : '' },
        h('section', { class: 'panel' }, h('h2', {}, 'Groups'), groupTable),
        form ? h('section', { class: 'panel' },
          h('h2', {}, 'Add group'),
          h('p', { class: 'hint' }, 'A group is replaced whole when it is submitted or imported again.'),
          form) : null));
  },
};
