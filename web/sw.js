/*
 * sw.js: the service worker of the reference web inbox (docs/device-protocol.md).
 *
 * Registered by app.js with scope /web/ once the browser is a device of a
 * number. A push from pushgated (Web Push) carries either the WebSocket's
 * msg frame or {"type":"wake"} (the message did not fit in one push: fetch
 * GET /v1/device/pending). Each message is stored in the inbox the page reads
 * (IndexedDB DB_NAME, store DB_STORE), a repeated id only once, then shown as
 * a notification and acknowledged with POST /v1/device/acks, the device token
 * read from the record the page keeps in DB_DEVICE. Ack only after the store
 * committed, as the page does. Everything in a push or an answer is untrusted:
 * checked field by field as app.js checks socket frames.
 */
'use strict';

const DB_NAME = 'pushgate-inbox';
const DB_VERSION = 2;
const DB_STORE = 'messages';
const DB_DEVICE = 'device';          // one record, key 'current': {device_id, msisdn, token}
const HTTP_TIMEOUT_MS = 15000;
const MAX_PAYLOAD = 8192;            // a push carries at most 4 KiB
const MAX_PENDING_BYTES = 4 << 20;
const MAX_PENDING = 1000;            // the acks call takes at most this many ids
const MAX_SENDER = 64;
const MAX_TEXT = 65536;
const MAX_BODY = 240;                // notification body, characters

self.addEventListener('install', () => self.skipWaiting());

/* ------------------------------------------------------------- IndexedDB */

/* The same schema and upgrade as app.js: whichever opens first creates it. */
function openDb() {
  return new Promise((resolve, reject) => {
    const req = indexedDB.open(DB_NAME, DB_VERSION);
    req.onupgradeneeded = () => {
      const db = req.result;
      if (!db.objectStoreNames.contains(DB_STORE)) db.createObjectStore(DB_STORE, { keyPath: 'id' });
      if (!db.objectStoreNames.contains(DB_DEVICE)) db.createObjectStore(DB_DEVICE);
    };
    req.onsuccess = () => {
      const db = req.result;
      db.onversionchange = () => db.close();
      resolve(db);
    };
    req.onerror = () => reject(req.error);
    req.onblocked = () => reject(new Error('IndexedDB blocked'));
  });
}

function isBoundedString(v, max) {
  return typeof v === 'string' && v.length > 0 && v.length <= max;
}

async function readDevice(db) {
  const d = await new Promise((resolve, reject) => {
    const req = db.transaction(DB_DEVICE, 'readonly').objectStore(DB_DEVICE).get('current');
    req.onsuccess = () => resolve(req.result);
    req.onerror = () => reject(req.error);
  });
  return d && Number.isSafeInteger(d.device_id) && isBoundedString(d.token, 512) &&
    isBoundedString(d.msisdn, 32) ? d : null;
}

/* Stores the messages not stored yet in one transaction; resolves, once it
 * committed, to those it added (a repeated id keeps what the inbox has). */
function storeNew(db, list) {
  return new Promise((resolve, reject) => {
    const tx = db.transaction(DB_STORE, 'readwrite');
    const os = tx.objectStore(DB_STORE);
    const added = [];
    for (const m of list) {
      const req = os.getKey(m.id);
      req.onsuccess = () => {
        if (req.result === undefined) { os.put(m); added.push(m); }
      };
    }
    tx.oncomplete = () => resolve(added);
    tx.onerror = () => reject(tx.error);
    tx.onabort = () => reject(tx.error || new Error('aborted'));
  });
}

/* --------------------------------------------------------------- network */

async function api(method, path, body, token) {
  const headers = { Accept: 'application/json', Authorization: 'Bearer ' + token };
  if (body !== undefined) headers['Content-Type'] = 'application/json';
  const ctl = new AbortController();
  const timer = setTimeout(() => ctl.abort(), HTTP_TIMEOUT_MS);
  try {
    const r = await fetch(path, {
      method, headers, signal: ctl.signal, cache: 'no-store', credentials: 'omit',
      body: body === undefined ? undefined : JSON.stringify(body),
    });
    const raw = await r.text();
    return { status: r.status, raw };
  } finally {
    clearTimeout(timer);
  }
}

/* A msg frame (push payload or an entry of /v1/device/pending) as the inbox
 * keeps it, or null when a field is missing or out of bounds. */
function toMessage(f) {
  if (!f || typeof f !== 'object' || f.type !== 'msg') return null;
  if (!Number.isSafeInteger(f.id) || f.id <= 0) return null;
  if (!isBoundedString(f.sender, MAX_SENDER) || typeof f.text !== 'string' ||
      f.text.length > MAX_TEXT) return null;
  const sentAt = typeof f.sent_at === 'string' ? Date.parse(f.sent_at) : NaN;
  return {
    id: f.id,
    sender: f.sender,
    name: isBoundedString(f.sender_name, MAX_SENDER) ? f.sender_name : f.sender,
    folder: isBoundedString(f.folder, MAX_SENDER) ? f.folder : f.sender,
    text: f.text,
    at: Number.isFinite(sentAt) ? sentAt : Date.now(),
    received: Date.now(),
    read: false,
  };
}

function parsePayload(data) {
  if (!data) return null;
  let text;
  try { text = data.text(); } catch (e) { return null; }
  if (text.length > MAX_PAYLOAD) return null;
  try {
    const f = JSON.parse(text);
    return f && typeof f === 'object' && typeof f.type === 'string' ? f : null;
  } catch (e) {
    return null;
  }
}

async function fetchPending(device) {
  const r = await api('GET', '/v1/device/pending', undefined, device.token);
  if (r.status !== 200 || r.raw.length > MAX_PENDING_BYTES) throw new Error('pending: HTTP ' + r.status);
  const data = JSON.parse(r.raw);
  if (!data || !Array.isArray(data.messages)) throw new Error('pending: no messages array');
  const out = [];
  for (const f of data.messages.slice(0, MAX_PENDING)) {
    const m = toMessage(f);
    if (m) out.push(m);
  }
  return out;
}

/* ----------------------------------------------------------------- push */

function preview(text) {
  return text.length > MAX_BODY ? text.slice(0, MAX_BODY - 1) + '…' : text;
}

function notifyOne(m) {
  return self.registration.showNotification(m.name, {
    body: preview(m.text), tag: String(m.id), data: { id: m.id, folder: m.folder },
  });
}

/* Tell an open inbox page to read the store again. */
async function tellPages(added) {
  const pages = await self.clients.matchAll({ type: 'window', includeUncontrolled: true });
  for (const c of pages) c.postMessage({ type: 'stored', ids: added.map((m) => m.id) });
}

async function onPush(f) {
  const db = await openDb();
  try {
    const device = await readDevice(db);
    if (!device) return;   // logged out here: nothing to store, nobody to ack for
    let list;
    if (f.type === 'msg') {
      const m = toMessage(f);
      if (!m) return;
      list = [m];
    } else if (f.type === 'wake') {
      list = await fetchPending(device);
      if (list.length === 0) return;
    } else {
      return;   // newer servers may send more types
    }
    const added = await storeNew(db, list);
    try {
      if (added.length) await tellPages(added);
      if (f.type === 'msg') {
        await notifyOne(list[0]);   // a repeat replaces its notification (same tag)
      } else if (added.length === 1) {
        await notifyOne(added[0]);
      } else if (added.length > 1) {
        await self.registration.showNotification(added.length + ' new messages', {
          body: Array.from(new Set(added.map((m) => m.name))).join(', ').slice(0, MAX_BODY),
          tag: 'pending', data: {},
        });
      }
    } catch (e) {
      console.warn('pushgate: stored but not shown', e);   // notifications off: still in the inbox
    }
    // Stored (now or before): acknowledge every one, acks are idempotent.
    const r = await api('POST', '/v1/device/acks', { ids: list.map((m) => m.id) }, device.token);
    if (r.status !== 200) console.warn('pushgate: acks answered HTTP', r.status);
  } finally {
    db.close();
  }
}

self.addEventListener('push', (event) => {
  const f = parsePayload(event.data);
  if (!f) return;
  event.waitUntil(onPush(f).catch((e) => console.error('pushgate: push not handled', e)));
});

self.addEventListener('notificationclick', (event) => {
  event.notification.close();
  event.waitUntil((async () => {
    const url = new URL('/', self.location.origin).href;
    const pages = await self.clients.matchAll({ type: 'window', includeUncontrolled: true });
    for (const c of pages) {
      if (new URL(c.url).pathname === '/' && 'focus' in c) return c.focus();
    }
    return self.clients.openWindow ? self.clients.openWindow(url) : undefined;
  })());
});
