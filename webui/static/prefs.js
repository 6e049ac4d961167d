// prefs.js holds the UI-local settings (localStorage): page size, the
// server to talk to, and whether the Devices view offers the drop button.
// They never reach the server, so they can be edited while it is away.

const KEY = 'tally.settings';

export const DEFAULTS = Object.freeze({
  pageSize: 25,
  host: '',
  port: '',
  https: true,
  allowDeviceDrop: false,
});

export const PAGE_SIZE_MIN = 10;
export const PAGE_SIZE_MAX = 500;

function sanitize(raw) {
  const s = { ...DEFAULTS };
  if (!raw || typeof raw !== 'object') return s;
  const size = Number(raw.pageSize);
  if (Number.isInteger(size) && size >= PAGE_SIZE_MIN && size <= PAGE_SIZE_MAX) s.pageSize = size;
  if (typeof raw.host === 'string') s.host = raw.host.trim();
  const port = Number(raw.port);
  if (raw.port !== '' && raw.port !== null && Number.isInteger(port) && port >= 1 && port <= 65535) s.port = port;
  if (typeof raw.https === 'boolean') s.https = raw.https;
  if (typeof raw.allowDeviceDrop === 'boolean') s.allowDeviceDrop = raw.allowDeviceDrop;
  return s;
}

function load() {
  try {
    return sanitize(JSON.parse(localStorage.getItem(KEY) || 'null'));
  } catch {
    return { ...DEFAULTS };
  }
}

// settings is the live settings object; saveSettings updates it in place.
export const settings = load();

const listeners = new Set();

// onSettingsChange calls fn(settings, previous) after every save.
export function onSettingsChange(fn) {
  listeners.add(fn);
  return () => listeners.delete(fn);
}

// saveSettings stores values (merged over the current settings) and returns
// the settings in force.
export function saveSettings(values) {
  const previous = { ...settings };
  Object.assign(settings, sanitize({ ...settings, ...values }));
  try {
    localStorage.setItem(KEY, JSON.stringify(settings));
  } catch {
    // Storage may be full or disabled; the settings still hold for this page.
  }
  for (const fn of listeners) fn(settings, previous);
  return settings;
}

// resetSettings puts the defaults back.
export function resetSettings() {
  try {
    localStorage.removeItem(KEY);
  } catch {
    // Nothing stored.
  }
  return saveSettings({ ...DEFAULTS });
}

function hostPart() {
  const host = settings.host.includes(':') && !settings.host.startsWith('[') ? `[${settings.host}]` : settings.host;
  return settings.port ? `${host}:${settings.port}` : host;
}

// apiBase is the origin API paths are resolved against: '' (this page's
// origin) unless a server host or port is set.
export function apiBase() {
  if (!settings.host && !settings.port) return '';
  const host = settings.host ? hostPart() : `${location.hostname}:${settings.port}`;
  return `${settings.https ? 'https' : 'http'}://${host}`;
}

// eventsURL is the WebSocket URL of the live events.
export function eventsURL() {
  if (!settings.host && !settings.port) {
    const scheme = location.protocol === 'http:' ? 'ws' : 'wss';
    return `${scheme}://${location.host}/api/v1/events`;
  }
  const host = settings.host ? hostPart() : `${location.hostname}:${settings.port}`;
  return `${settings.https ? 'wss' : 'ws'}://${host}/api/v1/events`;
}

// serverLabel names the server the UI talks to, for messages.
export function serverLabel() {
  return apiBase() || location.origin;
}
