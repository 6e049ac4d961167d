// history.js reads GET /api/v1/history: samples every intervalSeconds of
// devices online and, for one feature, counts used. A node without
// history answers 404, which reads as null ("No history yet").

import { h } from './dom.js';
import { lineChart } from './chart.js';

export async function fetchHistory(api, feature, version) {
  try {
    const res = await api.get('/api/v1/history', feature ? { feature, version } : undefined);
    return res && Array.isArray(res.points) ? res : { intervalSeconds: 60, points: [] };
  } catch (e) {
    if (e && e.status === 404) return null;
    throw e;
  }
}

// historyChart is the chart of one history field, or "No history yet".
export function historyChart(history, { title, field, label, test, yLabel, extra }) {
  if (!history) {
    return h('div', { class: 'chart-box' },
      h('h3', { class: 'chart-heading' }, title),
      h('p', { class: 'muted no-history', 'data-test': 'no-history' }, 'No history yet'));
  }
  const series = [{ label, points: history.points.map((p) => ({ at: new Date(p.at), value: typeof p[field] === 'number' ? p[field] : null })) }];
  if (extra) series.push(...extra(history));
  return h('div', { class: 'chart-box' }, lineChart(series, { title, test, yLabel, empty: 'No samples yet' }));
}
