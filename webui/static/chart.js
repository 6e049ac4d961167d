// chart.js draws line charts as SVG (createElementNS through svg()): time
// on the x axis, counts on the y axis, a title and axis labels. Colours
// come from style.css (.series-N).

import { svg } from './dom.js';

const W = 960;
const H = 260;
const M = { top: 34, right: 18, bottom: 44, left: 56 };

function pad(n) {
  return String(n).padStart(2, '0');
}

// niceStep is a 1, 2 or 5 times a power of ten step near span/count.
function niceStep(span, count) {
  const raw = span / Math.max(1, count);
  const pow = 10 ** Math.floor(Math.log10(raw));
  const f = raw / pow;
  const nice = f <= 1 ? 1 : f <= 2 ? 2 : f <= 5 ? 5 : 10;
  return Math.max(1, nice * pow);
}

const TIME_STEPS = [60, 300, 600, 900, 1800, 3600, 7200, 10800, 21600, 43200, 86400, 172800, 604800].map((s) => s * 1000);

function timeLabel(d, spanMs) {
  const hm = `${pad(d.getHours())}:${pad(d.getMinutes())}`;
  const md = `${pad(d.getMonth() + 1)}-${pad(d.getDate())}`;
  if (spanMs <= 36 * 3600 * 1000) return hm;
  if (spanMs <= 7 * 86400 * 1000) return `${md} ${hm}`;
  return md;
}

function normalize(series, opts) {
  // lineChart(points, {label}) is accepted too: one series of points.
  if (Array.isArray(series) && series.length > 0 && series[0] && 'at' in series[0]) {
    return [{ label: opts.label || '', points: series }];
  }
  return (Array.isArray(series) ? series : []).map((s) => ({
    label: s.label || '',
    points: (s.points || [])
      .map((p) => ({ at: p.at instanceof Date ? p.at : new Date(p.at), value: p.value }))
      .filter((p) => !Number.isNaN(p.at.getTime())),
  }));
}

// lineChart(series, opts) returns an <svg>. series: [{label, points: [{at:
// Date, value}]}]; a value of null breaks the line. opts: title, yLabel,
// xLabel (default "Time"), test (data-test of the svg), empty (text when
// there are no points).
export function lineChart(series, opts = {}) {
  const data = normalize(series, opts);
  const title = opts.title || opts.label || '';
  const root = svg('svg', {
    class: 'chart',
    viewBox: `0 0 ${W} ${H}`,
    role: 'img',
    'aria-label': title,
    'data-test': opts.test || 'chart',
    preserveAspectRatio: 'xMidYMid meet',
  }, svg('title', {}, title));
  root.appendChild(svg('text', { class: 'chart-title', x: M.left, y: 20 }, title));

  const all = data.flatMap((s) => s.points.filter((p) => typeof p.value === 'number' && Number.isFinite(p.value)));
  const plotW = W - M.left - M.right;
  const plotH = H - M.top - M.bottom;

  // Axes frame.
  root.appendChild(svg('line', { class: 'axis', x1: M.left, y1: M.top + plotH, x2: M.left + plotW, y2: M.top + plotH }));
  root.appendChild(svg('line', { class: 'axis', x1: M.left, y1: M.top, x2: M.left, y2: M.top + plotH }));
  root.appendChild(svg('text', { class: 'axis-label', x: M.left + plotW / 2, y: H - 6, 'text-anchor': 'middle' }, opts.xLabel || 'Time'));
  if (opts.yLabel) {
    root.appendChild(svg('text', {
      class: 'axis-label', x: 0, y: 0, 'text-anchor': 'middle',
      transform: `translate(14 ${M.top + plotH / 2}) rotate(-90)`,
    }, opts.yLabel));
  }

  if (all.length === 0) {
    root.appendChild(svg('text', { class: 'chart-empty', x: M.left + plotW / 2, y: M.top + plotH / 2, 'text-anchor': 'middle' }, opts.empty || 'No data'));
    return root;
  }

  let tMin = Infinity;
  let tMax = -Infinity;
  let vMax = 1;
  let vMin = 0;
  for (const p of all) {
    const t = p.at.getTime();
    if (t < tMin) tMin = t;
    if (t > tMax) tMax = t;
    if (p.value > vMax) vMax = p.value;
    if (p.value < vMin) vMin = p.value;
  }
  if (tMin === tMax) {
    tMin -= 30 * 60 * 1000;
    tMax += 30 * 60 * 1000;
  }
  const yStep = niceStep(vMax - vMin, 4);
  const yTop = Math.ceil(vMax / yStep) * yStep;
  const yBottom = Math.floor(vMin / yStep) * yStep;

  const x = (t) => M.left + ((t - tMin) / (tMax - tMin)) * plotW;
  const y = (v) => M.top + plotH - ((v - yBottom) / (yTop - yBottom)) * plotH;

  // Y ticks and grid.
  for (let v = yBottom; v <= yTop + yStep / 2; v += yStep) {
    const yy = y(v);
    root.appendChild(svg('line', { class: 'grid', x1: M.left, y1: yy, x2: M.left + plotW, y2: yy }));
    root.appendChild(svg('text', { class: 'tick', x: M.left - 6, y: yy + 4, 'text-anchor': 'end' }, String(Math.round(v * 100) / 100)));
  }

  // X ticks on round times.
  const span = tMax - tMin;
  const step = TIME_STEPS.find((s) => span / s <= 6) || TIME_STEPS[TIME_STEPS.length - 1];
  const tzOffset = new Date(tMin).getTimezoneOffset() * 60000;
  const first = Math.ceil((tMin - tzOffset) / step) * step + tzOffset;
  for (let t = first; t <= tMax; t += step) {
    const xx = x(t);
    root.appendChild(svg('line', { class: 'tick-mark', x1: xx, y1: M.top + plotH, x2: xx, y2: M.top + plotH + 5 }));
    root.appendChild(svg('text', { class: 'tick', x: xx, y: M.top + plotH + 18, 'text-anchor': 'middle' }, timeLabel(new Date(t), span)));
  }

  // Lines.
  data.forEach((s, i) => {
    const cls = `series series-${i % 6}`;
    const pts = s.points;
    let d = '';
    let pen = false;
    let drawn = 0;
    for (const p of pts) {
      if (typeof p.value !== 'number' || !Number.isFinite(p.value)) {
        pen = false;
        continue;
      }
      d += `${pen ? 'L' : 'M'}${x(p.at.getTime()).toFixed(1)} ${y(p.value).toFixed(1)}`;
      pen = true;
      drawn++;
    }
    if (drawn > 1) root.appendChild(svg('path', { class: cls, d, fill: 'none' }));
    const valid = pts.filter((p) => typeof p.value === 'number' && Number.isFinite(p.value));
    if (valid.length === 1 || (valid.length > 0 && valid.length <= 60)) {
      for (const p of valid) {
        root.appendChild(svg('circle', { class: `${cls} dot`, cx: x(p.at.getTime()).toFixed(1), cy: y(p.value).toFixed(1), r: 3 },
          svg('title', {}, `${s.label ? s.label + ': ' : ''}${p.value} at ${p.at.toLocaleString()}`)));
      }
    }
  });

  // Legend.
  const labelled = data.filter((s) => s.label);
  let lx = M.left + plotW;
  for (let i = labelled.length - 1; i >= 0; i--) {
    const s = labelled[i];
    const last = [...s.points].reverse().find((p) => typeof p.value === 'number');
    const text = last ? `${s.label}: ${last.value}` : s.label;
    const width = 14 + text.length * 7;
    lx -= width;
    root.appendChild(svg('rect', { class: `legend-swatch series-${data.indexOf(s) % 6}`, x: lx, y: 11, width: 10, height: 10 }));
    root.appendChild(svg('text', { class: 'legend', x: lx + 14, y: 20 }, text));
    lx -= 10;
  }
  return root;
}
