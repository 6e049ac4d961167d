// Offline updates: the capability exchange with the back office by files,
// for a server that cannot reach it. Download the pending capability
// request (or one that asks for an activation), carry it to the back
// office, and upload the response it gives; or install a signed rights
// file from the producer.
//
// The Sync status section on top (GET /api/v1/offline/status) says where
// the exchange stands: the connector, the pending request, the last
// response, the usage waiting for the back office's acknowledgement. It is
// read again on the "offline" topic, with every other part of the view.
//
// Test hooks: [data-test=sync-status] (the section), its values
// [data-test=sync-connector], sync-pending, sync-last, sync-unacknowledged,
// sync-usage-ack, sync-current, sync-next, and [data-test=sync-error] when
// it could not be read; [data-test=offline-request] (download the request),
// [data-test=activation-id], [data-test=activation-count],
// [data-test=activation-submit], [data-test=response-file],
// [data-test=response-upload], [data-test=response-result],
// [data-test=rights-file], [data-test=rights-upload],
// [data-test=rights-result]; errors [data-test=error-activationId],
// [data-test=error-count], [data-test=error-response],
// [data-test=error-rights], [data-test=error-request].

import { h, fieldError, clearErrors } from '../dom.js';
import { formError } from '../form.js';
import {
  busy, codeOf, dl, field, fmtTime, input, keep, messageOf, mount, note, pill, section, forget, postForFile, resultBox, showResult,
} from './widgets.js';

const MAX_COUNT = 1000000000;

export default {
  id: 'offline',
  title: 'Offline updates',
  roles: ['OFFLINE'],
  topics: ['offline'],
  keep: true,

  async render(root, ctx) {
    const state = ctx.state;
    if (!state.results) state.results = {};
    const can = ctx.can('OFFLINE');
    let status = null;
    let statusError = null;
    try {
      status = await ctx.api.get('/api/v1/offline/status');
    } catch (err) {
      statusError = err;
    }

    mount(root,
      note('Without a connection to the back office, exchange files with it: download a capability request, '
        + 'take it to the back office, and upload the response it gives back here.'),
      syncSection(status, statusError),
      requestSection(root, ctx, state, can),
      activationSection(root, ctx, state, can),
      responseSection(root, ctx, state, can),
      rightsSection(root, ctx, state, can));
  },
};

// syncSection shows where the exchange with the back office stands.
function syncSection(st, err) {
  if (!st) {
    return section('Sync status', { 'data-test': 'sync-status' },
      h('div', { class: 'notice notice-bad', role: 'alert', 'data-test': 'sync-error' },
        `The sync status could not be read: ${messageOf(err)}`));
  }
  const plural = (n, one, many) => `${n} ${n === 1 ? one : many}`;
  const pending = st.pendingRequest
    ? h('span', {}, pill('warn', 'waiting for its response'), ` Request ${st.pendingRequest}, made ${fmtTime(st.pendingSince)}; `
      + `it carries ${plural(st.pendingWindows || 0, 'usage window', 'usage windows')}`
      + ((st.pendingActivations || []).length
        ? ' and asks for ' + st.pendingActivations.map((a) => `${a.activationId} (count ${a.count})`).join(', ')
        : '') + '.')
    : 'None';
  const last = st.lastResponse
    ? `Response ${st.lastResponse}, applied ${fmtTime(st.lastResponseAt)}`
    : 'None applied yet';
  const current = st.current || {};
  const rows = (current.features || []).length;
  const open = rows
    ? `${plural(rows, 'feature', 'features')} used since ${fmtTime(current.from)}`
    : 'Nothing used since the last request';
  const unacked = st.unacknowledgedWindows || 0;
  const results = (st.lastActivations || []).map((a) => {
    const what = { ok: 'granted', unknown: 'unknown to the back office', exceeds: 'exceeds what is left' }[a.result] || a.result;
    return `${a.activationId} (count ${a.count}): ${what}`;
  });
  return section('Sync status', { 'data-test': 'sync-status' },
    dl([
      ['Connector', st.connector ? h('code', {}, st.connector) : 'None: files only (below)', 'sync-connector'],
      ['Pending request', pending, 'sync-pending'],
      ['Last response', last, 'sync-last'],
      ['Waiting for acknowledgement', unacked
        ? pill('warn', plural(unacked, 'usage window', 'usage windows'))
        : pill('ok', 'none'), 'sync-unacknowledged'],
      ['Usage acknowledged up to', st.usageAck ? `window ${st.usageAck}` : 'none yet', 'sync-usage-ack'],
      ['Open usage window', open, 'sync-current'],
      ['Next request sequence', String(st.nextRequest ?? ''), 'sync-next'],
      ['Last activations', results.length ? h('ul', {}, ...results.map((r) => h('li', {}, r))) : undefined],
    ]));
}

// result shows the stored outcome of an action: {kind, text, lines}.
function result(r, test) {
  return resultBox(r, test);
}

function requestSection(root, ctx, state, can) {
  const children = [
    note('The request carries the usage not yet acknowledged and any activations asked, signed with the '
      + 'main licensing ID. Downloading it begins one when none is pending.'),
  ];
  if (can) {
    const btn = h('button', { type: 'button', class: 'btn', 'data-write': '', 'data-test': 'offline-request' },
      'Download capability request');
    btn.addEventListener('click', () => busy(btn, async () => {
      clearErrors(btn.parentNode);
      try {
        const got = await ctx.api.download('/api/v1/offline/request', null);
        state.results.request = { kind: 'ok', text: `Capability request downloaded${got && got.filename ? ' as ' + got.filename : ''}. Take it to the back office.` };
        ctx.toast('Capability request downloaded');
      } catch (err) {
        state.results.request = null;
        fieldError(btn, messageOf(err), 'request');
      }
      replaceResult(btn, 'request-result', state.results.request);
    }));
    children.push(h('div', { class: 'actions' }, btn));
  }
  children.push(result(state.results.request, 'request-result'));
  return section('Capability request', { 'data-test': 'offline-request-section' }, ...children);
}

function activationSection(root, ctx, state, can) {
  const children = [
    note('Ask the back office for the counts of an activation: how many this server is to hold '
      + '(0 gives them all back). The request is downloaded at once.'),
  ];
  if (can) {
    const id = keep(state, 'activationId', input({ type: 'text', name: 'activationId', 'data-test': 'activation-id',
      maxlength: '128', autocomplete: 'off', required: '' }));
    const count = keep(state, 'count', input({ type: 'number', name: 'count', 'data-test': 'activation-count',
      min: '0', max: String(MAX_COUNT), step: '1', required: '' }));
    const submit = h('button', { type: 'submit', class: 'btn', 'data-write': '', 'data-test': 'activation-submit' },
      'Generate activation request');
    const form = h('form', { class: 'form', 'data-test': 'activation-form', novalidate: '' },
      field('Activation ID', id),
      field('Count', count, 'How many this server is to hold; 0 gives them back.'),
      h('div', { class: 'actions' }, submit));
    form.addEventListener('submit', (ev) => {
      ev.preventDefault();
      generateActivation(ctx, state, form, id, count, submit);
    });
    children.push(form);
  }
  children.push(result(state.results.activation, 'activation-result'));
  return section('Activation request', { 'data-test': 'offline-activation-section' }, ...children);
}

async function generateActivation(ctx, state, form, id, count, submit) {
  clearErrors(form);
  const activationId = id.value.trim();
  const n = count.value.trim();
  let bad = false;
  if (activationId === '') {
    fieldError(id, 'Enter the activation ID.', 'activationId');
    bad = true;
  } else if (new TextEncoder().encode(activationId).length > 128) {
    fieldError(id, 'At most 128 characters.', 'activationId');
    bad = true;
  } else if (/[\u0000-\u001f\u007f]/.test(activationId)) { // eslint-disable-line no-control-regex
    fieldError(id, 'No control characters.', 'activationId');
    bad = true;
  }
  if (!/^\d+$/.test(n) || Number(n) > MAX_COUNT) {
    fieldError(count, `Enter a whole number from 0 to ${MAX_COUNT}.`, 'count');
    bad = true;
  }
  if (bad) return;
  await busy(submit, async () => {
    try {
      const name = await postForFile(ctx, '/api/v1/offline/activation', { activationId, count: Number(n) },
        'capability-request.bin');
      state.results.activation = { kind: 'ok',
        text: `Activation request for ${activationId} (count ${n}) downloaded${name ? ' as ' + name : ''}. Take it to the back office.` };
      forget(state, 'activationId');
      forget(state, 'count');
      ctx.toast('Activation request downloaded');
      replaceResult(form, 'activation-result', state.results.activation);
    } catch (err) {
      const msg = messageOf(err);
      if (codeOf(err) === 'invalid_activation' && /asks for|count/i.test(msg)) fieldError(count, msg, 'count');
      else if (codeOf(err) === 'invalid_activation') fieldError(id, msg, 'activationId');
      else if (codeOf(err) === 'bad_json' && /count/.test(msg)) fieldError(count, msg, 'count');
      else formError(form, msg);
    }
  });
}

function replaceResult(near, test, r) {
  const sec = near.closest('section');
  const old = sec && sec.querySelector('[data-test="' + test + '"]');
  if (old) showResult(old, r);
}

// uploadSection builds a file picker and an upload button for one kind of
// file; send uploads it and returns the result to show.
function uploadForm({ ctx, state, name, fileTest, buttonTest, label, accept, send, resultKey, resultTest }) {
  const file = h('input', { type: 'file', name, 'data-test': fileTest, accept });
  const submit = h('button', { type: 'submit', class: 'btn', 'data-write': '', 'data-test': buttonTest }, label);
  const form = h('form', { class: 'form', novalidate: '' },
    field('File', file),
    h('div', { class: 'actions' }, submit));
  form.addEventListener('submit', (ev) => {
    ev.preventDefault();
    clearErrors(form);
    const f = file.files && file.files[0];
    if (!f) {
      fieldError(file, 'Choose a file first.', name);
      return;
    }
    if (f.size === 0) {
      fieldError(file, 'The file is empty.', name);
      return;
    }
    busy(submit, async () => {
      try {
        state.results[resultKey] = await send(f);
        ctx.toast(state.results[resultKey].text);
        file.value = '';
      } catch (err) {
        state.results[resultKey] = null;
        fieldError(file, messageOf(err), name);
      }
      replaceResult(form, resultTest, state.results[resultKey]);
    });
  });
  return form;
}

function responseSection(root, ctx, state, can) {
  const children = [
    note('Upload the signed response the back office gave for the last request. Its lines replace the back '
      + 'office\'s rights; a response that was tampered with, is for another server, answers another request '
      + 'or was applied already is refused and changes nothing.'),
  ];
  if (can) {
    children.push(uploadForm({
      ctx, state, name: 'response', fileTest: 'response-file', buttonTest: 'response-upload',
      label: 'Upload response', accept: '.bin,.resp,.response,application/octet-stream', resultKey: 'response',
      resultTest: 'response-result',
      send: async (f) => {
        const r = await ctx.api.upload('POST', '/api/v1/offline/response', f, 'application/octet-stream');
        return responseResult(r);
      },
    }));
  }
  children.push(result(state.results.response, 'response-result'));
  return section('Capability response', { 'data-test': 'offline-response-section' }, ...children);
}

function responseResult(r) {
  r = r || {};
  const lines = [
    `Feature lines installed: ${r.lines ?? 0}`,
    `Usage acknowledged up to: ${r.usageAck ?? 0}`,
  ];
  for (const a of r.activations || []) {
    const what = { ok: 'granted', unknown: 'unknown to the back office', exceeds: 'exceeds what is left' }[a.result] || a.result;
    lines.push(`Activation ${a.activationId} (count ${a.count}): ${what}`);
  }
  return { kind: 'ok', text: `Response ${r.sequence ?? ''} installed (answers request ${r.requestSequence ?? ''}).`, lines };
}

function rightsSection(root, ctx, state, can) {
  const children = [
    note('Install a rights file the producer signed (tally-rights/1). A file that is malformed, signed by an '
      + 'untrusted key, for another server or older than the installed one is refused.'),
  ];
  if (can) {
    children.push(uploadForm({
      ctx, state, name: 'rights', fileTest: 'rights-file', buttonTest: 'rights-upload',
      label: 'Upload rights file', accept: '.json,.rights,.tally,application/json,application/octet-stream',
      resultKey: 'rights', resultTest: 'rights-result',
      send: async (f) => {
        const r = (await ctx.api.upload('POST', '/api/v1/rights', f, 'application/octet-stream')) || {};
        return { kind: 'ok', text: `Rights installed: ${r.lines ?? 0} feature lines from ${r.source || 'the file'}`
          + (r.sequence !== undefined ? ` (sequence ${r.sequence}).` : '.') };
      },
    }));
  }
  children.push(result(state.results.rights, 'rights-result'));
  return section('Rights file', { 'data-test': 'offline-rights-section' }, ...children);
}
