// Audit log: every administrative change, newest first, with whether the
// hash chain verifies. GET /api/v1/audit pages by sequence number (after,
// limit, oldest first); the table turns that into newest-first pages.

import { h } from '../dom.js';
import { pagedTable } from '../table.js';
import { fmtDateTime, pill } from '../format.js';


// auditPage fetches page (1 = newest) of pageSize records.
export async function auditPage(api, page, pageSize, onVerified) {
  const head = await api.get('/api/v1/audit', { after: 0, limit: 1 });
  if (onVerified) onVerified(head.verified);
  const total = head.total || 0;
  if (total === 0 || !head.items || head.items.length === 0) return { total, page, pageSize, items: [] };
  const first = head.items[0].seq;
  const last = first + total - 1;
  const hi = last - (page - 1) * pageSize;
  if (hi < first) return { total, page, pageSize, items: [] };
  const lo = Math.max(first, hi - pageSize + 1);
  const res = await api.get('/api/v1/audit', { after: lo - 1, limit: hi - lo + 1 });
  if (onVerified) onVerified(res.verified);
  return { total: res.total ?? total, page, pageSize, items: (res.items || []).slice().reverse() };
}

export default {
  id: 'audit',
  title: 'Audit log',
  roles: [],
  topics: ['audit'],
  keep: true,

  async render(root, ctx) {
    const verified = h('span', { 'data-test': 'audit-verified' });
    const showVerified = (ok) => {
      verified.replaceChildren(ok
        ? pill('ok', 'Hash chain verifies')
        : pill('bad', 'Hash chain does not verify: records were changed, removed or reordered'));
      verified.dataset.verified = ok ? 'true' : 'false';
    };
    const table = pagedTable({
      name: 'audit',
      state: ctx.state,
      columns: [
        { title: '#', key: 'seq', class: 'num', value: (r) => String(r.seq) },
        { title: 'Time', key: 'at', class: 'nowrap', value: (r) => fmtDateTime(r.at, true) },
        { title: 'User', key: 'user', value: (r) => r.user || '' },
        { title: 'Address', key: 'address', value: (r) => r.address || '' },
        { title: 'Action', key: 'action', value: (r) => r.action || '' },
        { title: 'Detail', key: 'detail', class: 'wrap', value: (r) => r.detail || '' },
      ],
      key: (r) => String(r.seq),
      fetch: (page, pageSize) => auditPage(ctx.api, page, pageSize, showVerified),
    });
    await table.loaded;
    root.replaceChildren(
      h('div', { class: 'toolbar' }, h('span', {}, 'Newest first. '), verified),
      table);
  },
};
