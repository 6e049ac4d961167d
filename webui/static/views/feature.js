// Feature details (#/features/NAME/VERSION): the aggregate, its rights
// lines, its share in each pool, the devices it is served to and its use
// over time.

import { h } from '../dom.js';
import { pagedTable, localFetch } from '../table.js';
import { details, fmtDate, fmtDateTime, fmtExpiry, yesNo, pill, routeOf, toDate } from '../format.js';
import { fetchHistory, historyChart } from '../history.js';
import { overdraftText, countText } from './features.js';

function expiryText(f) {
  const first = toDate(f.firstExpiry);
  const last = toDate(f.lastExpiry);
  if (!first && !last) return 'permanent';
  if (!last) return `${fmtDate(first)} to permanent`;
  if (!first || fmtDate(first) === fmtDate(last)) return fmtDate(last);
  return `${fmtDate(first)} to ${fmtDate(last)}`;
}

const POOL_STATUS = { ok: 'ok', short: 'warn', over: 'bad' };

export default {
  id: 'feature',
  route: 'features',
  detail: true,
  nav: false,
  title: 'Feature',
  roles: [],
  topics: ['features', 'devices', 'pools', 'reservations'],
  keep: true,

  async render(root, ctx) {
    const { api, state } = ctx;
    const [name, version] = ctx.params;
    const back = h('p', { class: 'back' }, h('a', { href: '#/features' }, '← Features'));
    if (!name || !version) {
      root.replaceChildren(back, h('div', { class: 'notice', 'data-test': 'not-found' }, 'Name a feature and a version: #/features/NAME/VERSION.'));
      return;
    }
    ctx.setTitle(`Feature ${name} ${version}`);
    let f;
    try {
      f = await api.get(`/api/v1/features/${encodeURIComponent(name)}/${encodeURIComponent(version)}`);
    } catch (e) {
      if (e.status === 404 || e.status === 400) {
        root.replaceChildren(back, h('div', { class: 'notice', 'data-test': 'not-found' }, e.message));
        return;
      }
      throw e;
    }

    const served = pagedTable({
      name: 'served',
      state,
      columns: [
        { title: 'Device ID', key: 'device', value: (s) => s.device ? s.device.value : '' },
        { title: 'ID type', key: 'type', value: (s) => s.device ? s.device.type : '' },
        { title: 'Device type', key: 'deviceType', value: (s) => s.deviceType || '' },
        { title: 'Alias', key: 'alias', value: (s) => s.alias || '' },
        { title: 'Count served', key: 'count', class: 'num', value: (s) => s.overdraft ? `${s.count} (${s.overdraft} overdraft)` : String(s.count ?? 0) },
        { title: 'Expiry', key: 'expiry', value: (s) => fmtDateTime(s.expiry) },
      ],
      key: (s) => s.device ? `${s.device.type}/${s.device.value}` : '',
      fetch: localFetch(f.served || []),
      onRow: (s) => s.device && ctx.navigate(routeOf('devices', s.device.type, s.device.value)),
    });
    const lines = pagedTable({
      name: 'lines',
      state,
      columns: [
        { title: 'Line', key: 'id', value: (l) => l.id || '' },
        { title: 'Count', key: 'count', class: 'num', value: (l) => l.uncounted ? 'uncounted' : String(l.count ?? 0) },
        { title: 'Start', key: 'start', value: (l) => fmtDate(l.start) },
        { title: 'Expiry', key: 'expiry', value: (l) => fmtExpiry(l.expiry) },
        { title: 'Overdraft', key: 'overdraft', class: 'num', value: (l) => String(l.overdraft ?? 0) },
        { title: 'Metered', key: 'metered', value: (l) => l.metered ? (l.reusable ? 'yes, reusable' : 'yes') : 'no' },
        { title: 'Vendor string', key: 'vendorString', value: (l) => l.vendorString || '' },
        { title: 'Source', key: 'source', value: (l) => l.source || '' },
      ],
      key: (l) => l.id || '',
      fetch: localFetch(f.lines || []),
    });
    const pools = pagedTable({
      name: 'feature-pools',
      state,
      columns: [
        { title: 'Pool', key: 'pool', value: (p) => p.pool },
        { title: 'Allocated', key: 'allocated', class: 'num', value: (p) => String(p.allocated ?? 0) },
        { title: 'Used', key: 'used', class: 'num', value: (p) => String(p.used ?? 0) },
        { title: 'Status', key: 'status', value: (p) => pill(POOL_STATUS[p.status] || 'neutral', p.status || '') },
      ],
      key: (p) => p.pool,
      fetch: localFetch(f.pools || []),
    });
    const history = await fetchHistory(api, f.name, f.version);
    await Promise.all([served.loaded, lines.loaded, pools.loaded]);

    root.replaceChildren(
      back,
      h('section', { class: 'panel' },
        details([
          ['Name', f.name, 'feature-name'],
          ['Version', f.version, 'feature-version'],
          ['Start date', fmtDate(f.start)],
          ['Total count', countText(f, f.total), 'feature-total'],
          ['Available', countText(f, f.available), 'feature-available'],
          ['Used', String(f.used ?? 0), 'feature-used'],
          ['Reserved', String(f.reserved ?? 0), 'feature-reserved'],
          ['Overdraft', overdraftText(f)],
          ['Vendor string', (f.vendorStrings || []).filter(Boolean).join(', ')],
          ['Expiry', expiryText(f), 'feature-expiry'],
          ['Metered', yesNo(f.metered)],
          ['Counted', yesNo(f.counted)],
        ])),
      h('section', { class: 'panel' }, h('h2', {}, 'Served devices'), served),
      h('section', { class: 'panel' },
        historyChart(history, {
          title: `Usage over time: ${f.name} ${f.version}`, field: 'used', label: 'Used', test: 'chart-usage', yLabel: 'Counts',
          extra: f.counted ? (hist) => [{ label: 'Total', points: hist.points.map((p) => ({ at: new Date(p.at), value: f.total })) }] : null,
        })),
      h('section', { class: 'panel' }, h('h2', {}, 'Pools'), pools),
      h('section', { class: 'panel' }, h('h2', {}, 'Rights lines'), lines));
  },
};
