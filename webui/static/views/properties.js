// Properties: every policy setting with the value in force, grouped as the
// administrators of the established license servers know them (general,
// secure API, back-office sync, license generation, cluster, capability
// polling, logging). ADMIN edits a property and saves it on its row; a
// property the producer's rights lock is read-only and says so.
//
// Test hooks: table[data-test=table-properties], a row
// tr[data-test=row][data-key=<name>] per property, its control
// [data-test=prop-<name>], its Save button [data-test=prop-save-<name>]
// (data-write, ADMIN only, not for locked ones), the lock note
// [data-test=prop-locked-<name>], the error [data-test=error-<name>].
// What the General group says of the node (GET /api/v1/server) is in info
// rows: [data-test=info-version], info-build, info-node, info-cluster-id,
// info-status, info-fingerprint and info-hostid (the hostid in use). The
// machine's hostids are a table of their own just above,
// [data-test=info-hostids] table[data-test=table-hostids-server], rows
// keyed TYPE/VALUE, the one in use with [data-test=hostid-in-use]: a table
// inside the properties table would add its rows to the properties'.

import { h, fieldError, clearErrors } from '../dom.js';
import { formError } from '../form.js';
import {
  button, codeOf, fmtSeconds, forget, keep, messageOf, mount, note, parseDuration, pill, section, select, stillShown,
} from './widgets.js';

// The groups in the order they are shown. A property falls in the first
// group that matches its name.
const GROUPS = [
  { id: 'general', title: 'General', match: (n) => n.startsWith('server.') },
  { id: 'security', title: 'Secure API', match: (n) => n.startsWith('security.') },
  { id: 'backoffice', title: 'Back-office sync', match: (n) => n.startsWith('backoffice.') && !isPolling(n) },
  { id: 'licensing', title: 'License generation', match: (n) => n.startsWith('licensing.') },
  { id: 'cluster', title: 'Cluster', match: (n) => n.startsWith('cluster.') || n.startsWith('raft.') },
  { id: 'polling', title: 'Capability polling', match: (n) => isPolling(n) },
  { id: 'logging', title: 'Logging', match: (n) => n.startsWith('logging.') },
  { id: 'other', title: 'Other', match: () => true },
];

// isPolling tells the back office's polling settings (how often a
// capability request goes out, and the retry after a failure) from the
// rest of the back-office ones.
function isPolling(name) {
  return name.startsWith('capability.') || name.startsWith('polling.') ||
    (name.startsWith('backoffice.') && /(poll|retry)/i.test(name));
}

function groupOf(name) {
  return GROUPS.find((g) => g.match(name)).id;
}

// validate checks value against the property's definition as the server
// will, and returns what is wrong ('' when nothing).
export function validate(p, value) {
  switch (p.kind) {
    case 'bool':
      return value === 'true' || value === 'false' ? '' : 'Choose true or false.';
    case 'int': {
      if (!/^[-+]?\d+$/.test(value.trim())) return 'Enter a whole number.';
      const n = Number(value);
      if (p.min !== undefined && n < p.min) return `At least ${p.min}.`;
      if (p.max !== undefined && n > p.max) return `At most ${p.max}.`;
      return '';
    }
    case 'duration': {
      const s = parseDuration(value);
      if (Number.isNaN(s)) return 'Enter a duration such as 90m, 1h30m or 168h.';
      if (p.min !== undefined && s < p.min) return `At least ${fmtSeconds(p.min)}.`;
      if (p.max !== undefined && s > p.max) return `At most ${fmtSeconds(p.max)}.`;
      return '';
    }
    case 'enum':
      return (p.values || []).includes(value) ? '' : `Choose one of ${(p.values || []).join(', ')}.`;
    default:
      if (new TextEncoder().encode(value).length > 256) return 'At most 256 bytes.';
      // eslint-disable-next-line no-control-regex
      if (/[\u0000-\u001f\u007f]/.test(value)) return 'No control characters.';
      return '';
  }
}

function rangeText(p) {
  if (p.kind === 'int' && (p.min !== undefined || p.max !== undefined)) return `${p.min ?? ''} to ${p.max ?? ''}`;
  if (p.kind === 'duration' && (p.min !== undefined || p.max !== undefined)) {
    return `${p.min !== undefined ? fmtSeconds(p.min) : ''} to ${p.max !== undefined ? fmtSeconds(p.max) : ''}`;
  }
  if (p.kind === 'enum') return (p.values || []).join(', ');
  return '';
}

// control builds the editor of a property.
function control(p, editable) {
  const test = 'prop-' + p.name;
  const attrs = { 'data-test': test, name: p.name, 'aria-label': p.name, class: 'prop-input' };
  let el;
  if (p.kind === 'bool') {
    el = select(attrs, [['true', 'true'], ['false', 'false']], p.value);
  } else if (p.kind === 'enum') {
    el = select(attrs, (p.values || []).map((v) => [v, v]), p.value);
  } else {
    const a = Object.assign({ type: p.kind === 'int' ? 'number' : 'text', autocomplete: 'off' }, attrs);
    if (p.kind === 'int') {
      a.step = '1';
      if (p.min !== undefined) a.min = String(p.min);
      if (p.max !== undefined) a.max = String(p.max);
    }
    if (p.kind === 'duration') a.placeholder = 'e.g. 90m, 1h30m, 168h';
    if (p.kind === 'string') a.maxlength = '256';
    el = h('input', a);
    el.value = p.value;
  }
  el.disabled = !editable;
  return el;
}

export default {
  id: 'properties',
  title: 'Properties',
  roles: [],
  topics: ['properties', 'cluster'],
  keep: true,

  async render(root, ctx) {
    const state = ctx.state;
    const admin = ctx.can('ADMIN');
    const [list, server, cluster] = await Promise.all([
      ctx.api.get('/api/v1/properties'),
      serverInfo(ctx),
      ctx.api.get('/api/v1/cluster').catch(() => null),
    ]);
    const props = (list && list.items) || [];

    const tbodies = [];
    for (const g of GROUPS) {
      const mine = props.filter((p) => groupOf(p.name) === g.id);
      const info = infoRows(g.id, server, cluster);
      if (mine.length === 0 && info.length === 0) continue;
      const body = h('tbody', { 'data-group': g.id },
        h('tr', { class: 'group-row' }, h('th', { colspan: '4', scope: 'colgroup' }, g.title)),
        ...info);
      for (const p of mine) body.append(propertyRow(root, ctx, state, p, admin));
      tbodies.push(body);
    }

    const table = h('table', { class: 'table properties', 'data-test': 'table-properties' },
      h('thead', {}, h('tr', {},
        h('th', { scope: 'col' }, 'Property'),
        h('th', { scope: 'col' }, 'Value'),
        h('th', { scope: 'col' }, 'Default / range'),
        h('th', { scope: 'col' }, admin ? 'Save' : ''))),
      ...tbodies);

    mount(root,
      note(admin
        ? 'Change a value and save it on its row. Properties the producer locked cannot be changed.'
        : 'Only an administrator (ADMIN) can change properties.'),
      server && server.hostIds ? hostidsSection(server.hostIds) : null,
      h('div', { class: 'table-wrap' }, table),
      h('div', { class: 'table-foot' }, h('span', { 'data-test': 'total' }, String(props.length)), ' properties'));
  },
};

// serverInfo reads what the General group shows of this node: GET
// /api/v1/server, or what health tells when that cannot be read (no
// leader to read the cluster ID from); null when neither answers.
async function serverInfo(ctx) {
  try {
    return await ctx.api.get('/api/v1/server');
  } catch (e) {
    const health = await ctx.api.get('/api/v1/health').catch(() => null);
    if (!health) return null;
    return {
      version: health.version, node: health.node, fingerprint: health.fingerprint, leader: health.leader,
      status: health.status === 'ok' ? (health.leader ? 'running (leader)' : 'running (follower)') : health.status,
    };
  }
}

// hostidsSection lists the hostids of the machine, the one in use marked.
function hostidsSection(hostIds) {
  const rows = hostIds.length === 0
    ? [h('tr', { class: 'empty' }, h('td', { colspan: '3', 'data-test': 'empty' }, 'No hostids could be read on this machine.'))]
    : hostIds.map((x) => h('tr', { 'data-test': 'row', 'data-key': `${x.type}/${x.value}` },
      h('td', { 'data-col': 'type' }, x.type),
      h('td', { 'data-col': 'value' }, h('code', {}, x.value)),
      h('td', { 'data-col': 'inUse' }, x.inUse ? pill('ok', 'in use', { 'data-test': 'hostid-in-use' }) : '')));
  return section('Host IDs of this server', { 'data-test': 'info-hostids' },
    note('The hostids of the machine this node runs on, in order of preference. The server is known by its '
      + 'licensing ID; the hostid in use is the one a license bound to this machine would name.'),
    h('div', { class: 'table-wrap' },
      h('table', { class: 'data', 'data-test': 'table-hostids-server' },
        h('thead', {}, h('tr', {},
          h('th', { scope: 'col' }, 'Type'),
          h('th', { scope: 'col' }, 'Value'),
          h('th', { scope: 'col' }, 'In use'))),
        h('tbody', {}, ...rows))),
    h('div', { class: 'table-foot' }, h('span', { 'data-test': 'hostids-total' }, String(hostIds.length)), ' hostids'));
}

// statusText shows the API's status ("running (leader)") as a label.
function statusText(status) {
  const s = String(status || '');
  return s ? s[0].toUpperCase() + s.slice(1) : '';
}

// infoRows shows what the General and Cluster groups say of the node
// beyond its properties: version, build, node and cluster IDs, status,
// fingerprint and the hostid in use; leader and health.
function infoRows(group, server, cluster) {
  const rows = [];
  const row = (label, value, test) => rows.push(h('tr', { class: 'info-row' },
    h('th', { scope: 'row' }, label),
    h('td', { colspan: '3', 'data-test': test }, value === undefined || value === null || value === '' ? '—' : String(value))));
  if (group === 'general' && server) {
    const inUse = (server.hostIds || []).find((x) => x.inUse);
    row('Version', server.version, 'info-version');
    row('Build', server.build, 'info-build');
    row('Node ID', server.node, 'info-node');
    row('Cluster ID', server.clusterId === '' ? 'None (a single node)' : server.clusterId, 'info-cluster-id');
    row('Status', statusText(server.status), 'info-status');
    row('Licensing ID fingerprint', server.fingerprint, 'info-fingerprint');
    if (server.hostIds) row('Host ID in use', inUse ? `${inUse.value} (${inUse.type})` : '', 'info-hostid');
  }
  if (group === 'cluster') {
    if (cluster) {
      row('Leader', cluster.leader, 'info-leader');
      row('Members', `${(cluster.members || []).length} (${cluster.voters} voters, quorum ${cluster.quorum})`, 'info-members');
      row('Health', cluster.healthy ? 'Healthy' : 'Not healthy', 'info-health');
    } else {
      row('Cluster', 'Single node', 'info-cluster');
    }
  }
  return rows;
}

function propertyRow(root, ctx, state, p, admin) {
  const editable = admin && !p.locked;
  const draftKey = 'prop:' + p.name;
  if (state.drafts && state.drafts[draftKey] === p.value) delete state.drafts[draftKey];
  const el = control(p, editable);
  if (editable) keep(state, draftKey, el);

  const nameCell = h('td', { class: 'prop-cell' },
    h('code', { class: 'prop-name' }, p.name),
    p.description ? h('div', { class: 'prop-desc' }, p.description) : null,
    p.locked ? h('div', { class: 'lock-note', 'data-test': 'prop-locked-' + p.name },
      '\u{1F512} Locked by the producer\'s rights; it cannot be changed here.') : null);

  const valueCell = h('td', { class: 'prop-value' }, el);
  const defaultCell = h('td', { class: 'prop-default' },
    h('div', {}, p.default === '' ? '(empty)' : p.default),
    rangeText(p) ? h('div', { class: 'hint' }, rangeText(p)) : null);

  let actions = h('td', {});
  if (editable) {
    const save = button({ class: 'btn btn-small', 'data-write': '', 'data-test': 'prop-save-' + p.name }, 'Save',
      () => saveProperty(root, ctx, state, p, el, save));
    actions = h('td', {}, save);
    if (el.tagName === 'INPUT') {
      el.addEventListener('keydown', (ev) => {
        if (ev.key === 'Enter') { ev.preventDefault(); save.click(); }
      });
    }
  }
  return h('tr', { 'data-test': 'row', 'data-key': p.name, class: p.locked ? 'locked' : '' },
    nameCell, valueCell, defaultCell, actions);
}

async function saveProperty(root, ctx, state, p, el, btn) {
  const cell = el.parentNode;
  clearErrors(cell);
  const value = el.tagName === 'INPUT' && p.kind !== 'string' ? el.value.trim() : el.value;
  const problem = validate(p, value);
  if (problem) {
    fieldError(el, problem, p.name);
    el.focus();
    return;
  }
  btn.disabled = true;
  try {
    const got = await ctx.api.send('PUT', '/api/v1/properties/' + encodeURIComponent(p.name), { value });
    forget(state, 'prop:' + p.name);
    const cur = current(root, p.name) || el;
    if (got && typeof got.value === 'string') {
      cur.value = got.value;
      p.value = got.value;
    }
    ctx.toast(`${p.name} saved`);
  } catch (err) {
    const cur = current(root, p.name) || el;
    if (cur.parentNode) {
      clearErrors(cur.parentNode);
      fieldError(cur, messageOf(err), p.name);
    } else if (stillShown(root, 'properties')) {
      formError(root, messageOf(err));
    }
    if (codeOf(err) === 'property_locked') ctx.toast(`${p.name} is locked by the producer`, 'error');
  } finally {
    btn.disabled = false;
  }
}

function current(root, name) {
  return root.querySelector('[data-test="prop-' + CSS.escape(name) + '"]');
}
