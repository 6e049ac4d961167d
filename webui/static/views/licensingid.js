// Licensing ID: the main licensing ID that rights are bound to (its
// display string, full ID and certificate fingerprint), the export of its
// certificate, and per server of the cluster whether it runs and signs
// with the main ID.
//
// Test hooks: [data-test=licensing-id-display], [data-test=licensing-id-id],
// [data-test=licensing-id-fingerprint], [data-test=export-cert],
// table[data-test=table-servers] with rows keyed by host name.

import { h } from '../dom.js';
import { pagedTable } from '../table.js';
import { busy, clientPage, copyButton, dl, messageOf, mount, note, pill, ready, section } from './widgets.js';

export default {
  id: 'licensingid',
  title: 'Licensing ID',
  roles: [],
  topics: ['licensing-id', 'cluster'],
  keep: true,

  async render(root, ctx) {
    const id = await ctx.api.get('/api/v1/licensing-id');

    const exportBtn = h('button', { type: 'button', class: 'btn', 'data-test': 'export-cert' }, 'Export .cert');
    exportBtn.addEventListener('click', () => busy(exportBtn, async () => {
      try {
        await ctx.api.download('/api/v1/licensing-id/cert', 'licensing-id.cert');
      } catch (err) {
        ctx.toast('Export failed: ' + messageOf(err), 'error');
      }
    }));

    const main = section('Main licensing ID', { 'data-test': 'licensing-id-main' },
      dl([
        ['ID', h('code', { class: 'id-display' }, id.display), 'licensing-id-display'],
        ['Fingerprint (SHA-256)', h('code', { class: 'fingerprint' }, id.fingerprint), 'licensing-id-fingerprint'],
      ]),
      h('details', { class: 'full-id' },
        h('summary', {}, 'Full ID'),
        h('code', { class: 'wrap', 'data-test': 'licensing-id-id' }, id.id),
        ' ', copyButton(id.id, 'licensing-id-copy', ctx)),
      h('div', { class: 'actions' }, exportBtn),
      note('The exported certificate (licensing-id.cert, PEM) lets devices and the back office check what '
        + 'this server signs.'));

    const servers = id.servers || [];
    const table = pagedTable({
      name: 'servers',
      columns: [
        { title: 'Host name', value: (s) => s.host },
        { title: 'Server status', value: (s) => status(s.serverStatus, s.serverStatus === 'Running') },
        { title: 'ID status', value: (s) => status(s.idStatus, s.idStatus !== 'not in sync') },
        { title: 'ID', class: 'nowrap', value: (s) => h('code', {}, s.display || '—') },
        { title: 'Fingerprint', value: (s) => h('code', { class: 'fingerprint' }, s.fingerprint || '—') },
      ],
      fetch: clientPage(servers),
      key: (s) => s.host,
      state: ctx.state.servers || (ctx.state.servers = {}),
    });

    await ready(table);
    mount(root,
      main,
      section('Servers', { 'data-test': 'licensing-id-servers' }, table));
  },
};

function status(text, good) {
  return pill(good ? 'ok' : 'bad', text || '—');
}
