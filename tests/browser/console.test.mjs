/*
 * console.test.mjs: drives the operator console (web/console.html) in
 * Debian's headless Chromium through playwright-core, one step per command,
 * so that the integration test (tests/integration/t_console.py) can compare
 * what the page shows with what PostgreSQL holds.
 *
 *   node tests/browser/console.test.mjs URL ARTIFACT_DIR
 *
 * URL is the console's (http://127.0.0.1:PORT/console). Commands arrive on
 * stdin, one JSON object a line ({"cmd": "sign_in", "key": "..."}); each
 * gets exactly one JSON line on stdout: {"ok": true, ...} or {"ok": false,
 * "error": "..."}. Diagnostics go to stderr. Every step is bounded (STEP_MS,
 * or the step's "ms" up to a minute) and so is the whole run (RUN_MS); end
 * of stdin closes the browser. It never downloads a browser: CHROMIUM
 * (default /usr/bin/chromium) is used as installed, with a fresh
 * --user-data-dir, a 1280 x 800 viewport and the time zone "timezone" of
 * the open command (default UTC).
 *
 * The page refreshes on a timer; "refresh" clicks Refresh and returns once an
 * overview asked for after the click is on screen, so what a step reads next
 * is at least as new as the click.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import readline from 'node:readline';
import { chromium } from 'playwright-core';

const STEP_MS = 20000;
const RUN_MS = 300000;

const [url, artifactDir] = process.argv.slice(2);
if (!url || !artifactDir) {
  process.stderr.write('usage: node console.test.mjs URL ARTIFACT_DIR\n');
  process.exit(2);
}

const log = (...a) => process.stderr.write('console.test: ' + a.join(' ') + '\n');
const reply = (obj) => process.stdout.write(JSON.stringify(obj) + '\n');

const userDataDir = fs.mkdtempSync(path.join(os.tmpdir(), 'pushgate-chromium-'));
let context = null;
let page = null;
const pageErrors = [];
const cspErrors = [];

async function shutdown(code) {
  try { if (context) await context.close(); } catch (e) { log('close:', e.message); }
  fs.rmSync(userDataDir, { recursive: true, force: true });
  process.exit(code);
}

const watchdog = setTimeout(() => {
  log(`run exceeded ${RUN_MS} ms; giving up`);
  shutdown(3);
}, RUN_MS);
watchdog.unref();

const stats = () => page.evaluate(() => ({ ...window.pushgateConsole.stats }));

/* Rows of a table body: each row's cell texts and data attributes. */
async function tableRows(selector) {
  return page.locator(`${selector} tbody tr`).evaluateAll((rows) => rows.map((tr) => ({
    cells: [...tr.cells].map((td) => td.textContent.trim()),
    data: { ...tr.dataset },
  })));
}

/* A chart's labels and datasets as Chart.js holds them. */
async function chartData(id) {
  return page.evaluate((cid) => {
    const c = window.Chart && window.Chart.getChart(cid);
    if (!c) return null;
    return {
      labels: c.data.labels.slice(),
      datasets: c.data.datasets.map((d) => ({ key: d.key, label: d.label, data: d.data.slice() })),
    };
  }, id);
}

/* Tiles of a container: {key: data-value}. */
async function tiles(selector) {
  return page.locator(`${selector} .tile`).evaluateAll((ts) => Object.fromEntries(ts.map((t) =>
    [t.dataset.key, t.querySelector('.tile-value').dataset.value])));
}

async function waitSignedIn() {
  await page.locator('#console').waitFor({ state: 'visible' });
  await page.waitForFunction(() => window.pushgateConsole.stats.ok > 0 &&
    document.querySelector('#status').dataset.state === 'live');
}

/* Each step returns the fields of its reply; throwing makes it {ok:false}. */
const steps = {
  async open({ timezone }) {
    context = await chromium.launchPersistentContext(userDataDir, {
      executablePath: process.env.CHROMIUM || '/usr/bin/chromium',
      headless: true,
      args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
        '--disable-background-networking', '--disable-component-update', '--disable-sync'],
      viewport: { width: 1280, height: 800 },
      locale: 'en-US',
      timezoneId: timezone || 'UTC',
      timeout: STEP_MS,
    });
    page = context.pages()[0] || await context.newPage();
    page.setDefaultTimeout(STEP_MS);
    page.on('pageerror', (e) => { pageErrors.push(String(e)); log('page error:', e); });
    page.on('console', (m) => {
      if (m.type() !== 'error') return;
      log('console:', m.text());
      if (/Content Security Policy/i.test(m.text())) cspErrors.push(m.text());
    });
    await page.goto(url, { waitUntil: 'load' });
    await page.getByLabel('Operator API key').waitFor({ state: 'visible' });
    return {
      title: await page.title(),
      chart_js: await page.evaluate(() => typeof window.Chart === 'function' && window.Chart.version),
    };
  },

  /* Sign in: {signed_in, error, stored (the key in sessionStorage, or null)}. */
  async sign_in({ key }) {
    const before = (await stats()).done;
    await page.getByLabel('Operator API key').fill(key);
    await page.getByRole('button', { name: 'Sign in', exact: true }).click();
    await page.waitForFunction((n) => window.pushgateConsole.stats.done > n, before);
    const signedIn = await page.locator('#console').isVisible();
    if (signedIn) await waitSignedIn();
    return {
      signed_in: signedIn,
      error: await page.locator('#sign-in-error').textContent(),
      stored: await page.evaluate(() => sessionStorage.getItem('pushgate.console.key')),
      status: await page.locator('#status-text').textContent(),
    };
  },

  async sign_out() {
    await page.getByRole('button', { name: 'Sign out', exact: true }).click();
    await page.getByLabel('Operator API key').waitFor({ state: 'visible' });
    return {
      stored: await page.evaluate(() => sessionStorage.getItem('pushgate.console.key')),
      console_visible: await page.locator('#console').isVisible(),
      status: await page.locator('#status-text').textContent(),
    };
  },

  /* Reload the page: the key kept in sessionStorage signs in again. */
  async reload() {
    await page.reload({ waitUntil: 'load' });
    await waitSignedIn();
    return { hash: await page.evaluate(() => location.hash) };
  },

  async show({ view }) {
    await page.locator(`#tab-${view}`).click();
    await page.locator(`#view-${view}`).waitFor({ state: 'visible' });
    return { selected: await page.locator(`#tab-${view}`).getAttribute('aria-selected') };
  },

  /* Click Refresh; back once an overview asked for after the click is shown. */
  async refresh() {
    const before = (await stats()).started;
    await page.getByRole('button', { name: 'Refresh', exact: true }).click();
    await page.waitForFunction((n) => window.pushgateConsole.stats.done > n, before);
    const s = await stats();
    if (s.ok !== s.done) throw new Error(`refresh failed: ${await page.locator('#status-text').textContent()}`);
    return { generated_at: s.generatedAt, stats: s };
  },

  /* Wait for the timer's next refresh (no click), up to ms. */
  async wait_refresh({ ms }) {
    const before = (await stats()).started;
    await page.waitForFunction((n) => window.pushgateConsole.stats.ok > n, before,
      { timeout: ms || STEP_MS });
    return { generated_at: (await stats()).generatedAt };
  },

  async traffic() {
    return {
      channel: await chartData('chart-throughput-channel'),
      route: await chartData('chart-throughput-route'),
      totals: await tiles('#traffic-totals'),
      route_empty: await page.locator('#throughput-route-empty').evaluate((e) => !e.hidden),
    };
  },

  async delivery() {
    return {
      channel: await chartData('chart-rate-channel'),
      route: await chartData('chart-rate-route'),
      channel_rows: await tableRows('#delivery-channel-table'),
      route_rows: await tableRows('#delivery-route-table'),
      senders: await tableRows('#senders-table'),
    };
  },

  async queues() {
    return {
      values: await tiles('#queue-tiles'),
      webhooks: await tiles('#webhook-tiles'),
      read_at: await page.locator('#queues-read-at').textContent(),
    };
  },

  async binds() {
    return {
      binds: await tableRows('#binds-table'),
      paused: await page.locator('#paused-list li').evaluateAll((lis) => lis.map((li) => ({
        route: li.dataset.route, text: li.textContent,
      }))),
      paused_empty: await page.locator('#paused-empty').evaluate((e) => !e.hidden),
    };
  },

  /* Fill the search form ({to, from, account, since, until (datetime-local
   * values), state, limit}), submit, and return the rows once answered. */
  async search(q) {
    await fillSearch(q);
    const before = await page.evaluate(() => window.pushgateConsole.stats.searches);
    await page.getByRole('button', { name: 'Search', exact: true }).click();
    await page.waitForFunction((n) => {
      const st = document.querySelector('#results').dataset.state;
      return st === 'error' || (st === 'done' && window.pushgateConsole.stats.searches > n);
    }, before);
    return results();
  },

  /* Click More and return every row shown once the next page is in. */
  async more() {
    const before = await page.evaluate(() => window.pushgateConsole.stats.searches);
    await page.getByRole('button', { name: 'More', exact: true }).click();
    await page.waitForFunction((n) => {
      const st = document.querySelector('#results').dataset.state;
      return st === 'error' || (st === 'done' && window.pushgateConsole.stats.searches > n);
    }, before);
    return results();
  },

  /* Click a result row (by recipient id) and return the history shown. */
  async open_history({ recipient_id }) {
    const rid = String(recipient_id);
    await page.locator(`#results-table tbody tr[data-recipient-id="${rid}"]`).click();
    await page.locator(`#history[data-state="done"][data-recipient-id="${rid}"]`).waitFor({ state: 'visible' });
    return history();
  },

  /* Fill the form with a message id (in "message", as typed) and any other
   * fields of search, submit, and return once the page has answered: the
   * history pane's state, error and what it shows, the results pane and the
   * form's errors. A typed id the page refuses answers at once (no request). */
  async open_message(q) {
    await fillSearch(q);
    const before = await page.evaluate(() => window.pushgateConsole.stats.historyAnswers);
    await page.getByRole('button', { name: 'Search', exact: true }).click();
    await page.waitForFunction((n) => window.pushgateConsole.stats.historyAnswers > n ||
      document.querySelector('#q-message').getAttribute('aria-invalid') === 'true', before);
    const pane = page.locator('#history');
    return {
      history_state: await pane.getAttribute('data-state'),
      history_visible: await pane.isVisible(),
      history_message_id: await pane.getAttribute('data-message-id'),
      history_error: await page.locator('#history-error').textContent(),
      history_body_visible: await page.locator('#history-body').isVisible(),
      by_id: await page.locator('#search-form').getAttribute('data-by-id'),
      results_text: await page.locator('#results-empty').textContent(),
      ...(await history()),
      ...(await results()),
    };
  },

  async screenshot({ name, full }) {
    fs.mkdirSync(artifactDir, { recursive: true });
    const file = path.join(artifactDir, `console-${name.replace(/[^a-z0-9-]/gi, '_')}.png`);
    await page.screenshot({ path: file, fullPage: !!full });
    return { file };
  },

  async errors() {
    return { errors: pageErrors.slice(), csp: cspErrors.slice() };
  },

  async quit() {
    reply({ ok: true });
    await shutdown(0);
  },
};

/* Clear the search form, then fill it: {to, from, account, since, until
 * (datetime-local values), state, limit, message}. */
async function fillSearch(q) {
  const fields = { to: 'q-to', from: 'q-from', account: 'q-account', since: 'q-since',
    until: 'q-until', limit: 'q-limit', message: 'q-message' };
  await page.locator('#search-clear').click();
  for (const [k, id] of Object.entries(fields)) {
    if (q[k] !== undefined && q[k] !== null) await page.locator(`#${id}`).fill(String(q[k]));
  }
  if (q.state) await page.locator('#q-state').selectOption(q.state);
}

/* The history pane: its message, account and the current recipient's events. */
async function history() {
  return {
    title: await page.locator('#history-title').textContent(),
    account: await page.locator('#history-account').getAttribute('data-name'),
    account_text: await page.locator('#history-account').textContent(),
    from: await page.locator('#history-from').textContent(),
    text: await page.locator('#history-text').textContent(),
    to: await page.locator('#history-to').textContent(),
    recipients: await page.locator('#history-recipients .chip').evaluateAll((cs) =>
      cs.map((c) => ({ id: c.dataset.recipientId, text: c.textContent, current: c.getAttribute('aria-current') }))),
    events: await page.locator('#history-events li').evaluateAll((lis) => lis.map((li) => ({
      kind: li.dataset.kind, state: li.dataset.state, at: li.dataset.at,
      detail: (li.querySelector('.event-detail') || { textContent: null }).textContent,
    }))),
  };
}

async function results() {
  return {
    state: await page.locator('#results').getAttribute('data-state'),
    rows: await tableRows('#results-table'),
    more: await page.locator('#more').isVisible(),
    count: await page.locator('#results-count').textContent(),
    error: await page.locator('#search-error').textContent(),
    invalid: await page.locator('#search-form [aria-invalid="true"]').evaluateAll((es) => es.map((e) => e.id)),
  };
}

async function run(line) {
  let cmd;
  try { cmd = JSON.parse(line); } catch (e) { return { ok: false, error: 'not JSON: ' + line.slice(0, 80) }; }
  const step = cmd && steps[cmd.cmd];
  if (!step) return { ok: false, error: 'unknown command ' + JSON.stringify(cmd && cmd.cmd) };
  if (cmd.cmd !== 'open' && !page) return { ok: false, error: 'no page: send open first' };
  // A step may ask for a longer wait ("ms"), up to a minute.
  const limit = Math.min(Math.max(STEP_MS, Number(cmd.ms) || 0), 60000) + 5000;
  let timer;
  const bound = new Promise((_, reject) => {
    timer = setTimeout(() => reject(new Error(`step ${cmd.cmd} exceeded ${limit} ms`)), limit);
  });
  try {
    return { ok: true, ...(await Promise.race([step(cmd), bound])) };
  } catch (e) {
    return { ok: false, error: String(e && e.message || e).split('\n').slice(0, 6).join(' | ') };
  } finally {
    clearTimeout(timer);
  }
}

const rl = readline.createInterface({ input: process.stdin });
const queue = [];
let busy = false;
rl.on('line', (line) => { queue.push(line); pump(); });
rl.on('close', () => { queue.push(null); pump(); });

async function pump() {
  if (busy) return;
  busy = true;
  while (queue.length) {
    const line = queue.shift();
    if (line === null) { await shutdown(0); return; }
    if (!line.trim()) continue;
    const r = await run(line);
    if (r !== undefined) reply(r);
  }
  busy = false;
}

process.on('SIGTERM', () => shutdown(143));
process.on('SIGINT', () => shutdown(130));
