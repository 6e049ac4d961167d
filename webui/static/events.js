// events.js keeps the live connection to /api/v1/events. The first message
// carries the token; the server answers {"type":"ready"} and then
// {"type":"changed","topics":[…]} whenever something changes. A lost
// connection shows the live banner and is retried with backoff (1 s,
// doubling to 15 s); whenever the connection becomes ready subscribers hear
// "all", since changes may have been missed before it was.

import { getSession } from './api.js';
import { eventsURL } from './prefs.js';

const MIN_DELAY = 1000;
const MAX_DELAY = 15000;

const subscribers = new Set();
let socket = null;
let running = false;
let delay = MIN_DELAY;
let timer = null;
let down = false;
let onAuthError = null;

function banner() {
  return document.querySelector('[data-test=live-banner]');
}

function setDown(isDown) {
  down = isDown;
  const el = banner();
  if (el) el.hidden = !isDown;
  setLive(false);
}

// setLive marks the page while the connection is ready; tests wait for it
// before acting on a view.
function setLive(live) {
  if (live) document.body.dataset.live = '1';
  else delete document.body.dataset.live;
}

function notify(topics) {
  for (const fn of subscribers) {
    try {
      fn(topics);
    } catch (e) {
      console.error('events subscriber', e);
    }
  }
}

function scheduleReconnect() {
  if (!running || timer) return;
  setDown(true);
  timer = setTimeout(() => {
    timer = null;
    connect();
  }, delay);
  delay = Math.min(delay * 2, MAX_DELAY);
}

function connect() {
  const session = getSession();
  if (!running || !session) return;
  let ws;
  try {
    ws = new WebSocket(eventsURL());
  } catch (e) {
    console.error('events', e);
    scheduleReconnect();
    return;
  }
  socket = ws;
  ws.addEventListener('open', () => {
    ws.send(JSON.stringify({ token: session.token }));
  });
  ws.addEventListener('message', (ev) => {
    if (ws !== socket) return;
    let msg;
    try {
      msg = JSON.parse(ev.data);
    } catch {
      return;
    }
    if (!msg || typeof msg !== 'object') return;
    if (msg.type === 'ready') {
      delay = MIN_DELAY;
      setDown(false);
      setLive(true);
      // Changes made before this connection was ready were not told to
      // it: the first time because the view loaded before it, later
      // because the connection was down.
      notify(['all']);
    } else if (msg.type === 'changed') {
      notify(Array.isArray(msg.topics) ? msg.topics.map(String) : ['all']);
    } else if (msg.type === 'error') {
      if (msg.code === 'token_expired' || msg.code === 'unauthorized') {
        stopEvents();
        if (onAuthError) onAuthError(msg);
      } else {
        console.warn('events:', msg.error || msg.code);
      }
    }
  });
  ws.addEventListener('close', () => {
    if (ws !== socket) return;
    socket = null;
    scheduleReconnect();
  });
  ws.addEventListener('error', () => {
    // A close event follows and schedules the reconnect.
  });
}

// startEvents opens the connection (once); authError(msg) is called when
// the server refuses the token.
export function startEvents(authError) {
  onAuthError = authError || null;
  if (running) return;
  running = true;
  delay = MIN_DELAY;
  connect();
}

// stopEvents closes the connection and hides the banner.
export function stopEvents() {
  running = false;
  if (timer) {
    clearTimeout(timer);
    timer = null;
  }
  const ws = socket;
  socket = null;
  if (ws) {
    try {
      ws.close(1000, 'logout');
    } catch {
      // Already closed.
    }
  }
  setDown(false);
}

// restartEvents reconnects, e.g. after the server settings changed.
export function restartEvents() {
  if (!running) return;
  stopEvents();
  startEvents(onAuthError);
}

// subscribe calls fn(topics) for every change; it returns the unsubscribe.
export function subscribe(fn) {
  subscribers.add(fn);
  return () => subscribers.delete(fn);
}

// isLive tells whether the connection is up.
export function isLive() {
  return running && !down && socket !== null;
}
