// format.js turns API values into what the views show: dates, yes/no,
// status pills and label/value lists.

import { h } from './dom.js';

function pad(n) {
  return String(n).padStart(2, '0');
}

// toDate reads an RFC 3339 time; absent or Go's zero time is null.
export function toDate(value) {
  if (!value) return null;
  const d = value instanceof Date ? value : new Date(value);
  if (Number.isNaN(d.getTime()) || d.getUTCFullYear() <= 1) return null;
  return d;
}

// fmtDate is a local date: 2026-11-27.
export function fmtDate(value) {
  const d = toDate(value);
  if (!d) return '';
  return `${d.getFullYear()}-${pad(d.getMonth() + 1)}-${pad(d.getDate())}`;
}

// fmtDateTime is a local date and time: 2026-11-27 14:05.
export function fmtDateTime(value, seconds = false) {
  const d = toDate(value);
  if (!d) return '';
  const t = `${pad(d.getHours())}:${pad(d.getMinutes())}${seconds ? ':' + pad(d.getSeconds()) : ''}`;
  return `${fmtDate(d)} ${t}`;
}

// fmtExpiry is a date, or "permanent" when there is none.
export function fmtExpiry(value) {
  return toDate(value) ? fmtDate(value) : 'permanent';
}

export function yesNo(b) {
  return b ? 'yes' : 'no';
}

export function num(n) {
  return n === null || n === undefined || n === '' ? '' : String(n);
}

// pill is a status label; kind is ok, warn, bad or neutral.
export function pill(kind, text, attrs = {}) {
  return h('span', { class: `pill pill-${kind}`, ...attrs }, text);
}

// details is a label/value list; pairs are [label, value, test?]; a value
// may be a string or a Node; empty values show as a dash.
export function details(pairs, attrs = {}) {
  return h('dl', { class: 'details', ...attrs },
    pairs.filter(Boolean).map(([label, value, test]) => [
      h('dt', {}, label),
      h('dd', test ? { 'data-test': test } : {}, value === '' || value === null || value === undefined ? '—' : value),
    ]));
}

// hostid writes a hostid as VALUE (TYPE).
export function hostidText(id) {
  return id ? `${id.value} (${id.type})` : '';
}

// routeOf builds a hash route from segments, escaping each.
export function routeOf(...segments) {
  return '#/' + segments.map((s) => encodeURIComponent(String(s))).join('/');
}
