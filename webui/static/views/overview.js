// The landing page: how many features, devices (online) and reservations
// there are, devices online over time, and one feature's use over time.

import { h, clear, track } from '../dom.js';
import { fetchHistory, historyChart } from '../history.js';

const MAX_COUNTED = 1000;

function card(label, value, href, test) {
  return h('a', { class: 'card', href },
    h('span', { class: 'card-value', 'data-test': test }, value === null ? '—' : String(value)),
    h('span', { class: 'card-label' }, label));
}

function featureKey(f) {
  return JSON.stringify([f.name, f.version]);
}

async function onlineCount(api, total) {
  if (total === 0) return 0;
  if (total > MAX_COUNTED) return null;
  const res = await api.get('/api/v1/devices', { page: 1, pageSize: MAX_COUNTED });
  return (res.items || []).filter((d) => d.online).length;
}

async function usageChart(api, feature) {
  if (!feature) return h('p', { class: 'muted', 'data-test': 'no-features' }, 'No features are installed.');
  const history = await fetchHistory(api, feature.name, feature.version);
  return historyChart(history, {
    title: `Usage over time: ${feature.name} ${feature.version}`,
    field: 'used',
    label: 'Used',
    test: 'chart-usage',
    yLabel: 'Counts',
    extra: feature.counted ? (hist) => [{ label: 'Total', points: hist.points.map((p) => ({ at: new Date(p.at), value: feature.total })) }] : null,
  });
}

export default {
  id: 'overview',
  title: 'Overview',
  roles: [],
  topics: ['features', 'devices', 'reservations'],
  keep: true,

  async render(root, ctx) {
    const { api, state } = ctx;
    const [features, devices, reservations, history] = await Promise.all([
      api.get('/api/v1/features', { page: 1, pageSize: MAX_COUNTED }),
      api.get('/api/v1/devices', { page: 1, pageSize: 1 }),
      api.get('/api/v1/reservations', { page: 1, pageSize: 1 }),
      fetchHistory(api),
    ]);
    let online = await onlineCount(api, devices.total);
    if (online === null && history && history.points.length > 0) {
      online = history.points[history.points.length - 1].devicesOnline;
    }

    const list = features.items || [];
    if (!state.feature || !list.some((f) => featureKey(f) === state.feature)) {
      state.feature = list.length > 0 ? featureKey(list[0]) : '';
    }
    const selected = () => list.find((f) => featureKey(f) === state.feature);

    const usageBox = h('div', { class: 'usage-chart' }, await usageChart(api, selected()));
    const select = h('select', {
      id: 'usage-feature',
      'data-test': 'usage-feature',
      value: state.feature,
      disabled: list.length === 0,
      onchange: () => {
        state.feature = select.value;
        track((async () => {
          const chart = await usageChart(api, selected());
          clear(usageBox).appendChild(chart);
        })().catch((e) => ctx.toast(e.message, 'error')));
      },
    }, list.map((f) => h('option', { value: featureKey(f) }, `${f.name} ${f.version}`)));

    root.replaceChildren(
      h('section', { class: 'cards', 'aria-label': 'Counts' },
        card('Features', features.total, '#/features', 'count-features'),
        card('Devices', devices.total, '#/devices', 'count-devices'),
        card('Devices online', online, '#/devices', 'count-online'),
        card('Reservations', reservations.total, '#/reservations', 'count-reservations')),
      h('section', { class: 'panel' },
        historyChart(history, { title: 'Devices online', field: 'devicesOnline', label: 'Online', test: 'chart-online', yLabel: 'Devices' })),
      h('section', { class: 'panel' },
        h('div', { class: 'toolbar' },
          h('label', { for: 'usage-feature' }, 'Feature '), select),
        usageBox));
  },
};
