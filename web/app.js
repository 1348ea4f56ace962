/*
 * app.js: the reference web inbox of pushgate (docs/device-protocol.md).
 *
 * Registers this browser as a device of a phone number (POST /v1/devices,
 * then the SMS code to /v1/devices/{id}/verify), keeps one WebSocket to
 * /v1/device open (hello with the token, reconnect with backoff 1 s doubling
 * to 60 s plus jitter), stores every message in IndexedDB (localStorage when
 * IndexedDB is unavailable) and acknowledges it only after the store has
 * committed it, so an acknowledged message is never lost by the page.
 *
 * Where the browser has a push service, it also registers the service worker
 * web/sw.js and gives pushgated the Web Push subscription (POST
 * /v1/device/wakeup), so messages reach the inbox while the page is closed;
 * the worker reads the device record the page keeps in IndexedDB (a worker
 * has no localStorage) and writes to the same message store. Without push
 * the page works on its WebSocket alone, as before.
 *
 * It owns the device token (localStorage), the local inbox and the rendering.
 * Everything from the network is untrusted: frames are checked field by field
 * and text is only ever put into the page as text, never as HTML.
 */
'use strict';

(function () {
  const KEY_DEVICE = 'pushgate.device';    // {device_id, msisdn, token}
  const KEY_PENDING = 'pushgate.pending';  // {device_id, msisdn, expires_at}
  const KEY_BLOCKED = 'pushgate.blocked';  // {sender: true} as the server last answered
  const KEY_INBOX = 'pushgate.inbox';      // messages, only without IndexedDB
  const DB_NAME = 'pushgate-inbox';
  const DB_VERSION = 2;                    // 2: the device store, for the service worker
  const DB_STORE = 'messages';
  const DB_DEVICE = 'device';              // key 'current': {device_id, msisdn, token}
  const SW_URL = '/web/sw.js';
  const SW_SCOPE = '/web/';
  const SW_ACTIVE_MS = 10000;

  const HTTP_TIMEOUT_MS = 15000;
  const WELCOME_TIMEOUT_MS = 15000;
  const ANSWER_TIMEOUT_MS = 10000;
  const BACKOFF_MIN_MS = 1000;
  const BACKOFF_MAX_MS = 60000;
  const MAX_SENDER = 64;
  const MAX_TEXT = 65536;
  const MAX_ID = Number.MAX_SAFE_INTEGER;

  const $ = (id) => document.getElementById(id);
  const el = {
    totalUnread: $('total-unread'), conn: $('conn'), connText: $('conn-text'),
    logout: $('logout'), register: $('register'), phoneForm: $('phone-form'),
    msisdn: $('msisdn'), sendCode: $('send-code'), codeForm: $('code-form'),
    codeSent: $('code-sent'), code: $('code'), verify: $('verify'), restart: $('restart'),
    registerError: $('register-error'), inbox: $('inbox'), me: $('me'), empty: $('empty'),
    folders: $('folders'), folder: $('folder'), back: $('back'), folderTitle: $('folder-title'),
    block: $('block'), blockState: $('block-state'), messages: $('messages'), toast: $('toast'),
  };

  /* Counters a test (or a curious user in the console) can read. */
  const stats = { stored: 0, duplicates: 0, acks: 0, beeps: 0, connects: 0, fromWorker: 0 };
  /* push: where Web Push set-up got to: off, unsupported, worker (registered),
   * no-key, denied, subscribing, subscribed or failed */
  const pushState = { state: 'off', detail: '' };
  window.pushgateInbox = { stats, push: pushState };

  let device = readJson(KEY_DEVICE);
  let blocked = readJson(KEY_BLOCKED) || {};
  const messages = new Map();   // id -> message
  let store = null;
  let current = null;           // open folder name, or null

  /* ---------------------------------------------------------------- utils */

  function readJson(key) {
    try {
      const v = JSON.parse(localStorage.getItem(key) || 'null');
      return v && typeof v === 'object' ? v : null;
    } catch (e) {
      return null;
    }
  }

  function writeJson(key, value) {
    if (value === null) localStorage.removeItem(key);
    else localStorage.setItem(key, JSON.stringify(value));
  }

  function isBoundedString(v, max) {
    return typeof v === 'string' && v.length > 0 && v.length <= max;
  }

  function validDevice(d) {
    return d && Number.isSafeInteger(d.device_id) && isBoundedString(d.token, 512) &&
      isBoundedString(d.msisdn, 32);
  }

  const fmtTime = new Intl.DateTimeFormat(undefined, { hour: '2-digit', minute: '2-digit' });
  const fmtDay = new Intl.DateTimeFormat(undefined,
    { month: 'short', day: 'numeric', hour: '2-digit', minute: '2-digit' });
  const fmtFull = new Intl.DateTimeFormat(undefined, { dateStyle: 'full', timeStyle: 'medium' });

  function shortTime(ms) {
    const d = new Date(ms);
    const now = new Date();
    const sameDay = d.getFullYear() === now.getFullYear() && d.getMonth() === now.getMonth() &&
      d.getDate() === now.getDate();
    return sameDay ? fmtTime.format(d) : fmtDay.format(d);
  }

  function node(tag, cls, text) {
    const n = document.createElement(tag);
    if (cls) n.className = cls;
    if (text !== undefined) n.textContent = text;
    return n;
  }

  /* -------------------------------------------------------------- storage */

  /* IndexedDB: one object store keyed by message id. put() resolves once the
   * transaction has committed; that is when the message may be acked. The
   * device store holds the device record for the service worker (sw.js opens
   * the same database with the same upgrade). */
  function openIdb() {
    return new Promise((resolve, reject) => {
      if (!window.indexedDB) { reject(new Error('no IndexedDB')); return; }
      const req = indexedDB.open(DB_NAME, DB_VERSION);
      req.onupgradeneeded = () => {
        const db = req.result;
        if (!db.objectStoreNames.contains(DB_STORE)) db.createObjectStore(DB_STORE, { keyPath: 'id' });
        if (!db.objectStoreNames.contains(DB_DEVICE)) db.createObjectStore(DB_DEVICE);
      };
      req.onsuccess = () => {
        req.result.onversionchange = () => req.result.close();
        resolve(req.result);
      };
      req.onerror = () => reject(req.error);
      req.onblocked = () => reject(new Error('IndexedDB blocked'));
    }).then((db) => ({
      loadAll() {
        return new Promise((resolve, reject) => {
          const req = db.transaction(DB_STORE, 'readonly').objectStore(DB_STORE).getAll();
          req.onsuccess = () => resolve(req.result || []);
          req.onerror = () => reject(req.error);
        });
      },
      put(list) {
        return new Promise((resolve, reject) => {
          const tx = db.transaction(DB_STORE, 'readwrite');
          const os = tx.objectStore(DB_STORE);
          for (const m of list) os.put(m);
          tx.oncomplete = () => resolve();
          tx.onerror = () => reject(tx.error);
          tx.onabort = () => reject(tx.error || new Error('aborted'));
        });
      },
      clear() {
        return new Promise((resolve) => {
          const tx = db.transaction([DB_STORE, DB_DEVICE], 'readwrite');
          tx.objectStore(DB_STORE).clear();
          tx.objectStore(DB_DEVICE).clear();
          tx.oncomplete = () => resolve();
          tx.onerror = () => resolve();
        });
      },
      /* The record the service worker acks with; null removes it. */
      setDevice(d) {
        return new Promise((resolve, reject) => {
          const tx = db.transaction(DB_DEVICE, 'readwrite');
          const os = tx.objectStore(DB_DEVICE);
          if (d) os.put({ device_id: d.device_id, msisdn: d.msisdn, token: d.token }, 'current');
          else os.delete('current');
          tx.oncomplete = () => resolve();
          tx.onerror = () => reject(tx.error);
          tx.onabort = () => reject(tx.error || new Error('aborted'));
        });
      },
    }));
  }

  /* The fallback keeps the whole inbox as one JSON array. */
  function localStore() {
    return {
      loadAll() {
        try {
          const v = JSON.parse(localStorage.getItem(KEY_INBOX) || '[]');
          return Promise.resolve(Array.isArray(v) ? v : []);
        } catch (e) {
          return Promise.resolve([]);
        }
      },
      put() {
        try {
          localStorage.setItem(KEY_INBOX, JSON.stringify(Array.from(messages.values())));
          return Promise.resolve();
        } catch (e) {
          return Promise.reject(e);
        }
      },
      clear() {
        localStorage.removeItem(KEY_INBOX);
        return Promise.resolve();
      },
      setDevice() {
        return Promise.reject(new Error('no IndexedDB for the service worker'));
      },
    };
  }

  function sane(m) {
    return m && Number.isSafeInteger(m.id) && isBoundedString(m.folder, MAX_SENDER) &&
      typeof m.text === 'string' && Number.isFinite(m.at);
  }

  /* -------------------------------------------------------------- backend */

  async function api(method, path, body, token) {
    const headers = { Accept: 'application/json' };
    if (body !== undefined) headers['Content-Type'] = 'application/json';
    if (token) headers.Authorization = 'Bearer ' + token;
    const ctl = new AbortController();
    const timer = setTimeout(() => ctl.abort(), HTTP_TIMEOUT_MS);
    try {
      const r = await fetch(path, {
        method, headers, signal: ctl.signal, cache: 'no-store', credentials: 'omit',
        body: body === undefined ? undefined : JSON.stringify(body),
      });
      const raw = await r.text();
      let data = null;
      try { data = raw ? JSON.parse(raw) : null; } catch (e) { data = null; }
      return { status: r.status, data, headers: r.headers };
    } catch (e) {
      return { status: 0, data: null, headers: new Headers(), failure: e };
    } finally {
      clearTimeout(timer);
    }
  }

  function serverError(r, fallback) {
    if (r.status === 0) return 'The server cannot be reached. Check the connection and try again.';
    const err = r.data && r.data.error;
    if (err && typeof err.message === 'string' && err.message.length < 300) return err.message;
    if (err && typeof err.code === 'string' && err.code.length < 100) return fallback + ' (' + err.code + ')';
    return fallback + ' (HTTP ' + r.status + ')';
  }

  /* -------------------------------------------------------- registration */

  function normaliseMsisdn(s) {
    let v = s.replace(/[\s\-().]/g, '');
    if (v.startsWith('+')) v = v.slice(1);
    else if (v.startsWith('00')) v = v.slice(2);
    return /^[1-9][0-9]{6,14}$/.test(v) ? v : null;
  }

  function showRegisterError(text) {
    el.registerError.textContent = text || '';
  }

  async function onPhoneSubmit(ev) {
    ev.preventDefault();
    showRegisterError('');
    const msisdn = normaliseMsisdn(el.msisdn.value);
    if (!msisdn) {
      showRegisterError('Enter the number with its country code, digits only (e.g. 821012345678).');
      el.msisdn.focus();
      return;
    }
    el.sendCode.disabled = true;
    el.sendCode.textContent = 'Sending…';
    const r = await api('POST', '/v1/devices', { msisdn, platform: 'web' });
    el.sendCode.disabled = false;
    el.sendCode.textContent = 'Send code';
    if (r.status === 429) {
      const wait = parseInt(r.headers.get('Retry-After') || '30', 10);
      showRegisterError('A code was sent a moment ago. Try again in ' +
        (Number.isFinite(wait) && wait > 0 && wait < 3600 ? wait : 30) + ' s.');
      return;
    }
    if ((r.status !== 202 && r.status !== 200) || !r.data ||
        !Number.isSafeInteger(r.data.device_id)) {
      showRegisterError(serverError(r, 'The code could not be sent'));
      return;
    }
    const ttl = Number.isSafeInteger(r.data.expires_in) && r.data.expires_in > 0 ? r.data.expires_in : 300;
    writeJson(KEY_PENDING, { device_id: r.data.device_id, msisdn, expires_at: Date.now() + ttl * 1000 });
    showCodeStep();
    // A demo server (otp_echo = yes) also answers the code: show it, as the SMS would.
    if (typeof r.data.code === 'string' && /^[0-9]{6}$/.test(r.data.code)) {
      el.codeSent.textContent += ' Demo server: the code is ' + r.data.code + '.';
      el.code.value = r.data.code;
    }
  }

  async function onCodeSubmit(ev) {
    ev.preventDefault();
    showRegisterError('');
    const pending = readJson(KEY_PENDING);
    if (!pending || !Number.isSafeInteger(pending.device_id)) { showPhoneStep(); return; }
    const code = el.code.value.replace(/\s/g, '');
    if (!/^[0-9]{4,8}$/.test(code)) {
      showRegisterError('Enter the code from the SMS (digits only).');
      el.code.focus();
      return;
    }
    el.verify.disabled = true;
    el.verify.textContent = 'Checking…';
    const r = await api('POST', '/v1/devices/' + pending.device_id + '/verify', { code });
    el.verify.disabled = false;
    el.verify.textContent = 'Verify';
    if (r.status === 410) {
      writeJson(KEY_PENDING, null);
      showPhoneStep();
      showRegisterError('That code has expired or was tried too often. Request a new one.');
      return;
    }
    if (r.status === 400 && r.data && r.data.error && r.data.error.code === 'invalid_code') {
      showRegisterError('That code is not right. Check the SMS and try again.');
      el.code.select();
      return;
    }
    const d = r.data && { device_id: r.data.device_id, msisdn: r.data.msisdn, token: r.data.token };
    if (r.status !== 200 || !validDevice(d)) {
      showRegisterError(serverError(r, 'The code could not be checked'));
      return;
    }
    writeJson(KEY_PENDING, null);
    writeJson(KEY_DEVICE, d);
    device = d;
    el.code.value = '';
    showInbox();
    connect();
    // Still within the click on Verify: the browser may ask about notifications now.
    enablePush(true);
  }

  function showPhoneStep() {
    el.phoneForm.hidden = false;
    el.codeForm.hidden = true;
  }

  function showCodeStep() {
    const pending = readJson(KEY_PENDING);
    el.phoneForm.hidden = true;
    el.codeForm.hidden = false;
    el.codeSent.textContent = 'We sent a code by SMS to +' + (pending ? pending.msisdn : '') + '.';
    el.code.focus();
  }

  function showRegister() {
    el.register.hidden = false;
    el.inbox.hidden = true;
    el.logout.hidden = true;
    const pending = readJson(KEY_PENDING);
    if (pending && Number.isSafeInteger(pending.device_id) && pending.expires_at > Date.now()) {
      showCodeStep();
    } else {
      writeJson(KEY_PENDING, null);
      showPhoneStep();
    }
  }

  function showInbox() {
    el.register.hidden = true;
    el.inbox.hidden = false;
    el.logout.hidden = false;
    el.me.textContent = device ? '· +' + device.msisdn : '';
    render();
  }

  /* Forget this device here: close the socket, revoke the token on the
   * server (best effort) and clear everything stored locally. */
  async function logout(reason) {
    const old = device;
    device = null;
    writeJson(KEY_DEVICE, null);
    disconnect();
    if (old && reason === 'user') {
      el.logout.disabled = true;
      await disablePush(old.token);
      const r = await api('DELETE', '/v1/devices/' + old.device_id, undefined, old.token);
      el.logout.disabled = false;
      if (r.status !== 204 && r.status !== 404 && r.status !== 401) {
        toast('Logged out here; the server could not be told (' +
          (r.status || 'no connection') + ').');
      }
    } else {
      await disablePush(null);   // refused: the server has forgotten this device already
    }
    messages.clear();
    blocked = {};
    writeJson(KEY_BLOCKED, null);
    writeJson(KEY_PENDING, null);
    if (store) await store.clear();
    current = null;
    if (location.hash) history.replaceState(null, '', location.pathname);
    setConn('off', 'Not registered');
    renderBadge();
    showRegister();
  }

  /* ------------------------------------------------------------ WebSocket */

  const conn = {
    ws: null, attempt: 0, retryTimer: null, welcomeTimer: null, beatTimer: null,
    lastRx: 0, heartbeatMs: 30000, live: false,
  };
  const awaiting = new Map();   // sender -> {action, timer}

  function setConn(state, text) {
    el.conn.dataset.state = state;
    el.connText.textContent = text;
    el.block.disabled = !conn.live || awaiting.size > 0;
  }

  function send(frame) {
    if (!conn.ws || conn.ws.readyState !== WebSocket.OPEN) return false;
    conn.ws.send(JSON.stringify(frame));
    return true;
  }

  function connect() {
    if (!device) return;
    clearTimeout(conn.retryTimer);
    conn.retryTimer = null;
    if (conn.ws) return;
    setConn('connecting', 'Connecting…');
    const url = (location.protocol === 'https:' ? 'wss://' : 'ws://') + location.host + '/v1/device';
    let ws;
    try {
      ws = new WebSocket(url);
    } catch (e) {
      scheduleReconnect();
      return;
    }
    conn.ws = ws;
    stats.connects++;
    ws.onopen = () => {
      if (ws !== conn.ws || !device) return;
      send({ type: 'hello', token: device.token });
      conn.welcomeTimer = setTimeout(() => dropConnection(ws), WELCOME_TIMEOUT_MS);
    };
    ws.onmessage = (ev) => {
      if (ws !== conn.ws) return;
      conn.lastRx = Date.now();
      onFrame(ev.data);
    };
    ws.onclose = (ev) => {
      if (ws !== conn.ws) return;
      conn.ws = null;
      stopTimers();
      if (ev.code === 1008 && device) {
        // The server refused the token: revoked, or registered elsewhere.
        logout('refused').then(() => showRegisterError(
          'This browser is no longer registered for that number. Register again.'));
        return;
      }
      scheduleReconnect();
    };
    ws.onerror = () => { /* a close event follows */ };
  }

  function stopTimers() {
    clearTimeout(conn.welcomeTimer);
    clearInterval(conn.beatTimer);
    conn.welcomeTimer = null;
    conn.beatTimer = null;
    conn.live = false;
    for (const [, a] of awaiting) clearTimeout(a.timer);
    awaiting.clear();
  }

  /* Give up on a connection now (no welcome, no traffic): the close
   * handshake of a dead link may take minutes, so do not wait for it. */
  function dropConnection(ws) {
    if (ws !== conn.ws) return;
    conn.ws = null;
    stopTimers();
    try { ws.close(4000, 'timeout'); } catch (e) { /* already closing */ }
    scheduleReconnect();
  }

  function disconnect() {
    clearTimeout(conn.retryTimer);
    conn.retryTimer = null;
    const ws = conn.ws;
    conn.ws = null;
    stopTimers();
    if (ws) { try { ws.close(1000, 'bye'); } catch (e) { /* ignore */ } }
    conn.attempt = 0;
  }

  function scheduleReconnect() {
    if (!device) return;
    const base = Math.min(BACKOFF_MAX_MS, BACKOFF_MIN_MS * Math.pow(2, conn.attempt));
    const delay = base + Math.floor(Math.random() * base * 0.25);
    conn.attempt = Math.min(conn.attempt + 1, 16);
    setConn('offline', 'Offline · retrying in ' + Math.ceil(delay / 1000) + ' s');
    renderFolder();
    conn.retryTimer = setTimeout(connect, delay);
  }

  function onFrame(data) {
    if (typeof data !== 'string' || data.length > 65536) return;
    let f;
    try { f = JSON.parse(data); } catch (e) { return; }
    if (!f || typeof f !== 'object' || typeof f.type !== 'string') return;
    switch (f.type) {
      case 'welcome': onWelcome(f); break;
      case 'msg': onMessage(f); break;
      case 'rejected': onBlockAnswer(f, true); break;
      case 'allowed': onBlockAnswer(f, false); break;
      case 'pong': break;
      case 'error':
        console.warn('pushgate: server error frame', String(f.code).slice(0, 100),
          String(f.message).slice(0, 300));
        break;
      default: break;   // newer servers may send more types
    }
  }

  function onWelcome(f) {
    clearTimeout(conn.welcomeTimer);
    conn.welcomeTimer = null;
    conn.attempt = 0;
    conn.live = true;
    const hb = Number.isSafeInteger(f.heartbeat) ? Math.min(Math.max(f.heartbeat, 5), 300) : 30;
    conn.heartbeatMs = hb * 1000;
    clearInterval(conn.beatTimer);
    const ws = conn.ws;
    conn.beatTimer = setInterval(() => {
      if (Date.now() - conn.lastRx > 3 * conn.heartbeatMs) dropConnection(ws);
      else send({ type: 'ping' });
    }, conn.heartbeatMs);
    setConn('live', 'Live');
    renderFolder();
  }

  /* --------------------------------------------------------------- inbox */

  let pendingNew = [];
  let announceTimer = null;

  function onMessage(f) {
    if (!Number.isSafeInteger(f.id) || f.id <= 0 || f.id > MAX_ID) return;
    if (!isBoundedString(f.sender, MAX_SENDER) || typeof f.text !== 'string' ||
        f.text.length > MAX_TEXT) return;
    const id = f.id;
    const ws = conn.ws;
    const ack = () => { if (ws === conn.ws && send({ type: 'ack', id })) stats.acks++; };
    if (messages.has(id)) {
      stats.duplicates++;
      ack();
      return;
    }
    const sentAt = typeof f.sent_at === 'string' ? Date.parse(f.sent_at) : NaN;
    const m = {
      id,
      sender: f.sender,
      name: isBoundedString(f.sender_name, MAX_SENDER) ? f.sender_name : f.sender,
      folder: isBoundedString(f.folder, MAX_SENDER) ? f.folder : f.sender,
      text: f.text,
      at: Number.isFinite(sentAt) ? sentAt : Date.now(),
      received: Date.now(),
      read: false,   // render() marks it read if its folder is open
    };
    messages.set(id, m);
    store.put([m]).then(() => {
      stats.stored++;
      ack();
      render();
      announce(m);
    }, (e) => {
      // Not stored: no ack, so the server sends it again later.
      messages.delete(id);
      console.error('pushgate: could not store message', id, e);
      toast('A message could not be saved on this device; it will come again.');
    });
  }

  /* One toast and one beep for a burst (the backlog after a reconnect). */
  function announce(m) {
    pendingNew.push(m);
    if (announceTimer) return;
    announceTimer = setTimeout(() => {
      const list = pendingNew;
      pendingNew = [];
      announceTimer = null;
      if (list.length === 1) {
        const one = list[0];
        const preview = one.text.length > 80 ? one.text.slice(0, 79) + '…' : one.text;
        toast('New message from ' + one.name + ': ' + preview);
      } else {
        toast(list.length + ' new messages');
      }
      beep();
    }, 150);
  }

  function onBlockAnswer(f, isBlocked) {
    if (!isBoundedString(f.sender, MAX_SENDER)) return;
    const a = awaiting.get(f.sender);
    if (a) { clearTimeout(a.timer); awaiting.delete(f.sender); }
    if (isBlocked) blocked[f.sender] = true;
    else delete blocked[f.sender];
    writeJson(KEY_BLOCKED, blocked);
    toast(isBlocked ? f.sender + ' is blocked: its messages no longer come here.'
      : f.sender + ' is allowed again.');
    render();
  }

  function senderOfFolder(folder) {
    let best = null;
    for (const m of messages.values()) {
      if (m.folder === folder && (!best || m.at > best.at)) best = m;
    }
    return best ? best.sender : folder;
  }

  function onBlockClick() {
    if (current === null) return;
    const sender = senderOfFolder(current);
    if (awaiting.has(sender)) return;
    const action = blocked[sender] ? 'allow' : 'reject';
    if (!send({ type: action, sender })) {
      toast('Not connected: try again when the inbox is live.');
      return;
    }
    const timer = setTimeout(() => {
      awaiting.delete(sender);
      toast('No answer from the server; the change may not have been made.');
      renderFolder();
    }, ANSWER_TIMEOUT_MS);
    awaiting.set(sender, { action, timer });
    renderFolder();
  }

  function folderList() {
    const byFolder = new Map();
    for (const m of messages.values()) {
      let f = byFolder.get(m.folder);
      if (!f) {
        f = { name: m.folder, title: m.name, sender: m.sender, unread: 0, last: m };
        byFolder.set(m.folder, f);
      }
      if (!m.read) f.unread++;
      if (m.at > f.last.at || (m.at === f.last.at && m.id > f.last.id)) {
        f.last = m;
        f.title = m.name;
        f.sender = m.sender;
      }
    }
    return Array.from(byFolder.values()).sort((a, b) => b.last.at - a.last.at || b.last.id - a.last.id);
  }

  function unreadTotal() {
    let n = 0;
    for (const m of messages.values()) if (!m.read) n++;
    return n;
  }

  function renderBadge() {
    const n = unreadTotal();
    el.totalUnread.hidden = n === 0;
    el.totalUnread.textContent = String(n);
    el.totalUnread.setAttribute('aria-label', n + ' unread');
    document.title = (n > 0 ? '(' + n + ') ' : '') + 'pushgate inbox';
  }

  function renderFolders() {
    const list = folderList();
    el.empty.hidden = list.length > 0;
    el.folders.replaceChildren();
    for (const f of list) {
      const li = node('li');
      const a = node('a', 'folder-item');
      a.href = '#/f/' + encodeURIComponent(f.name);
      a.dataset.folder = f.name;
      if (f.name === current) a.setAttribute('aria-current', 'page');
      if (f.unread > 0) a.classList.add('has-unread');
      const top = node('span', 'fi-top');
      top.append(node('span', 'fi-name', f.title));
      if (blocked[f.sender]) top.append(node('span', 'tag', 'Blocked'));
      const time = node('time', 'fi-time', shortTime(f.last.at));
      time.dateTime = new Date(f.last.at).toISOString();
      top.append(time);
      const bottom = node('span', 'fi-bottom');
      bottom.append(node('span', 'fi-preview', f.last.text));
      if (f.unread > 0) {
        const b = node('span', 'badge', String(f.unread));
        b.dataset.unread = String(f.unread);
        b.setAttribute('aria-label', f.unread + ' unread');
        bottom.append(b);
      }
      a.append(top, bottom);
      li.append(a);
      el.folders.append(li);
    }
  }

  function renderFolder() {
    el.block.disabled = !conn.live || awaiting.size > 0;
    if (current === null) {
      el.folder.hidden = true;
      el.inbox.classList.remove('open');
      return;
    }
    el.folder.hidden = false;
    el.inbox.classList.add('open');
    const list = Array.from(messages.values()).filter((m) => m.folder === current)
      .sort((a, b) => b.at - a.at || b.id - a.id);
    const sender = senderOfFolder(current);
    el.folderTitle.textContent = list.length ? list[0].name : current;
    el.folder.dataset.folder = current;
    const isBlocked = !!blocked[sender];
    const pending = awaiting.get(sender);
    el.block.textContent = pending ? (pending.action === 'reject' ? 'Rejecting…' : 'Allowing…')
      : (isBlocked ? 'Allow' : 'Reject');
    el.block.className = 'btn ' + (isBlocked ? 'btn-ok' : 'btn-danger');
    el.block.dataset.blocked = isBlocked ? 'yes' : 'no';
    el.blockState.textContent = isBlocked
      ? 'Blocked: messages from ' + sender + ' no longer come to this app.'
      : (conn.live ? 'Messages from ' + sender + ' come here.'
        : 'Reject and Allow work while the inbox is live.');
    el.messages.replaceChildren();
    for (const m of list) {
      const li = node('li', 'msg');
      li.dataset.id = String(m.id);
      const time = node('time', 'msg-time', shortTime(m.at));
      time.dateTime = new Date(m.at).toISOString();
      time.title = fmtFull.format(new Date(m.at));
      li.append(node('p', 'msg-text', m.text), time);
      el.messages.append(li);
    }
  }

  function render() {
    if (current !== null && document.visibilityState === 'visible') markRead(current);
    renderBadge();
    renderFolders();
    renderFolder();
  }

  function markRead(folder) {
    const changed = [];
    for (const m of messages.values()) {
      if (m.folder === folder && !m.read) { m.read = true; changed.push(m); }
    }
    if (changed.length && store) {
      store.put(changed).catch((e) => console.error('pushgate: could not save read state', e));
    }
  }

  function onRoute() {
    const h = location.hash;
    let folder = null;
    if (h.startsWith('#/f/')) {
      try { folder = decodeURIComponent(h.slice(4)); } catch (e) { folder = null; }
      if (folder !== null && !isBoundedString(folder, MAX_SENDER)) folder = null;
    }
    current = folder;
    render();
    if (folder !== null) el.folderTitle.focus({ preventScroll: true });
  }

  /* ------------------------------------------------------------ Web Push */

  function pushSupported() {
    return 'serviceWorker' in navigator && 'PushManager' in window && 'Notification' in window;
  }

  function setPush(state, detail) {
    pushState.state = state;
    pushState.detail = detail ? String(detail).slice(0, 200) : '';
  }

  function b64urlBytes(s) {
    const bin = atob(s.replace(/-/g, '+').replace(/_/g, '/') + '==='.slice((s.length + 3) % 4));
    return Uint8Array.from(bin, (c) => c.charCodeAt(0));
  }

  function sameBytes(buf, bytes) {
    if (!buf || buf.byteLength !== bytes.length) return false;
    const a = new Uint8Array(buf);
    return a.every((v, i) => v === bytes[i]);
  }

  /* The registration once it has an active worker (the page at / is outside
   * the worker's scope, so navigator.serviceWorker.ready would never settle). */
  function activeWorker(reg) {
    if (reg.active) return Promise.resolve(reg);
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error('the service worker did not activate')), SW_ACTIVE_MS);
      const watch = (sw) => {
        if (!sw) return;
        sw.addEventListener('statechange', () => {
          if (reg.active) {
            clearTimeout(timer);
            resolve(reg);
          } else if (sw.state === 'redundant') {
            clearTimeout(timer);
            reject(new Error('the service worker was not installed'));
          }
        });
      };
      watch(reg.installing || reg.waiting);
      reg.addEventListener('updatefound', () => watch(reg.installing));
    });
  }

  /* Registers the worker and, where the browser has a push service and the
   * user allows notifications, gives pushgated this browser's subscription.
   * ask: the user just registered (a click), so the browser may ask about
   * notifications now; otherwise it is never asked. Any failure leaves the
   * page on its WebSocket, as it is without push, and says nothing. */
  let pushBusy = null;
  let pushServer = false;       // the server has Web Push on (it gave its key)
  function enablePush(ask) {
    if (!pushBusy) {
      pushBusy = setUpPush(ask).catch((e) => {
        setPush('failed', e && e.message || e);
        console.info('pushgate: no Web Push here, the inbox works while open:', pushState.detail);
      }).finally(() => { pushBusy = null; });
    }
    return pushBusy;
  }

  async function setUpPush(ask) {
    const d = device;
    if (!d) return;
    if (!pushSupported()) { setPush('unsupported'); return; }
    await store.setDevice(d);   // the worker acks with this token
    const reg = await activeWorker(await navigator.serviceWorker.register(SW_URL, { scope: SW_SCOPE }));
    setPush('worker');
    if (Notification.permission === 'denied') { setPush('denied', 'denied'); return; }
    const k = await api('GET', '/v1/device/webpush-key');   // 404: Web Push is off on this server
    if (k.status !== 200 || !k.data || !isBoundedString(k.data.public_key, 128)) {
      setPush('no-key', 'HTTP ' + k.status);
      return;
    }
    pushServer = true;
    const key = b64urlBytes(k.data.public_key);
    if (key.length !== 65 || key[0] !== 4) { setPush('no-key', 'not a P-256 public key'); return; }
    if (Notification.permission === 'default' && ask) await Notification.requestPermission();
    if (Notification.permission !== 'granted') { setPush('denied', Notification.permission); return; }
    let sub = await reg.pushManager.getSubscription();
    if (sub && !sameBytes(sub.options.applicationServerKey, key)) {
      await sub.unsubscribe();   // made for another server key
      sub = null;
    }
    if (!sub) {
      setPush('subscribing');   // without a reachable push service this may never settle
      sub = await reg.pushManager.subscribe({ userVisibleOnly: true, applicationServerKey: key });
    }
    if (device !== d) return;   // logged out meanwhile
    const r = await api('POST', '/v1/device/wakeup', sub.toJSON(), d.token);
    if (r.status !== 204) { setPush('failed', 'wakeup: ' + serverError(r, 'refused')); return; }
    setPush('subscribed');
  }

  /* Logout: tell pushgated to forget the subscription (token: best effort,
   * before the device is revoked), then drop it here. */
  async function disablePush(token) {
    setPush('off');
    if (!pushSupported()) return;
    try {
      const reg = await navigator.serviceWorker.getRegistration(SW_SCOPE);
      if (!reg) return;
      if (token && pushServer) await api('DELETE', '/v1/device/wakeup', undefined, token);
      const sub = await reg.pushManager.getSubscription();
      if (sub) await sub.unsubscribe();
    } catch (e) {
      console.info('pushgate: push subscription not removed here:', e && e.message || e);
    }
  }

  /* The worker stored messages while this page was open (its socket was
   * down): show them from the store. */
  function onWorkerMessage(ev) {
    const f = ev.data;
    if (!f || typeof f !== 'object' || f.type !== 'stored' || !store || !device) return;
    store.loadAll().then((list) => {
      for (const m of list) {
        if (!sane(m) || messages.has(m.id)) continue;
        messages.set(m.id, m);
        stats.fromWorker++;
        announce(m);
      }
      render();
    }, (e) => console.error('pushgate: could not read the inbox', e));
  }

  /* ------------------------------------------------------ toast and beep */

  let toastTimer = null;
  function toast(text) {
    el.toast.textContent = text;
    el.toast.hidden = false;
    clearTimeout(toastTimer);
    toastTimer = setTimeout(() => { el.toast.hidden = true; }, 5000);
  }

  let audio = null;
  function unlockAudio() {
    try {
      const Ctx = window.AudioContext || window.webkitAudioContext;
      if (!audio && Ctx) audio = new Ctx();
      if (audio && audio.state === 'suspended') audio.resume();
    } catch (e) { audio = null; }
  }

  function beep() {
    if (!audio || audio.state !== 'running') return;
    const t = audio.currentTime;
    const osc = audio.createOscillator();
    const gain = audio.createGain();
    osc.type = 'sine';
    osc.frequency.setValueAtTime(880, t);
    osc.frequency.setValueAtTime(1320, t + 0.09);
    gain.gain.setValueAtTime(0.0001, t);
    gain.gain.exponentialRampToValueAtTime(0.2, t + 0.01);
    gain.gain.exponentialRampToValueAtTime(0.0001, t + 0.2);
    osc.connect(gain).connect(audio.destination);
    osc.start(t);
    osc.stop(t + 0.22);
    stats.beeps++;
  }

  /* ---------------------------------------------------------------- start */

  async function start() {
    el.folderTitle.tabIndex = -1;
    el.phoneForm.addEventListener('submit', onPhoneSubmit);
    el.codeForm.addEventListener('submit', onCodeSubmit);
    el.restart.addEventListener('click', () => {
      writeJson(KEY_PENDING, null);
      showRegisterError('');
      showPhoneStep();
      el.msisdn.focus();
    });
    el.logout.addEventListener('click', () => logout('user'));
    el.back.addEventListener('click', () => { location.hash = ''; });
    el.block.addEventListener('click', onBlockClick);
    window.addEventListener('hashchange', onRoute);
    for (const t of ['pointerdown', 'keydown']) {
      document.addEventListener(t, unlockAudio, { passive: true });
    }
    document.addEventListener('visibilitychange', () => {
      if (document.visibilityState === 'visible') {
        render();
        if (device && !conn.ws) connect();
      }
    });
    window.addEventListener('online', () => { if (device && !conn.ws) connect(); });
    window.addEventListener('storage', (ev) => {
      // Another tab of this inbox logged out or registered.
      if (ev.key === KEY_DEVICE) location.reload();
    });
    if (pushSupported()) {
      navigator.serviceWorker.addEventListener('message', onWorkerMessage);
      navigator.serviceWorker.startMessages();
    }

    try {
      store = await openIdb();
    } catch (e) {
      store = localStore();
    }
    for (const m of await store.loadAll()) if (sane(m)) messages.set(m.id, m);

    if (!validDevice(device)) {
      device = null;
      writeJson(KEY_DEVICE, null);
      showRegister();
      renderBadge();
      return;
    }
    showInbox();
    onRoute();
    connect();
    enablePush(false);
  }

  start();
})();
