// Discovery: scan the LAN for devices running the agent, watch the scan's
// progress, and act on what was found: onboard a device (a one-time key
// bound to it, sent in a signed invitation), wake it (Wake-on-LAN) or check
// whether it is online. Discovered devices live in memory on the node that
// scanned; scans, checks and invitations are for ADMIN.
//
// Test hooks: [data-test=scan-targets], [data-test=scan-timeout],
// [data-test=scan-start], [data-test=scan-progress] (a <progress> with
// data-state idle / running / done), [data-test=scan-status],
// [data-test=discovery-ping] (check every device),
// table[data-test=table-discovered] with rows keyed by MAC (or the first
// hostid's value) and in each row [data-test=device-onboard],
// [data-test=device-wake], [data-test=device-ping],
// [data-test=device-result]; [data-test=discovery-unavailable] when the
// node has no discovery. Errors: [data-test=error-targets],
// [data-test=error-timeoutSeconds], [data-test=form-error].

import { h, fieldError, clearErrors } from '../dom.js';
import { formError } from '../form.js';
import { pagedTable } from '../table.js';
import {
  busy, codeOf, field, fmtTime, input, keep, messageOf, mount, note, pill, ready, section, stillShown,
} from './widgets.js';

const POLL_MS = 500;

export default {
  id: 'discovery',
  title: 'Discovery',
  roles: [],
  topics: ['discovery'],
  keep: true,

  async render(root, ctx) {
    const state = ctx.state;
    if (!state.results) state.results = {};
    if (!state.table) state.table = {};
    stopPolling(state);
    let status;
    try {
      status = await ctx.api.get('/api/v1/discovery/scan');
    } catch (err) {
      if (err.status === 503) {
        mount(root, section('Discovery', {}, h('p', { class: 'notice', 'data-test': 'discovery-unavailable' },
            'Discovery is not available on this node: ' + messageOf(err))));
        return;
      }
      throw err;
    }
    // A live refresh (devices answer a running scan several times a
    // second) updates the progress and the table in place, leaving the
    // form as it is.
    const old = state.view;
    if (old && old.root === root && root.contains(old.progressSlot) && root.contains(old.tableSlot)) {
      old.ctx = ctx;
      showProgress(old, status);
      await reloadTable(old);
      if (status.progress && !status.progress.done) startPolling(old, status);
      return;
    }

    const admin = ctx.can('ADMIN');
    const view = { root, ctx, state, admin };
    state.view = view;
    view.progressSlot = h('div', { class: 'slot' });
    view.tableSlot = h('div', { class: 'slot' });
    showProgress(view, status);
    await fillTable(view);

    mount(root,
      section('Scan', { 'data-test': 'scan-section' },
        note('A scan asks every device running tally-agent listen on the LAN (UDP 30005) to say who it is. '
          + 'Found devices are kept on this node until it restarts.'),
        admin ? scanForm(view, status) : null,
        view.progressSlot),
      section('Discovered devices', { 'data-test': 'discovered-section' },
        admin ? h('div', { class: 'toolbar' }, pingAllButton(view)) : null,
        view.tableSlot));

    if (status.progress && !status.progress.done) startPolling(view, status);
  },
};

// ------------------------------------------------------------ scanning

function splitTargets(text) {
  return text.split(/[\s,;]+/).map((t) => t.trim()).filter(Boolean);
}

// checkTarget says what is wrong with a target ('' when nothing): an IP, an
// IP:PORT ([v6]:PORT) or a CIDR range.
function checkTarget(t) {
  const v4 = /^(25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)(\.(25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)){3}$/;
  const v6 = /^[0-9A-Fa-f:.]+(%[\w.-]+)?$/;
  let m;
  if ((m = /^(.+)\/(\d{1,3})$/.exec(t))) {
    const bits = Number(m[2]);
    if (v4.test(m[1])) return bits <= 32 ? (bits < 20 ? `${t} holds more than 4096 addresses` : '') : `${t} is not a CIDR range`;
    if (m[1].includes(':') && v6.test(m[1])) return bits <= 128 ? (bits < 116 ? `${t} holds more than 4096 addresses` : '') : `${t} is not a CIDR range`;
    return `${t} is not a CIDR range`;
  }
  if ((m = /^\[([^\]]+)\]:(\d+)$/.exec(t)) || (m = /^([^:]+):(\d+)$/.exec(t))) {
    const port = Number(m[2]);
    if (port < 1 || port > 65535) return `${t} has a port outside 1 to 65535`;
    return v4.test(m[1]) || (m[1].includes(':') && v6.test(m[1])) ? '' : `${t} is not an IP address`;
  }
  if (v4.test(t) || (t.includes(':') && v6.test(t))) return '';
  return `${t} is not an IP address, IP:PORT or CIDR range`;
}

function scanForm(view, status) {
  const { ctx, state } = view;
  const running = status.progress && !status.progress.done;
  const targets = keep(state, 'targets', input({ type: 'text', name: 'targets', 'data-test': 'scan-targets',
    autocomplete: 'off', placeholder: 'Empty: the broadcast addresses of this node' }));
  const timeout = keep(state, 'timeout', input({ type: 'number', name: 'timeoutSeconds', 'data-test': 'scan-timeout',
    min: '1', max: '300', step: 'any', placeholder: '6' }));
  const start = h('button', { type: 'submit', class: 'btn btn-primary', 'data-write': '', 'data-test': 'scan-start' },
    'Scan');
  start.disabled = !!running;
  const form = h('form', { class: 'form form-inline', 'data-test': 'scan-form', novalidate: '' },
    field('Targets', targets, 'IP addresses, IP:PORT or CIDR ranges (at most 4096 addresses), separated by spaces or commas.'),
    field('Listen for (seconds)', timeout, 'Default 6, at most 300.'),
    h('div', { class: 'actions' }, start));
  form.addEventListener('submit', async (ev) => {
    ev.preventDefault();
    clearErrors(form);
    const list = splitTargets(targets.value);
    const bad = list.map(checkTarget).find(Boolean);
    if (bad) {
      fieldError(targets, bad, 'targets');
      return;
    }
    if (list.length > 4096) {
      fieldError(targets, 'At most 4096 addresses.', 'targets');
      return;
    }
    const body = {};
    if (list.length) body.targets = list;
    if (timeout.value.trim() !== '') {
      const t = Number(timeout.value);
      if (!Number.isFinite(t) || t <= 0 || t > 300) {
        fieldError(timeout, 'Enter a number of seconds above 0 and at most 300.', 'timeoutSeconds');
        return;
      }
      body.timeoutSeconds = t;
    }
    await busy(start, async () => {
      try {
        const got = await ctx.api.send('POST', '/api/v1/discovery/scan', body);
        ctx.toast('Scan started');
        const st = { progress: got && got.progress, found: 0 };
        showProgress(view, st);
        startPolling(view, st);
      } catch (err) {
        const msg = messageOf(err);
        const code = codeOf(err);
        if (code === 'bad_target' || code === 'too_many_targets') fieldError(targets, msg, 'targets');
        else if (code === 'bad_timeout') fieldError(timeout, msg, 'timeoutSeconds');
        else formError(form, msg);
      }
    });
    // A scan runs now: the button stays off until it ends.
    const cur = view.root.querySelector('[data-test="scan-start"]');
    if (cur) cur.disabled = !!(view.last && view.last.progress && !view.last.progress.done);
  });
  return form;
}

// showProgress draws the progress of the current or last scan.
function showProgress(view, status) {
  view.last = status;
  const p = status && status.progress;
  const bar = h('progress', { 'data-test': 'scan-progress', max: '100', 'aria-label': 'Scan progress' });
  let text;
  if (!p) {
    bar.value = 0;
    bar.dataset.state = 'idle';
    text = 'No scan has run on this node yet.';
  } else if (!p.done) {
    const pct = p.timeout > 0 ? Math.min(99, Math.floor((100 * p.elapsed) / p.timeout)) : 0;
    bar.value = pct;
    bar.dataset.state = 'running';
    text = `Scanning… ${Math.floor(p.elapsed)} of ${Math.round(p.timeout)} s; ${p.sent} of ${p.targets} sent`
      + `${p.failed ? `, ${p.failed} failed` : ''}; ${p.answered} answered.`;
  } else {
    bar.value = 100;
    bar.dataset.state = 'done';
    text = `Last scan (${fmtTime(p.started)}): ${p.sent} of ${p.targets} sent`
      + `${p.failed ? `, ${p.failed} failed` : ''}; found ${status.found ?? p.answered} device${(status.found ?? p.answered) === 1 ? '' : 's'}.`;
  }
  if (p) {
    bar.dataset.answered = String(p.answered);
    bar.dataset.found = String(status.found ?? '');
  }
  mount(view.progressSlot,
    h('div', { class: 'scan-progress' }, bar, h('span', { class: 'scan-status', 'data-test': 'scan-status', 'aria-live': 'polite' }, text)));
  const start = view.root.querySelector('[data-test="scan-start"]');
  if (start) start.disabled = !!(p && !p.done);
}

function stopPolling(state) {
  if (state.poll) {
    clearTimeout(state.poll);
    state.poll = null;
  }
}

// startPolling follows a running scan every POLL_MS until it ends,
// redrawing the devices when more have answered.
function startPolling(view, status) {
  const { ctx, state, root } = view;
  stopPolling(state);
  let answered = status.progress ? status.progress.answered : 0;
  const tick = async () => {
    state.poll = null;
    if (!stillShown(root, 'discovery') || !root.contains(view.progressSlot)) return;
    let st;
    try {
      st = await ctx.api.get('/api/v1/discovery/scan');
    } catch (err) {
      state.poll = setTimeout(tick, POLL_MS * 4);
      return;
    }
    if (!stillShown(root, 'discovery') || !root.contains(view.progressSlot)) return;
    showProgress(view, st);
    const p = st.progress;
    if (p && (p.answered !== answered || p.done)) {
      answered = p.answered;
      reloadTable(view);
    }
    if (p && !p.done) state.poll = setTimeout(tick, POLL_MS);
  };
  state.poll = setTimeout(tick, POLL_MS);
}

// ------------------------------------------------------------ devices

function ethernetOf(d) {
  return (d.hostIds || []).find((x) => x.type === 'ETHERNET');
}

// keyOf names a discovered device: its MAC, or its first hostid's value.
function keyOf(d) {
  const mac = ethernetOf(d);
  if (mac) return mac.value;
  return d.hostIds && d.hostIds[0] ? d.hostIds[0].value : d.address;
}

async function fillTable(view) {
  const { ctx, state, admin } = view;
  const columns = [
    { title: 'Address', class: 'nowrap', value: (d) => d.address },
    { title: 'Host IDs', value: (d) => h('ul', { class: 'plain' },
      ...(d.hostIds || []).map((x) => h('li', {}, h('span', { class: 'muted' }, x.type + ' '), x.value))) },
    { title: 'Alias', class: 'nowrap', value: (d) => d.alias || '—' },
    { title: 'Onboarded', value: (d) => h('span', { 'data-test': 'device-onboarded', title: d.fingerprint || '' },
      d.onboarded ? (d.here ? 'yes' : 'yes, with another server') : 'no') },
    { title: 'Online', value: (d) => pill(d.online ? 'ok' : 'bad', d.online ? 'online' : 'offline', { 'data-test': 'device-online' }) },
    { title: 'Last seen', class: 'nowrap', value: (d) => fmtTime(d.lastSeen) },
  ];
  if (admin) columns.push({ title: 'Actions', value: (d) => actions(view, d) });
  const table = pagedTable({
    name: 'discovered',
    columns,
    fetch: (page, pageSize) => ctx.api.get('/api/v1/discovery/devices', { page, pageSize }),
    key: keyOf,
    state: state.table,
  });
  await ready(table);
  mount(view.tableSlot, table);
}

// reloadTable loads the devices' page again, keeping the table.
function reloadTable(view) {
  const table = view.tableSlot.firstChild;
  if (table && table.reload) return table.reload();
  return fillTable(view);
}

function resultLine(r) {
  const el = h('div', { class: 'row-result', 'data-test': 'device-result', 'aria-live': 'polite' });
  if (r) {
    el.className = 'row-result ' + (r.kind === 'error' ? 'field-error' : 'muted');
    el.textContent = r.text;
  }
  return el;
}

function actions(view, d) {
  const { ctx, state } = view;
  const key = keyOf(d);
  const out = resultLine(state.results[key]);
  const show = (r) => {
    state.results[key] = r;
    out.className = 'row-result ' + (r.kind === 'error' ? 'field-error' : 'muted');
    out.textContent = r.text;
  };
  const act = (btn, run) => busy(btn, async () => {
    try {
      show(await run());
    } catch (err) {
      show({ kind: 'error', text: messageOf(err) });
    }
  });
  const box = h('div', { class: 'row-actions' });

  if (!d.onboarded) {
    const onboard = h('button', { type: 'button', class: 'btn btn-small btn-primary', 'data-write': '', 'data-test': 'device-onboard' },
      'Onboard');
    onboard.addEventListener('click', () => act(onboard, async () => {
      const inv = await ctx.api.send('POST', '/api/v1/discovery/onboard', { device: d.hostIds[0] });
      ctx.toast('Invitation sent');
      return { kind: 'ok', text: `Invitation sent to ${inv.sentTo} with key ${inv.key}; the device onboards on its own.` };
    }));
    box.append(onboard);
  }
  const mac = ethernetOf(d);
  if (mac) {
    const wake = h('button', { type: 'button', class: 'btn btn-small', 'data-write': '', 'data-test': 'device-wake' }, 'Wake');
    wake.addEventListener('click', () => act(wake, async () => {
      const res = await ctx.api.send('POST', '/api/v1/discovery/wake', { device: mac });
      const n = (res.targets || []).length;
      return { kind: 'ok', text: `Magic packet sent to ${n - (res.failed || 0)} of ${n} broadcast address${n === 1 ? '' : 'es'}.` };
    }));
    box.append(wake);
  }
  const ping = h('button', { type: 'button', class: 'btn btn-small', 'data-write': '', 'data-test': 'device-ping' }, 'Ping');
  ping.addEventListener('click', () => act(ping, async () => {
    const res = await ctx.api.send('POST', '/api/v1/discovery/ping');
    const me = (res.items || []).find((x) => keyOf(x) === key);
    setTimeout(() => reloadTable(view), 0);
    if (!me) return { kind: 'error', text: 'The device is no longer in the list.' };
    return { kind: me.online ? 'ok' : 'error', text: me.online ? 'Online: it answered.' : 'Offline: no answer within 2 s.' };
  }));
  box.append(ping);
  return h('div', {}, box, out);
}

function pingAllButton(view) {
  const { ctx } = view;
  const btn = h('button', { type: 'button', class: 'btn', 'data-write': '', 'data-test': 'discovery-ping' },
    'Check who is online');
  btn.addEventListener('click', () => busy(btn, async () => {
    try {
      const res = await ctx.api.send('POST', '/api/v1/discovery/ping');
      ctx.toast(`${res.online} of ${res.total} device${res.total === 1 ? '' : 's'} online`);
      reloadTable(view);
    } catch (err) {
      ctx.toast(messageOf(err), 'error');
    }
  }));
  return btn;
}
