/*
 * console.js: pushgate's operator console (web/console.html).
 *
 * Signs in with an operator API key, kept in this tab's sessionStorage only
 * (Sign out forgets it; a 401 or 403 signs out and says why), then reads
 * GET /v1/operator/overview every REFRESH_MS (and on Refresh) and draws it:
 *
 *   Traffic   recipients a minute by channel and by SMS route (Chart.js)
 *   Delivery  success rate an hour by channel and by route (of the recipients
 *             final), the senders (accepted, their outcomes, pending), as
 *             counted by the report rollups up to as_of
 *   Queues    the five queue depths and the webhook backlog, with their time
 *   Binds     every node's SMPP binds and the paused routes
 *   Search    GET /v1/operator/messages, paged with next_cursor, each row
 *             with its account's name; a row opens
 *             GET /v1/operator/messages/{id}: its account and the
 *             recipient's events in order. A message id typed in the form
 *             (digits, checked here) opens that message the same way, the
 *             other filters ignored; an unknown id says "No such message"
 *
 * Times are shown in the browser's time zone; the time series' slots come
 * from the database's clock (generated_at), not the browser's. Every value
 * from the API is put into the page as text (textContent), never as HTML,
 * and no style is written inline (the page is served with a CSP that forbids
 * it): colours come from console.css. Chart.js (Debian's, /console/chart.js)
 * is optional: without it the numbers and tables still show.
 */
'use strict';

(function () {
  const KEY_STORE = 'pushgate.console.key';
  const REFRESH_MS = 5000;
  const HTTP_TIMEOUT_MS = 15000;
  const STALE_BIND_MS = 60000;
  const MINUTE = 60000;
  const HOUR = 3600000;
  const VIEWS = ['traffic', 'delivery', 'queues', 'binds', 'search'];
  const CHANNEL_NAMES = { push: 'Push', sms: 'SMS', none: 'No channel' };
  const STATES = ['ACCEPTED', 'SCHEDULED', 'HELD', 'PUSH_SENT', 'PUSH_DELIVERED', 'OPTED_OUT',
    'SMS_QUEUED', 'SMS_SUBMITTED', 'SMS_ACCEPTED', 'SMS_DELIVERED', 'SMS_FAILED', 'SMS_EXPIRED',
    'SMS_UNKNOWN', 'DROPPED', 'CANCELED'];
  const TONE = {
    PUSH_DELIVERED: 'ok', SMS_DELIVERED: 'ok',
    SMS_FAILED: 'bad', SMS_EXPIRED: 'bad', SMS_UNKNOWN: 'bad', DROPPED: 'bad',
    PUSH_SENT: 'wait', SMS_QUEUED: 'wait', SMS_SUBMITTED: 'wait', SMS_ACCEPTED: 'wait',
    SCHEDULED: 'wait', HELD: 'wait', ACCEPTED: 'wait',
  };
  const QUEUES = [
    ['sms_queued', 'SMS queued', 'waiting for a bind of their route'],
    ['sms_in_flight', 'SMS in flight', 'submitted, no response yet'],
    ['sms_waiting_receipt', 'SMS awaiting receipt', 'accepted by the carrier'],
    ['push_pending', 'Push pending', 'sent to an app, no ack yet'],
    ['scheduled', 'Scheduled or held', 'due later, or an ad outside its hours'],
  ];
  /* which input a field named by a 400 answer is */
  const FIELD_INPUT = { to: 'q-to', from: 'q-from', account: 'q-account', since: 'q-since',
    until: 'q-until', state: 'q-state', limit: 'q-limit', message: 'q-message' };
  const MAX_ID = 9223372036854775807n;   // message ids are PostgreSQL bigints
  const SEARCH_HINT = 'Search by number, sender, account, time or state (newest first), or open a message by its id.';

  const $ = (id) => document.getElementById(id);
  const el = {
    status: $('status'), statusText: $('status-text'), refresh: $('refresh'), signOut: $('sign-out'),
    signIn: $('sign-in'), signInForm: $('sign-in-form'), key: $('key'), signInButton: $('sign-in-button'),
    signInError: $('sign-in-error'), console: $('console'), tz: $('tz'), loadError: $('load-error'),
    minutes: $('minutes'), hours: $('hours'), trafficTotals: $('traffic-totals'),
    routeEmpty: $('throughput-route-empty'), rateRouteEmpty: $('rate-route-empty'), deliveryAsOf: $('delivery-as-of'),
    channelTable: $('delivery-channel-table'), routeTable: $('delivery-route-table'),
    sendersTable: $('senders-table'), sendersEmpty: $('senders-empty'),
    queuesReadAt: $('queues-read-at'), queueTiles: $('queue-tiles'), webhookTiles: $('webhook-tiles'),
    bindsReadAt: $('binds-read-at'), pausedList: $('paused-list'), pausedEmpty: $('paused-empty'),
    bindsTable: $('binds-table'), bindsEmpty: $('binds-empty'),
    searchForm: $('search-form'), searchButton: $('search-button'), searchError: $('search-error'),
    qTo: $('q-to'), qFrom: $('q-from'), qAccount: $('q-account'), qSince: $('q-since'),
    qUntil: $('q-until'), qState: $('q-state'), qLimit: $('q-limit'), qMessage: $('q-message'),
    panes: $('search-panes'), results: $('results'), resultsCount: $('results-count'),
    resultsEmpty: $('results-empty'), resultsTable: $('results-table'), more: $('more'),
    history: $('history'), historyTitle: $('history-title'), historyClose: $('history-close'),
    historyError: $('history-error'), historyBody: $('history-body'), historyAccount: $('history-account'),
    historyFrom: $('history-from'), historyCreated: $('history-created'), historyText: $('history-text'),
    historyRecipients: $('history-recipients'), historyTo: $('history-to'),
    historyRecipient: $('history-recipient'), historyEvents: $('history-events'),
  };

  /* Counters a test (or a curious operator in the devtools) can read.
   * started/done/ok: sequence numbers of overview requests (the last one
   * started, finished, and finished well); histories: messages shown;
   * historyAnswers: answers to GET /v1/operator/messages/{id} put on screen
   * (shown, not found or failed). */
  const stats = { started: 0, done: 0, ok: 0, failures: 0, generatedAt: null, searches: 0, histories: 0,
    historyAnswers: 0 };
  const charts = {};
  window.pushgateConsole = { stats, charts };

  let key = readKey();
  let session = 0;          // bumped at every sign-in and sign-out: late answers of another are dropped
  let refreshing = null;    // the refresh in progress (a promise)
  let again = false;        // asked for while one was in progress: run once more after it
  let timer = null;
  let lastOk = null;        // generated_at (ms) of the last overview shown
  let search = null;        // { params, next, shown } of the search on screen
  let searchSeq = 0;
  let historySeq = 0;
  let historyData = null;   // the message on screen in the history pane

  /* ---------------------------------------------------------------- utils */

  function readKey() {
    try {
      return sessionStorage.getItem(KEY_STORE) || null;
    } catch (e) {
      return null;
    }
  }

  function writeKey(value) {
    try {
      if (value) sessionStorage.setItem(KEY_STORE, value);
      else sessionStorage.removeItem(KEY_STORE);
    } catch (e) { /* storage off: the key lives as long as the page */ }
  }

  function node(tag, cls, text) {
    const n = document.createElement(tag);
    if (cls) n.className = cls;
    if (text !== undefined && text !== null) n.textContent = String(text);
    return n;
  }

  function num(v) {
    return typeof v === 'number' && Number.isFinite(v) ? v : 0;
  }

  function str(v) {
    return typeof v === 'string' ? v : (v === null || v === undefined ? '' : String(v));
  }

  function arr(v) {
    return Array.isArray(v) ? v.filter((x) => x && typeof x === 'object') : [];
  }

  function cssVar(name) {
    return getComputedStyle(document.documentElement).getPropertyValue(name).trim();
  }

  const fmtNum = new Intl.NumberFormat(undefined);
  const pad = (n, w) => String(n).padStart(w || 2, '0');

  function parseTime(s) {
    const t = typeof s === 'string' ? Date.parse(s) : NaN;
    return Number.isFinite(t) ? t : NaN;
  }

  function clock(ms) {
    const d = new Date(ms);
    return `${pad(d.getHours())}:${pad(d.getMinutes())}:${pad(d.getSeconds())}`;
  }

  function day(ms) {
    const d = new Date(ms);
    return `${pad(d.getMonth() + 1)}-${pad(d.getDate())}`;
  }

  function dateTime(ms) {
    if (!Number.isFinite(ms)) return '—';
    return `${new Date(ms).getFullYear()}-${day(ms)} ${clock(ms)}`;
  }

  function preciseTime(ms) {
    return Number.isFinite(ms) ? `${dateTime(ms)}.${pad(new Date(ms).getMilliseconds(), 3)}` : '—';
  }

  /* HH:MM:SS today, MM-DD HH:MM another day. */
  function shortTime(ms) {
    if (!Number.isFinite(ms)) return '—';
    const d = new Date(ms);
    const now = new Date();
    const today = d.getFullYear() === now.getFullYear() && d.getMonth() === now.getMonth() &&
      d.getDate() === now.getDate();
    return today ? clock(ms) : `${day(ms)} ${pad(d.getHours())}:${pad(d.getMinutes())}`;
  }

  function span(ms) {
    const s = Math.round(Math.abs(ms) / 1000);
    if (s < 90) return `${s} s`;
    if (s < 5400) return `${Math.round(s / 60)} min`;
    if (s < 172800) return `${Math.round(s / 3600)} h`;
    return `${Math.round(s / 86400)} days`;
  }

  function rate(delivered, failed) {
    return delivered + failed > 0 ? (100 * delivered) / (delivered + failed) : null;
  }

  function rateText(delivered, failed) {
    const r = rate(delivered, failed);
    return r === null ? '—' : `${r.toFixed(1)}%`;
  }

  function timeZoneLabel() {
    const off = -new Date().getTimezoneOffset();
    const sign = off >= 0 ? '+' : '-';
    const hhmm = `${pad(Math.floor(Math.abs(off) / 60))}:${pad(Math.abs(off) % 60)}`;
    let name = '';
    try { name = Intl.DateTimeFormat().resolvedOptions().timeZone || ''; } catch (e) { name = ''; }
    return `Times in ${name ? name + ', ' : ''}UTC${sign}${hhmm}`;
  }

  function stateBadge(state) {
    const b = node('span', 'state', state || '—');
    b.dataset.tone = TONE[state] || 'other';
    return b;
  }

  function cell(row, text, cls) {
    const td = node('td', cls, text);
    row.appendChild(td);
    return td;
  }

  function setStatus(state, text) {
    el.status.dataset.state = state;
    el.statusText.textContent = text;
  }

  /* ------------------------------------------------------------- the API */

  /* GET path with the key: {status, body} (status 0: no answer in time). */
  async function api(path, withKey) {
    const ctl = new AbortController();
    const t = setTimeout(() => ctl.abort(), HTTP_TIMEOUT_MS);
    try {
      const res = await fetch(path, {
        headers: { Authorization: 'Bearer ' + withKey, Accept: 'application/json' },
        cache: 'no-store', credentials: 'omit', signal: ctl.signal,
      });
      let body = null;
      try { body = await res.json(); } catch (e) { body = null; }
      return { status: res.status, body };
    } catch (e) {
      return { status: 0, body: null };
    } finally {
      clearTimeout(t);
    }
  }

  function apiError(r) {
    const e = r.body && typeof r.body === 'object' ? r.body.error : null;
    return e && typeof e === 'object' ? e : {};
  }

  function problem(r) {
    if (r.status === 0) return 'pushgated did not answer';
    if (r.status === 503) return 'the database is unavailable';
    const msg = str(apiError(r).message);
    return msg ? `${msg} (HTTP ${r.status})` : `HTTP ${r.status}`;
  }

  function authProblem(status) {
    return status === 401
      ? 'This key is not valid: unknown, revoked, or its account is disabled.'
      : 'This key is not an operator\'s key. Make one with pushgatectl account add --operator NAME.';
  }

  function overviewPath() {
    return `/v1/operator/overview?minutes=${encodeURIComponent(el.minutes.value)}` +
      `&hours=${encodeURIComponent(el.hours.value)}`;
  }

  function validOverview(o) {
    return o && typeof o === 'object' && Number.isFinite(parseTime(o.generated_at)) &&
      Array.isArray(o.throughput) && Array.isArray(o.by_channel) && Array.isArray(o.by_route) &&
      Array.isArray(o.by_sender) && o.queues && typeof o.queues === 'object' && Array.isArray(o.binds);
  }

  /* ------------------------------------------------------- sign in and out */

  async function signIn(ev) {
    ev.preventDefault();
    const candidate = el.key.value.trim();
    el.signInError.textContent = '';
    if (!candidate) {
      el.signInError.textContent = 'Enter the operator key.';
      el.key.focus();
      return;
    }
    const s = ++session;
    el.signInButton.disabled = true;
    setStatus('loading', 'Checking the key…');
    const seq = ++stats.started;
    const r = await api(overviewPath(), candidate);
    stats.done = Math.max(stats.done, seq);
    if (s !== session) return;
    el.signInButton.disabled = false;
    if (r.status === 200 && validOverview(r.body)) {
      stats.ok = seq;
      key = candidate;
      writeKey(key);
      el.key.value = '';
      enterConsole();
      applyOverview(r.body);
      schedule();
      return;
    }
    stats.failures++;
    setStatus('off', 'Signed out');
    el.signInError.textContent = r.status === 401 || r.status === 403
      ? authProblem(r.status) : `The key could not be checked: ${problem(r)}.`;
    el.key.select();
  }

  function enterConsole() {
    el.signIn.hidden = true;
    el.console.hidden = false;
    el.refresh.hidden = false;
    el.signOut.hidden = false;
    showView(viewFromHash() || 'traffic');
  }

  function signOut(message) {
    session++;
    key = null;
    writeKey(null);
    clearTimeout(timer);
    timer = null;
    again = false;
    lastOk = null;
    stats.generatedAt = null;
    for (const id of Object.keys(charts)) {
      charts[id].destroy();
      delete charts[id];
    }
    for (const t of [el.channelTable, el.routeTable, el.sendersTable, el.bindsTable, el.resultsTable]) {
      t.tBodies[0].replaceChildren();
    }
    for (const c of [el.trafficTotals, el.queueTiles, el.webhookTiles, el.pausedList]) c.replaceChildren();
    el.deliveryAsOf.textContent = '';
    el.searchForm.reset();
    clearSearch();
    closeHistory();
    el.loadError.hidden = true;
    el.console.hidden = true;
    el.refresh.hidden = true;
    el.signOut.hidden = true;
    el.signIn.hidden = false;
    el.signInButton.disabled = false;
    el.signInError.textContent = message || '';
    setStatus('off', 'Signed out');
    el.key.focus();
  }

  /* ----------------------------------------------------------- refreshing */

  function schedule() {
    clearTimeout(timer);
    timer = key ? setTimeout(tick, REFRESH_MS) : null;
  }

  function tick() {
    if (document.hidden) {   // nobody looks: wait, and refresh when the tab is shown again
      schedule();
      return;
    }
    refreshNow();
  }

  /* One overview now (or right after the one in progress); then every REFRESH_MS. */
  function refreshNow() {
    if (!key) return Promise.resolve();
    if (refreshing) {
      again = true;
      return refreshing;
    }
    clearTimeout(timer);
    refreshing = (async () => {
      do {
        again = false;
        await loadOverview();
      } while (again && key);
      refreshing = null;
      schedule();
    })();
    return refreshing;
  }

  async function loadOverview() {
    const s = session;
    const seq = ++stats.started;
    if (lastOk === null) setStatus('loading', 'Loading…');
    const r = await api(overviewPath(), key);
    stats.done = Math.max(stats.done, seq);
    if (s !== session) return;
    if (r.status === 200 && validOverview(r.body)) {
      stats.ok = seq;
      applyOverview(r.body);
      return;
    }
    if (r.status === 401 || r.status === 403) {
      signOut(authProblem(r.status));
      return;
    }
    stats.failures++;
    const since = lastOk === null ? '' : ` (shown: ${clock(lastOk)})`;
    setStatus('error', `Not updated: ${problem(r)}${since}`);
    el.loadError.textContent = `The overview could not be read: ${problem(r)}. Retrying every ` +
      `${REFRESH_MS / 1000} s.`;
    el.loadError.hidden = false;
  }

  function applyOverview(o) {
    const at = parseTime(o.generated_at);
    lastOk = at;
    stats.generatedAt = o.generated_at;
    el.loadError.hidden = true;
    setStatus('live', `Updated ${clock(at)}`);
    renderTraffic(o, at);
    renderDelivery(o, at);
    renderQueues(o, at);
    renderBinds(o, at);
  }

  /* --------------------------------------------------------------- charts */

  /* The slots of a series: every step from end - span to end, aligned on
   * the buckets the database made (one of them: sample, in ms). */
  function slots(end, spanMs, step, sample) {
    const align = Number.isFinite(sample) ? ((sample % step) + step) % step : 0;
    const first = Math.floor((end - spanMs - align) / step) * step + align;
    const last = Math.floor((end - align) / step) * step + align;
    const out = [];
    for (let t = first; t <= last; t += step) out.push(t);
    return out;
  }

  function minuteLabel(ms, long) {
    const d = new Date(ms);
    const hm = `${pad(d.getHours())}:${pad(d.getMinutes())}`;
    return long ? `${day(ms)} ${hm}` : hm;
  }

  function hourLabel(ms) {
    return minuteLabel(ms, true);
  }

  function colour(keyName, i) {
    const named = { push: '--c-push', sms: '--c-sms', none: '--c-none' }[keyName];
    return cssVar(named || `--c-${(i % 6) + 1}`);
  }

  function chartOptions(kind) {
    const percent = kind === 'rate';
    return {
      responsive: true,
      maintainAspectRatio: false,
      animation: false,
      normalized: true,
      interaction: { mode: 'index', intersect: false },
      elements: {
        line: { borderWidth: 2, tension: 0.2 },
        point: { radius: percent ? 3 : 0, hoverRadius: 5, hitRadius: 6 },
      },
      scales: {
        x: {
          grid: { display: false },
          ticks: {
            autoSkip: true, maxTicksLimit: 9, maxRotation: 0,
            // "MM-DD HH:MM" labels: the time, and the day under the first tick and at midnight
            callback(value, index) {
              const l = String(this.getLabelForValue(value));
              if (l.length <= 5) return l;
              const hm = l.slice(6);
              return index === 0 || hm.startsWith('00:') ? [hm, l.slice(0, 5)] : hm;
            },
          },
        },
        y: percent
          ? { min: 0, max: 100, ticks: { stepSize: 25, callback: (v) => `${v}%` } }
          : { beginAtZero: true, suggestedMax: 4, ticks: { precision: 0 } },
      },
      plugins: {
        legend: { position: 'bottom', labels: { boxWidth: 12, boxHeight: 12 } },
        tooltip: {
          callbacks: {
            label(ctx) {
              const ds = ctx.dataset;
              if (!percent) return `${ds.label}: ${fmtNum.format(ctx.parsed.y)}`;
              const d = ds.detail && ds.detail[ctx.dataIndex];
              const of = d ? ` (${fmtNum.format(d.delivered)} of ${fmtNum.format(d.delivered + d.failed)})` : '';
              return `${ds.label}: ${ctx.parsed.y.toFixed(1)}%${of}`;
            },
          },
        },
      },
    };
  }

  function chart(id, kind) {
    if (charts[id]) return charts[id];
    if (typeof window.Chart !== 'function') return null;
    const c = new window.Chart($(id), { type: 'line', data: { labels: [], datasets: [] }, options: chartOptions(kind) });
    charts[id] = c;
    return c;
  }

  /* Puts series [{key, label, data, detail}] in a chart. Dataset objects are
   * kept by key: Chart.js keeps a series hidden from the legend across refreshes. */
  function setSeries(id, kind, labels, series) {
    const c = chart(id, kind);
    if (!c) return;
    const old = new Map(c.data.datasets.map((d) => [d.key, d]));
    c.data.labels = labels;
    c.data.datasets = series.map((s, i) => {
      const d = old.get(s.key) || { key: s.key };
      const col = colour(s.key, i);
      Object.assign(d, { label: s.label, data: s.data, detail: s.detail || null,
        borderColor: col, backgroundColor: col, pointBackgroundColor: col, spanGaps: false });
      return d;
    });
    c.update('none');
  }

  /* Counts per key over the slots: {key: [n per slot]} (keys in first-seen order). */
  function bucket(items, times, keyOf, fields) {
    const index = new Map(times.map((t, i) => [t, i]));
    const out = new Map();
    for (const it of items) {
      const i = index.get(parseTime(it.at));
      const k = keyOf(it);
      if (i === undefined || !k) continue;
      if (!out.has(k)) out.set(k, times.map(() => Object.fromEntries(fields.map((f) => [f, 0]))));
      const slot = out.get(k)[i];
      for (const f of fields) slot[f] += num(it[f]);
    }
    return out;
  }

  /* ------------------------------------------------------------- traffic */

  function tile(keyName, label, value, note, swatch) {
    const t = node('div', 'tile');
    t.dataset.key = keyName;
    const l = node('span', 'tile-label');
    if (swatch) l.appendChild(node('span', `tile-swatch sw-${swatch}`));
    l.appendChild(document.createTextNode(label));
    t.appendChild(l);
    const v = node('span', typeof value === 'number' ? 'tile-value' : 'tile-value tile-text',
      typeof value === 'number' ? fmtNum.format(value) : value);
    v.dataset.value = String(value);
    t.appendChild(v);
    if (note) t.appendChild(node('span', 'tile-note', note));
    return t;
  }

  function renderTraffic(o, at) {
    const minutes = num(o.minutes) || Number(el.minutes.value);
    const points = arr(o.throughput);
    const times = slots(at, minutes * MINUTE, MINUTE, points.length ? parseTime(points[0].at) : NaN);
    const long = minutes > 720;
    const labels = times.map((t) => minuteLabel(t, long));

    const byChannel = bucket(points, times, (p) => str(p.channel), ['recipients']);
    for (const ch of ['sms', 'push']) {
      if (!byChannel.has(ch)) byChannel.set(ch, times.map(() => ({ recipients: 0 })));
    }
    const channels = ['push', 'sms', 'none'].filter((c) => byChannel.has(c))
      .concat([...byChannel.keys()].filter((c) => !(c in CHANNEL_NAMES)).sort());
    setSeries('chart-throughput-channel', 'count', labels, channels.map((c) => ({
      key: c, label: CHANNEL_NAMES[c] || c, data: byChannel.get(c).map((s) => s.recipients),
    })));

    const byRoute = bucket(points.filter((p) => p.channel === 'sms'), times, (p) => str(p.route), ['recipients']);
    const routes = [...byRoute.keys()].sort();
    setSeries('chart-throughput-route', 'count', labels, routes.map((r) => ({
      key: r, label: r, data: byRoute.get(r).map((s) => s.recipients),
    })));
    el.routeEmpty.hidden = routes.length > 0;

    const total = (c) => (byChannel.has(c) ? byChannel.get(c).reduce((a, s) => a + s.recipients, 0) : 0);
    const perMinute = times.map((_, i) => channels.reduce((a, c) => a + byChannel.get(c)[i].recipients, 0));
    const peak = Math.max(0, ...perMinute);
    const peakAt = peak > 0 ? times[perMinute.indexOf(peak)] : NaN;
    const win = minutes >= 60 ? `${minutes / 60} h` : `${minutes} min`;
    el.trafficTotals.replaceChildren(
      tile('total', `Recipients, last ${win}`, channels.reduce((a, c) => a + total(c), 0), 'every channel'),
      tile('push', 'Push', total('push'), 'sent to an app', 'push'),
      tile('sms', 'SMS', total('sms'), routes.length ? `${routes.length} route${routes.length > 1 ? 's' : ''}` : 'no route', 'sms'),
      tile('none', 'No channel yet', total('none'), 'scheduled, held, dropped', 'none'),
      tile('peak', 'Busiest minute', peak, Number.isFinite(peakAt) ? `at ${minuteLabel(peakAt, long)}` : 'no traffic'),
    );
  }

  /* ------------------------------------------------------------ delivery */

  /* A table row: name, recipients, delivered, failed, pending (when s has it), success. */
  function outcomeRow(name, keyName, s) {
    const tr = node('tr');
    tr.dataset.key = keyName;
    cell(tr, name);
    cell(tr, fmtNum.format(s.recipients), 'num');
    cell(tr, fmtNum.format(s.delivered), 'num');
    cell(tr, fmtNum.format(s.failed), 'num');
    if ('pending' in s) cell(tr, fmtNum.format(s.pending), 'num');
    cell(tr, rateText(s.delivered, s.failed), 'num');
    return tr;
  }

  /* by_channel and by_route: the recipients final in the hour, and of them delivered and failed */
  const OUTCOMES = ['recipients', 'delivered', 'failed'];

  function sum(slotsOf) {
    const s = { recipients: 0, delivered: 0, failed: 0 };
    for (const x of slotsOf) for (const f of OUTCOMES) s[f] += x[f];
    return s;
  }

  function rateSeries(map, keys, nameOf) {
    return keys.map((k) => ({
      key: k, label: nameOf(k),
      data: map.get(k).map((s) => rate(s.delivered, s.failed)),
      detail: map.get(k),
    }));
  }

  function renderDelivery(o, at) {
    const hours = num(o.hours) || Number(el.hours.value);
    const chItems = arr(o.by_channel);
    const rtItems = arr(o.by_route);
    const sample = chItems.length ? parseTime(chItems[0].at) : NaN;
    const times = slots(at, hours * HOUR, HOUR, sample);
    const labels = times.map(hourLabel);
    const asOf = parseTime(o.as_of);
    el.deliveryAsOf.textContent = Number.isFinite(asOf)
      ? `Counted up to ${shortTime(asOf)}${at - asOf > MINUTE ? `, ${span(at - asOf)} behind` : ''}`
      : 'Not counted yet';
    el.deliveryAsOf.title = str(o.as_of);

    const byChannel = bucket(chItems, times, (p) => str(p.channel), OUTCOMES);
    const channels = [...byChannel.keys()].sort((a, b) =>
      (a in CHANNEL_NAMES ? Object.keys(CHANNEL_NAMES).indexOf(a) : 9) -
      (b in CHANNEL_NAMES ? Object.keys(CHANNEL_NAMES).indexOf(b) : 9) || a.localeCompare(b));
    const name = (c) => CHANNEL_NAMES[c] || c;
    // a rate means something where something finished: "no channel" rarely does
    const rated = channels.filter((c) => byChannel.get(c).some((s) => s.delivered + s.failed > 0));
    setSeries('chart-rate-channel', 'rate', labels, rateSeries(byChannel, rated, name));
    el.channelTable.tBodies[0].replaceChildren(...channels.map((c) => outcomeRow(name(c), c, sum(byChannel.get(c)))));

    const byRoute = bucket(rtItems, times, (p) => str(p.route), OUTCOMES);
    const routes = [...byRoute.keys()].sort();
    setSeries('chart-rate-route', 'rate', labels,
      rateSeries(byRoute, routes.filter((r) => byRoute.get(r).some((s) => s.delivered + s.failed > 0)), (r) => r));
    el.rateRouteEmpty.hidden = routes.length > 0;
    el.routeTable.tBodies[0].replaceChildren(...routes.map((r) => outcomeRow(r, r, sum(byRoute.get(r)))));

    const senders = arr(o.by_sender);
    el.sendersTable.tBodies[0].replaceChildren(...senders.map((s) => {
      const v = { recipients: num(s.recipients), delivered: num(s.delivered), failed: num(s.failed), pending: num(s.pending) };
      const tr = outcomeRow(str(s.sender), str(s.sender), v);
      tr.dataset.sender = str(s.sender);
      const td = cell(tr, null);
      const r = rate(v.delivered, v.failed);
      if (r !== null) {
        const m = node('meter', 'rate-bar');
        Object.assign(m, { min: 0, max: 100, low: 80, high: 95, optimum: 100, value: r });
        m.title = `${r.toFixed(1)}% delivered`;
        td.appendChild(m);
      }
      return tr;
    }));
    el.sendersEmpty.hidden = senders.length > 0;
  }

  /* -------------------------------------------------------------- queues */

  function renderQueues(o, at) {
    const q = o.queues;
    el.queuesReadAt.textContent = `Read at ${clock(at)} (database time, every node together)`;
    el.queueTiles.replaceChildren(...QUEUES.map(([k, label, note]) => {
      const t = tile(k, label, num(q[k]), note);
      t.dataset.queue = k;
      return t;
    }));
    const w = o.webhooks && typeof o.webhooks === 'object' ? o.webhooks : {};
    const backlog = num(w.backlog);
    const due = parseTime(w.oldest_due);
    const b = tile('webhook_backlog', 'Webhook backlog', backlog, 'events not delivered nor given up');
    b.dataset.queue = 'webhook_backlog';
    let dueText = '—';
    let dueNote = 'nothing waits';
    if (Number.isFinite(due)) {
      dueText = shortTime(due);
      dueNote = due <= at ? `overdue by ${span(at - due)}` : `in ${span(due - at)}`;
    }
    const d = tile('oldest_due', 'Oldest webhook due', dueText, dueNote);
    d.dataset.queue = 'oldest_due';
    if (Number.isFinite(due) && at - due > MINUTE) d.dataset.alert = 'yes';
    el.webhookTiles.replaceChildren(b, d);
  }

  /* --------------------------------------------------------------- binds */

  function renderBinds(o, at) {
    el.bindsReadAt.textContent = `Read at ${clock(at)}`;
    const paused = arr(o.paused_routes);
    const pausedSet = new Set(paused.map((p) => str(p.route)));
    el.pausedList.replaceChildren(...paused.map((p) => {
      const li = node('li');
      li.dataset.route = str(p.route);
      li.appendChild(node('span', 'paused-route', str(p.route)));
      li.appendChild(node('span', 'paused-reason', str(p.reason) || 'no reason given'));
      const since = parseTime(p.paused_at);
      const when = node('span', 'paused-at',
        Number.isFinite(since) ? `paused ${shortTime(since)}, ${span(at - since)} ago` : 'paused');
      when.title = str(p.paused_at);
      li.appendChild(when);
      return li;
    }));
    el.pausedEmpty.hidden = paused.length > 0;

    const binds = arr(o.binds);
    el.bindsTable.tBodies[0].replaceChildren(...binds.map((b) => {
      const tr = node('tr');
      const route = str(b.route);
      Object.assign(tr.dataset, { node: str(b.node), route, bind: str(b.bind) });
      const rc = cell(tr, route);
      if (pausedSet.has(route)) rc.appendChild(node('span', 'tag', 'paused'));
      cell(tr, str(b.node), 'mono');
      cell(tr, str(b.bind), 'mono');
      const st = node('span', 'state', str(b.state) || '—');
      st.dataset.tone = b.state === 'bound' ? 'ok' : 'bad';
      cell(tr, null).appendChild(st);
      const used = num(b.window_used);
      const size = num(b.window_size);
      const wc = cell(tr, null);
      const m = node('meter');
      Object.assign(m, { min: 0, max: Math.max(1, size), value: used, low: size * 0.5, high: size * 0.9, optimum: 0 });
      wc.appendChild(m);
      wc.appendChild(document.createTextNode(`${used} / ${size}`));
      cell(tr, fmtNum.format(num(b.submits)), 'num');
      cell(tr, fmtNum.format(num(b.throttled)), 'num');
      const upd = parseTime(b.updated_at);
      const age = Number.isFinite(upd) ? at - upd : NaN;
      const uc = cell(tr, Number.isFinite(age) ? `${span(Math.max(0, age))} ago` : '—');
      uc.title = str(b.updated_at);
      if (age > STALE_BIND_MS) {
        tr.classList.add('stale');
        uc.appendChild(node('span', 'tag', 'stale'));
      }
      return tr;
    }));
    el.bindsEmpty.hidden = binds.length > 0;
  }

  /* -------------------------------------------------------------- search */

  function toIso(local) {
    if (!local) return '';
    const t = new Date(local).getTime();
    return Number.isFinite(t) ? new Date(t).toISOString().slice(0, 19) + 'Z' : null;
  }

  function clearFieldErrors() {
    for (const id of Object.values(FIELD_INPUT)) $(id).removeAttribute('aria-invalid');
    el.searchError.textContent = '';
  }

  function fieldError(field, message) {
    const id = FIELD_INPUT[field];
    if (id) $(id).setAttribute('aria-invalid', 'true');
    el.searchError.textContent = message;
  }

  /* The query of the form, or null (and the error shown) when a field is wrong. */
  function searchParams() {
    const p = new URLSearchParams();
    const to = el.qTo.value.replace(/[\s().+-]/g, '');
    if (to) {
      if (!/^[0-9]{5,20}$/.test(to)) {
        fieldError('to', 'Number: digits with the country code, e.g. 821012345678.');
        return null;
      }
      p.set('to', to);
    }
    const from = el.qFrom.value.trim();
    if (from) p.set('from', from);
    const account = el.qAccount.value.trim();
    if (account) p.set('account', account);
    for (const [f, input] of [['since', el.qSince], ['until', el.qUntil]]) {
      const iso = toIso(input.value);
      if (iso === null) {
        fieldError(f, `${f === 'since' ? 'Since' : 'Until'}: not a time.`);
        return null;
      }
      if (iso) p.set(f, iso);
    }
    if (el.qState.value) p.set('state', el.qState.value);
    const limit = Number(el.qLimit.value || 50);
    if (!Number.isInteger(limit) || limit < 1 || limit > 1000) {
      fieldError('limit', 'Per page: 1 to 1000.');
      return null;
    }
    p.set('limit', String(limit));
    return p;
  }

  /* The message id of the form: '' (none), its canonical digits, or null (and the error shown). */
  function typedMessageId() {
    const v = el.qMessage.value.trim();
    if (!v) return '';
    if (!/^[0-9]+$/.test(v)) {
      fieldError('message', 'Message id: digits only, e.g. 1234.');
      return null;
    }
    const id = BigInt(v);
    if (id < 1n || id > MAX_ID) {
      fieldError('message', `Message id: 1 to ${MAX_ID}.`);
      return null;
    }
    return id.toString();
  }

  /* The id field decides what Search does: while it holds anything, the filters are dimmed. */
  function markById() {
    el.searchForm.dataset.byId = el.qMessage.value.trim() ? 'true' : 'false';
  }

  function clearSearch() {
    searchSeq++;   // the answer of a search in flight is dropped: its buttons come back now
    search = null;
    el.searchButton.disabled = false;
    el.more.disabled = false;
    el.resultsTable.tBodies[0].replaceChildren();
    el.resultsTable.hidden = true;
    el.resultsEmpty.hidden = false;
    el.resultsEmpty.textContent = SEARCH_HINT;
    el.resultsCount.textContent = '';
    el.more.hidden = true;
    el.results.dataset.state = 'idle';
    clearFieldErrors();
  }

  function resultRow(r) {
    const tr = node('tr');
    tr.tabIndex = 0;
    tr.dataset.recipientId = str(r.id);
    tr.dataset.messageId = str(r.message_id);
    const created = parseTime(r.created_at);
    cell(tr, shortTime(created)).title = dateTime(created);
    cell(tr, str(r.to), 'mono');
    tr.dataset.account = str(r.account);
    cell(tr, str(r.account));
    cell(tr, str(r.from));
    cell(tr, null).appendChild(stateBadge(str(r.state)));
    cell(tr, r.channel ? (r.route && r.channel === 'sms' ? `${r.channel} · ${r.route}` : str(r.channel)) : '—');
    cell(tr, r.error_code === null || r.error_code === undefined ? '' : str(r.error_code), 'num');
    cell(tr, str(r.message_id), 'num');
    return tr;
  }

  async function runSearch(more) {
    let params;
    if (more) {
      if (!search || !search.next) return;
      params = new URLSearchParams(search.params);
      params.set('cursor', search.next);
    } else {
      clearFieldErrors();
      const id = typedMessageId();
      if (id === null) return;
      if (id) {   // straight to the message: the filters are not read, not even checked
        clearSearch();
        el.resultsEmpty.textContent = `Message ${id} looked up by its id; the other filters were not used.`;
        openHistory(id, '');
        return;
      }
      params = searchParams();
      if (!params) return;
      clearSearch();
      search = { params: params.toString(), next: null, shown: 0 };
    }
    const mine = ++searchSeq;
    const s = session;
    el.results.dataset.state = 'loading';
    el.searchButton.disabled = true;
    el.more.disabled = true;
    const r = await api('/v1/operator/messages?' + params.toString(), key);
    if (s !== session || mine !== searchSeq) return;
    el.searchButton.disabled = false;
    el.more.disabled = false;
    const body = r.body;
    if (r.status === 200 && body && Array.isArray(body.recipients)) {
      const rows = arr(body.recipients);
      el.resultsTable.tBodies[0].append(...rows.map(resultRow));
      search.shown += rows.length;
      search.next = typeof body.next_cursor === 'string' && body.next_cursor ? body.next_cursor : null;
      el.resultsTable.hidden = search.shown === 0;
      el.resultsEmpty.hidden = search.shown > 0;
      el.resultsEmpty.textContent = 'No recipient matches.';
      el.resultsCount.textContent = `${fmtNum.format(search.shown)} shown${search.next ? ', more to come' : ''}`;
      el.more.hidden = !search.next;
      el.results.dataset.state = 'done';
      stats.searches++;
      return;
    }
    if (r.status === 401 || r.status === 403) {
      signOut(authProblem(r.status));
      return;
    }
    el.results.dataset.state = 'error';
    const e = apiError(r);
    const field = str(e.field);
    fieldError(field === 'cursor' ? '' : field,
      `${field ? field.charAt(0).toUpperCase() + field.slice(1) + ': ' : ''}${problem(r)}`);
  }

  /* ------------------------------------------------------------- history */

  function closeHistory() {
    historySeq++;
    historyData = null;
    el.history.hidden = true;
    el.history.dataset.state = 'closed';
    el.panes.classList.remove('open');
    for (const tr of el.resultsTable.tBodies[0].rows) tr.removeAttribute('aria-selected');
  }

  async function openHistory(messageId, recipientId) {
    const mine = ++historySeq;
    const s = session;
    for (const tr of el.resultsTable.tBodies[0].rows) {
      if (tr.dataset.recipientId === recipientId) tr.setAttribute('aria-selected', 'true');
      else tr.removeAttribute('aria-selected');
    }
    el.history.hidden = false;
    el.panes.classList.add('open');
    el.history.dataset.state = 'loading';
    historyData = null;
    el.history.dataset.messageId = messageId;
    el.history.dataset.recipientId = recipientId;
    el.historyTitle.textContent = `Message ${messageId}`;
    el.historyError.textContent = '';
    el.historyBody.hidden = true;
    const r = await api('/v1/operator/messages/' + encodeURIComponent(messageId), key);
    if (s !== session || mine !== historySeq) return;
    const b = r.body;
    if (r.status === 200 && b && b.message && typeof b.message === 'object' && Array.isArray(b.message.recipients)) {
      historyData = b;
      renderHistory(recipientId);
      el.history.dataset.state = 'done';
      stats.histories++;
      stats.historyAnswers++;
      return;
    }
    if (r.status === 401 || r.status === 403) {
      signOut(authProblem(r.status));
      return;
    }
    stats.historyAnswers++;
    if (r.status === 404) {
      el.history.dataset.state = 'notfound';
      el.historyError.textContent = `No such message: there is no message ${messageId}.`;
      return;
    }
    el.history.dataset.state = 'error';
    el.historyError.textContent = `The message could not be read: ${problem(r)}.`;
  }

  function fact(list, term, value, cls) {
    list.appendChild(node('dt', null, term));
    const dd = node('dd', cls, value === null || value === undefined || value === '' ? '—' : value);
    list.appendChild(dd);
    return dd;
  }

  function renderHistory(recipientId) {
    const b = historyData;
    const m = b.message;
    const acc = b.account && typeof b.account === 'object' ? b.account : {};
    const recipients = arr(m.recipients);
    const rec = recipients.find((x) => str(x.id) === recipientId) || recipients[0];
    el.history.dataset.recipientId = rec ? str(rec.id) : '';
    el.historyTitle.textContent = `Message ${str(m.id)}`;
    el.historyAccount.textContent = `${str(acc.name)} (account ${str(acc.id)})`;
    el.historyAccount.dataset.name = str(acc.name);
    el.historyFrom.textContent = str(m.from);
    el.historyCreated.textContent = dateTime(parseTime(m.created_at));
    el.historyText.textContent = str(m.text);

    el.historyRecipients.replaceChildren(...recipients.map((x) => {
      const li = node('li');
      const chip = node('button', 'chip');
      chip.type = 'button';
      chip.dataset.recipientId = str(x.id);
      chip.appendChild(node('span', 'mono', str(x.to)));
      chip.appendChild(stateBadge(str(x.state)));
      if (x === rec) chip.setAttribute('aria-current', 'true');
      chip.addEventListener('click', () => renderHistory(str(x.id)));
      li.appendChild(chip);
      return li;
    }));

    el.historyRecipient.replaceChildren();
    el.historyEvents.replaceChildren();
    if (!rec) {
      el.historyTo.textContent = '—';
      el.historyBody.hidden = false;
      return;
    }
    el.historyTo.textContent = str(rec.to);
    const f = el.historyRecipient;
    fact(f, 'State', null).replaceChildren(stateBadge(str(rec.state)));
    fact(f, 'Channel', str(rec.channel));
    fact(f, 'Route', str(rec.route));
    fact(f, 'SMSC id', str(rec.smsc_id), 'mono');
    fact(f, 'Error', rec.error_code === null || rec.error_code === undefined ? '' : str(rec.error_code));
    fact(f, 'Attempts', str(rec.attempts));
    fact(f, 'Updated', dateTime(parseTime(rec.updated_at)));
    fact(f, 'Final', rec.final_at ? dateTime(parseTime(rec.final_at)) : 'not yet');

    // in the order the API gives them: the order they were recorded
    el.historyEvents.replaceChildren(...arr(rec.events).map((e) => {
      const li = node('li', 'event');
      Object.assign(li.dataset, { kind: str(e.kind), state: str(e.state), at: str(e.at) });
      const top = node('div', 'event-top');
      top.appendChild(node('span', 'event-at', preciseTime(parseTime(e.at))));
      top.appendChild(node('span', 'event-kind', str(e.kind)));
      if (e.state) top.appendChild(stateBadge(str(e.state)));
      if (e.error_code !== null && e.error_code !== undefined) top.appendChild(node('span', 'tag', `error ${e.error_code}`));
      if (e.smsc_id) top.appendChild(node('span', 'event-at mono', str(e.smsc_id)));
      li.appendChild(top);
      if (e.detail) li.appendChild(node('p', 'event-detail', str(e.detail)));
      return li;
    }));
    el.historyBody.hidden = false;
  }

  /* --------------------------------------------------------------- views */

  function viewFromHash() {
    const v = location.hash.replace(/^#/, '');
    return VIEWS.includes(v) ? v : null;
  }

  function showView(name, focus) {
    for (const v of VIEWS) {
      const on = v === name;
      const tab = $(`tab-${v}`);
      tab.setAttribute('aria-selected', on ? 'true' : 'false');
      tab.tabIndex = on ? 0 : -1;
      $(`view-${v}`).hidden = !on;
      if (on && focus) tab.focus();
    }
    if (location.hash !== `#${name}`) history.replaceState(null, '', `#${name}`);
    const panel = $(`view-${name}`);
    for (const c of Object.values(charts)) {
      if (panel.contains(c.canvas)) c.resize();
    }
  }

  /* -------------------------------------------------------------- wiring */

  function init() {
    for (const s of STATES) {
      const o = node('option', null, s);
      o.value = s;
      el.qState.appendChild(o);
    }
    el.tz.textContent = timeZoneLabel();
    if (typeof window.Chart === 'function') {
      window.Chart.defaults.color = cssVar('--muted');
      window.Chart.defaults.borderColor = cssVar('--line');
      window.Chart.defaults.font.family = getComputedStyle(document.body).fontFamily;
    } else {
      for (const box of document.querySelectorAll('.chart-box')) {
        box.replaceChildren(node('p', 'chart-empty', 'Charts are unavailable (/console/chart.js did not load).'));
      }
    }

    el.signInForm.addEventListener('submit', signIn);
    el.signOut.addEventListener('click', () => signOut(''));
    el.refresh.addEventListener('click', () => refreshNow());
    el.minutes.addEventListener('change', () => refreshNow());
    el.hours.addEventListener('change', () => refreshNow());

    const tabs = el.console.querySelector('[role="tablist"]');
    tabs.addEventListener('click', (ev) => {
      const t = ev.target.closest('[role="tab"]');
      if (t) showView(t.dataset.view);
    });
    tabs.addEventListener('keydown', (ev) => {
      const i = VIEWS.indexOf(viewFromHash() || 'traffic');
      const step = { ArrowRight: 1, ArrowLeft: -1 }[ev.key];
      if (step) {
        ev.preventDefault();
        showView(VIEWS[(i + step + VIEWS.length) % VIEWS.length], true);
      } else if (ev.key === 'Home' || ev.key === 'End') {
        ev.preventDefault();
        showView(VIEWS[ev.key === 'Home' ? 0 : VIEWS.length - 1], true);
      }
    });
    window.addEventListener('hashchange', () => {
      const v = viewFromHash();
      if (v && key) showView(v);
    });
    document.addEventListener('visibilitychange', () => {
      if (!document.hidden && key) refreshNow();
    });

    el.searchForm.addEventListener('submit', (ev) => {
      ev.preventDefault();
      runSearch(false);
    });
    el.searchForm.addEventListener('reset', () => {   // before the fields are emptied
      clearSearch();
      closeHistory();
      el.searchForm.dataset.byId = 'false';
    });
    el.qMessage.addEventListener('input', markById);
    markById();
    el.more.addEventListener('click', () => runSearch(true));
    const rows = el.resultsTable.tBodies[0];
    const open = (tr) => { if (tr) openHistory(tr.dataset.messageId, tr.dataset.recipientId); };
    rows.addEventListener('click', (ev) => open(ev.target.closest('tr')));
    rows.addEventListener('keydown', (ev) => {
      if (ev.key === 'Enter' || ev.key === ' ') {
        ev.preventDefault();
        open(ev.target.closest('tr'));
      }
    });
    el.historyClose.addEventListener('click', closeHistory);

    if (key) {
      enterConsole();
      refreshNow();
    } else {
      el.signIn.hidden = false;
      el.key.focus();
    }
  }

  init();
}());
