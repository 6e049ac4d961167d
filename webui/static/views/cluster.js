// Cluster: the members of the raft configuration, the leader and the
// cluster's health; for ADMIN, join tokens (a token admits one new node,
// once, before it expires) and removing a member.
//
// Test hooks: [data-test=cluster-single] (the node is not a cluster
// member), [data-test=cluster-summary] with [data-test=cluster-leader],
// [data-test=cluster-health], [data-test=cluster-node],
// [data-test=cluster-voters]; table[data-test=table-members] with rows
// keyed by node ID and [data-test=member-remove] in each; join tokens:
// table[data-test=table-join-tokens] (rows keyed by token ID) with
// [data-test=token-delete], the form [data-test=token-description],
// [data-test=token-ttl] (hours), [data-test=token-create], the new token
// [data-test=token-new] with [data-test=token-value],
// [data-test=token-copy], [data-test=token-dismiss]. Errors:
// [data-test=error-description|ttlSeconds], [data-test=form-error].

import { h, fieldError, clearErrors } from '../dom.js';
import { formError } from '../form.js';
import { pagedTable } from '../table.js';
import {
  busy, clientPage, codeOf, copyButton, dl, field, fmtTime, forget, input, keep, messageOf, mount, note, pill, ready, refreshView, section,
} from './widgets.js';

const MAX_TTL_HOURS = 168;

const clusterView = {
  id: 'cluster',
  title: 'Cluster',
  roles: [],
  topics: ['cluster', 'licensing-id'],
  keep: true,

  async render(root, ctx) {
    const state = ctx.state;
    const admin = ctx.can('ADMIN');
    let cluster;
    try {
      cluster = await ctx.api.get('/api/v1/cluster');
    } catch (err) {
      if (err.status === 503 && codeOf(err) === 'not_available') {
        mount(root,
          section('Membership', {},
            h('p', { class: 'notice', 'data-test': 'cluster-single' },
              'This node is not a cluster member (single node).'),
            note('Start tallyd with --bootstrap-expect or --join to run it as a member of a cluster.')));
        return;
      }
      throw err;
    }
    const [ids, tokens] = await Promise.all([
      ctx.api.get('/api/v1/licensing-id').catch(() => null),
      admin ? ctx.api.get('/api/v1/cluster/tokens').catch((err) => ({ error: err })) : null,
    ]);
    const view = { root, ctx, state, admin, cluster, ids, tokens, tables: [] };

    const parts = [summary(cluster), membersSection(view), admin ? tokensSection(view) : null];
    await ready(...view.tables);
    mount(root, ...parts);
  },
};

export default clusterView;

function summary(c) {
  const members = c.members || [];
  const running = members.filter((m) => m.reachable).length;
  return section('Summary', { 'data-test': 'cluster-summary' }, dl([
    ['Leader', c.leader || 'none', 'cluster-leader'],
    ['Health', pill(c.healthy ? 'ok' : 'bad', c.healthy ? 'Healthy' : 'Not healthy'), 'cluster-health'],
    ['Members', `${members.length} (${running} running)`, 'cluster-members'],
    ['Voters', `${c.voters} (quorum ${c.quorum})`, 'cluster-voters'],
    ['Answered by', c.node, 'cluster-node'],
  ]));
}

// role names the member's part: leader, follower or non-voter.
function role(m) {
  if (!m.voter) return 'non-voter';
  switch (m.state) {
    case 'Leader': return 'leader';
    case 'Follower': return 'follower';
    case 'Candidate': return 'candidate';
    case 'Shutdown': return 'shut down';
    default: return m.reachable ? 'follower' : 'unknown';
  }
}

// idStatus finds the member's licensing ID status in the licensing ID
// answer, which names servers by host name (or node ID).
function idStatus(view, m) {
  const servers = (view.ids && view.ids.servers) || [];
  const host = (m.info && m.info.host) || m.id;
  const s = servers.find((x) => x.host === host) || servers.find((x) => x.host === m.id);
  if (s) return s.idStatus;
  if (!m.reachable) return 'not in sync';
  const main = view.ids && view.ids.fingerprint;
  if (main && m.info) {
    if (m.info.localLicensingId === main) return 'Main licensing ID';
    if (m.info.signingLicensingId === main) return 'in sync';
    return 'not in sync';
  }
  return '';
}

function membersSection(view) {
  const { ctx, state, admin, cluster } = view;
  if (!state.members) state.members = {};
  const columns = [
    { title: 'Node ID', value: (m) => h('span', {}, m.id,
      m.id === cluster.node ? h('span', { class: 'muted' }, ' (this node)') : null) },
    { title: 'Address', value: (m) => m.address },
    { title: 'Role', value: (m) => pill(role(m) === 'leader' ? 'ok' : 'neutral', role(m), { 'data-test': 'member-role' }) },
    { title: 'State', value: (m) => pill(m.reachable ? 'ok' : 'bad', m.reachable ? 'Running' : 'Not running',
      { 'data-test': 'member-state', title: m.error || '' }) },
    { title: 'Last contact', value: (m) => m.state === 'Leader' ? '—' : fmtTime(m.lastContact) },
    { title: 'Applied index', value: (m) => String(m.appliedIndex ?? '') },
    { title: 'Licensing ID status', value: (m) => idStatus(view, m) },
  ];
  if (admin) columns.push({ title: '', value: (m) => removeButton(view, m) });
  const table = pagedTable({
    name: 'members', columns, fetch: clientPage(cluster.members || []), key: (m) => m.id, state: state.members,
  });
  view.tables.push(table);
  const unreachable = (cluster.members || []).filter((m) => !m.reachable && m.error);
  return section('Members', { 'data-test': 'cluster-members-section' }, table,
    unreachable.length ? h('ul', { class: 'notes' },
      ...unreachable.map((m) => h('li', {}, `${m.id}: ${m.error}`))) : null);
}

function removeButton(view, m) {
  const { ctx } = view;
  const btn = h('button', { type: 'button', class: 'btn btn-small btn-danger', 'data-write': '', 'data-test': 'member-remove' },
    'Remove');
  btn.addEventListener('click', () => {
    // eslint-disable-next-line no-alert
    if (!window.confirm(`Remove ${m.id} (${m.address}) from the cluster? It stops serving as a member until it joins again.`)) return;
    busy(btn, async () => {
      try {
        await ctx.api.send('DELETE', '/api/v1/cluster/members/' + encodeURIComponent(m.id));
        ctx.toast(`${m.id} removed from the cluster`);
        await refreshView(clusterView, view.root, ctx);
      } catch (err) {
        ctx.toast(messageOf(err), 'error');
      }
    });
  });
  return btn;
}

// ------------------------------------------------------------ join tokens

function tokenStatus(t) {
  if (t.usedBy) return `used by ${t.usedBy}${t.usedAt ? ' at ' + fmtTime(t.usedAt) : ''}`;
  if (t.expired || (t.expires && Date.parse(t.expires) <= Date.now())) return 'expired';
  return 'unused';
}

function tokensSection(view) {
  const { ctx, state, tokens } = view;
  const parts = [note('A join token admits one new node, once, before it expires: run '
    + 'tallyd --join HOST:8443 --join-token TOKEN on the new node.')];

  if (state.newToken) parts.push(newTokenBox(view));
  parts.push(createForm(view));

  if (tokens && tokens.error) {
    parts.push(h('p', { class: 'notice notice-bad', role: 'alert' }, messageOf(tokens.error)));
  } else {
    if (!state.tokens) state.tokens = {};
    const table = pagedTable({
      name: 'join-tokens',
      columns: [
        { title: 'ID', value: (t) => h('code', {}, t.id) },
        { title: 'Description', value: (t) => t.description || '—' },
        { title: 'Created', value: (t) => fmtTime(t.created) },
        { title: 'Expires', value: (t) => fmtTime(t.expires) },
        { title: 'Status', value: (t) => h('span', { 'data-test': 'token-status' }, tokenStatus(t)) },
        { title: '', value: (t) => deleteTokenButton(view, t) },
      ],
      fetch: clientPage((tokens && tokens.items) || []),
      key: (t) => t.id,
      state: state.tokens,
    });
    view.tables.push(table);
    parts.push(table);
  }
  return section('Join tokens', { 'data-test': 'join-tokens' }, ...parts);
}

function newTokenBox(view) {
  const { ctx, state } = view;
  const t = state.newToken;
  const dismiss = h('button', { type: 'button', class: 'btn', 'data-test': 'token-dismiss' }, 'Done');
  dismiss.addEventListener('click', () => {
    state.newToken = null;
    const box = dismiss.closest('[data-test="token-new"]');
    if (box) box.remove();
  });
  return h('div', { class: 'panel highlight', 'data-test': 'token-new' },
    h('div', {}, 'The new join token, shown this once. It expires ' + fmtTime(t.expires) + '.'),
    h('div', { class: 'token-line' }, h('code', { class: 'wrap', 'data-test': 'token-value' }, t.token), ' ',
      copyButton(t.token, 'token-copy', ctx)),
    h('div', { class: 'actions' }, dismiss));
}

function createForm(view) {
  const { ctx, state } = view;
  const description = keep(state, 'token-description', input({ type: 'text', name: 'description',
    'data-test': 'token-description', maxlength: '256', autocomplete: 'off' }));
  const ttl = keep(state, 'token-ttl', input({ type: 'number', name: 'ttlSeconds', 'data-test': 'token-ttl',
    min: '0.1', max: String(MAX_TTL_HOURS), step: 'any' }, { value: '1' }));
  const submit = h('button', { type: 'submit', class: 'btn btn-primary', 'data-write': '', 'data-test': 'token-create' },
    'Create join token');
  const form = h('form', { class: 'form form-inline', 'data-test': 'token-form', novalidate: '' },
    field('Description', description),
    field('Expires after (hours)', ttl, `Up to ${MAX_TTL_HOURS} hours (a week).`),
    h('div', { class: 'actions' }, submit));
  form.addEventListener('submit', async (ev) => {
    ev.preventDefault();
    clearErrors(form);
    const hours = Number(ttl.value);
    if (ttl.value.trim() === '' || !Number.isFinite(hours) || hours <= 0 || hours > MAX_TTL_HOURS) {
      fieldError(ttl, `Enter a number of hours above 0 and at most ${MAX_TTL_HOURS}.`, 'ttlSeconds');
      return;
    }
    if (/[\u0000-\u001f\u007f]/.test(description.value)) { // eslint-disable-line no-control-regex
      fieldError(description, 'No control characters.', 'description');
      return;
    }
    await busy(submit, async () => {
      try {
        const t = await ctx.api.send('POST', '/api/v1/cluster/tokens', {
          description: description.value, ttlSeconds: Math.round(hours * 3600),
        });
        state.newToken = t;
        forget(state, 'token-');
        ctx.toast('Join token created');
        await refreshView(clusterView, view.root, ctx);
      } catch (err) {
        const msg = messageOf(err);
        if (codeOf(err) === 'invalid_join_token' && /ttl/i.test(msg)) fieldError(ttl, msg, 'ttlSeconds');
        else if (codeOf(err) === 'invalid_join_token' && /description/i.test(msg)) fieldError(description, msg, 'description');
        else formError(form, msg);
      }
    });
  });
  return form;
}

function deleteTokenButton(view, t) {
  const { ctx } = view;
  const btn = h('button', { type: 'button', class: 'btn btn-small btn-danger', 'data-write': '', 'data-test': 'token-delete' },
    'Delete');
  btn.addEventListener('click', () => {
    // eslint-disable-next-line no-alert
    if (!window.confirm(`Delete the join token ${t.id}${t.description ? ' (' + t.description + ')' : ''}?`)) return;
    busy(btn, async () => {
      try {
        await ctx.api.send('DELETE', '/api/v1/cluster/tokens/' + encodeURIComponent(t.id));
        ctx.toast(`Join token ${t.id} deleted`);
        await refreshView(clusterView, view.root, ctx);
      } catch (err) {
        ctx.toast(messageOf(err), 'error');
      }
    });
  });
  return btn;
}
