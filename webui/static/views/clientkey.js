// Client key: the RSA public key of the producer's client tools, which
// devices' requests are checked against. ADMIN sees whether one is
// installed (its size and SHA-256 fingerprint) and uploads a new one: the
// DER bytes of a 2048-bit RSA public key (SubjectPublicKeyInfo or PKCS#1).
//
// Test hooks: [data-test=clientkey-status], [data-test=clientkey-bits],
// [data-test=clientkey-fingerprint], [data-test=clientkey-file],
// [data-test=clientkey-upload], [data-test=clientkey-result], the error
// [data-test=error-clientKey].

import { h, fieldError, clearErrors } from '../dom.js';
import {
  busy, dl, field, messageOf, mount, note, resultBox, section, showResult,
} from './widgets.js';

const MAX_BYTES = 4096;

export default {
  id: 'clientkey',
  title: 'Client key',
  roles: ['ADMIN'],
  topics: ['client-key'],
  keep: true,

  async render(root, ctx) {
    const state = ctx.state;
    const key = await ctx.api.get('/api/v1/client-key');

    const status = key.present
      ? dl([
        ['Status', 'Installed', 'clientkey-status'],
        ['Size', `${key.bits} bits`, 'clientkey-bits'],
        ['SHA-256 fingerprint', h('code', { class: 'fingerprint' }, key.fingerprint || ''), 'clientkey-fingerprint'],
      ])
      : dl([['Status', 'No client key is installed', 'clientkey-status']]);

    const parts = [section('Installed key', {}, status)];
    if (ctx.can('ADMIN')) parts.push(uploadSection(root, ctx, state, key.present));
    mount(root, ...parts);
  },
};

function uploadSection(root, ctx, state, present) {
  const file = h('input', { type: 'file', name: 'clientKey', 'data-test': 'clientkey-file',
    accept: '.der,.key,.pub,.bin,application/octet-stream,application/pkix-key' });
  const submit = h('button', { type: 'submit', class: 'btn', 'data-write': '', 'data-test': 'clientkey-upload' },
    present ? 'Replace client key' : 'Upload client key');
  const out = resultBox(state.result ? { kind: 'ok', text: state.result } : null, 'clientkey-result');
  const form = h('form', { class: 'form', novalidate: '' },
    field('Public key file (DER)', file, 'A 2048-bit RSA public key in DER form, at most 4 KiB; PEM is not accepted.'),
    h('div', { class: 'actions' }, submit));
  form.addEventListener('submit', async (ev) => {
    ev.preventDefault();
    clearErrors(form);
    const f = file.files && file.files[0];
    const problem = await check(f);
    if (problem) {
      fieldError(file, problem, 'clientKey');
      return;
    }
    await busy(submit, async () => {
      try {
        const k = await ctx.api.upload('POST', '/api/v1/client-key', f, 'application/octet-stream');
        state.result = `Client key installed: ${k.bits} bits, SHA-256 ${k.fingerprint}.`;
        ctx.toast('Client key installed');
        file.value = '';
        const cur = root.querySelector('[data-test="clientkey-result"]');
        if (cur) showResult(cur, { kind: 'ok', text: state.result });
      } catch (err) {
        fieldError(file, messageOf(err), 'clientKey');
      }
    });
  });
  return section('Upload a client key', {},
    note('Installing a key replaces the one in force.'),
    form, out);
}

// check refuses what the server would refuse anyway, with a clearer word:
// no file, an empty or too large one, PEM text, or bytes that do not start
// a DER SEQUENCE.
async function check(f) {
  if (!f) return 'Choose a key file first.';
  if (f.size === 0) return 'The file is empty.';
  if (f.size > MAX_BYTES) return `The file has ${f.size} bytes; a 2048-bit RSA public key in DER has less than 4 KiB.`;
  const head = new Uint8Array(await f.slice(0, 16).arrayBuffer());
  const text = String.fromCharCode(...head);
  if (text.startsWith('-----BEGIN') || text.startsWith('ssh-rsa')) {
    return 'This is a text (PEM or OpenSSH) key; convert it to DER first (openssl rsa -pubin -outform DER).';
  }
  if (head[0] !== 0x30) return 'This is not a DER-encoded key (it does not start with an ASN.1 SEQUENCE).';
  return '';
}
