/*
 * push.test.mjs: drives the reference web inbox's service worker (web/sw.js)
 * in Debian's headless Chromium through playwright-core, one step per
 * command, for tests/integration/t_web_push.py.
 *
 *   node tests/browser/push.test.mjs URL ARTIFACT_DIR
 *
 * Same line protocol as inbox.test.mjs: one JSON command a line on stdin,
 * exactly one JSON reply a line on stdout ({"ok": true, ...} or {"ok":
 * false, "error": "..."}), diagnostics on stderr, every step bounded
 * (STEP_MS) and the whole run too (RUN_MS).
 *
 * Headless Chromium has no push service to subscribe at, so the push that
 * pushgated sent (decrypted by tests/pushsvc) is handed to the worker the way
 * DevTools does it: ServiceWorker.deliverPushMessage over the DevTools
 * protocol. The ServiceWorker domain lives on a page target, so the driver
 * keeps one about:blank page (no document of the inbox's origin, no socket)
 * whose CDP session watches the registrations and delivers the pushes; the
 * inbox page itself is opened and closed as a user would.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import readline from 'node:readline';
import { chromium } from 'playwright-core';

const STEP_MS = 20000;
const RUN_MS = 120000;
/* The page's push set-up has gone as far as it can (headless Chromium has no
 * push service: its subscribe stays 'subscribing' or ends 'failed'). */
const SETTLED = ['subscribing', 'failed', 'denied', 'subscribed', 'no-key', 'unsupported'];

const [url, artifactDir] = process.argv.slice(2);
if (!url || !artifactDir) {
  process.stderr.write('usage: node push.test.mjs URL ARTIFACT_DIR\n');
  process.exit(2);
}
const origin = new URL(url).origin;
const scope = origin + '/web/';

const log = (...a) => process.stderr.write('push.test: ' + a.join(' ') + '\n');
const reply = (obj) => process.stdout.write(JSON.stringify(obj) + '\n');

const userDataDir = fs.mkdtempSync(path.join(os.tmpdir(), 'pushgate-chromium-'));
let context = null;
let blank = null;          // about:blank: the DevTools target, never the inbox
let cdp = null;
let page = null;           // the inbox page while it is open
const pageErrors = [];
const workerErrors = [];
const workerCalls = [];             // {method, path, body, status, answer} of the worker's requests
const registrations = new Map();   // registrationId -> {scopeURL, isDeleted}
const versions = new Map();        // versionId -> {registrationId, status, runningStatus}

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

/* The registration of the inbox's worker, once its version is activated. */
function activeRegistration() {
  for (const [id, r] of registrations) {
    if (r.isDeleted || r.scopeURL !== scope) continue;
    for (const v of versions.values()) {
      if (v.registrationId === id && v.status === 'activated') return id;
    }
  }
  return null;
}

/* Polls fn until it returns a true value; on time out, says what last() shows. */
async function until(what, fn, last, ms = STEP_MS) {
  const deadline = Date.now() + ms;
  for (;;) {
    const v = await fn();
    if (v) return v;
    if (Date.now() > deadline) {
      const seen = last ? ' (' + JSON.stringify(await last()) + ')' : '';
      throw new Error(`timed out waiting for ${what}${seen}`);
    }
    await new Promise((r) => setTimeout(r, 50));
  }
}

async function openInbox() {
  page = await context.newPage();
  page.setDefaultTimeout(STEP_MS);
  page.on('pageerror', (e) => { pageErrors.push(String(e)); log('page error:', e); });
  page.on('console', (m) => log('console.' + m.type() + ':', m.text()));
  await page.goto(url, { waitUntil: 'load' });
}

/* Each step returns the fields of its reply; throwing makes it {ok:false}. */
const steps = {
  async open() {
    context = await chromium.launchPersistentContext(userDataDir, {
      executablePath: process.env.CHROMIUM || '/usr/bin/chromium',
      headless: true,
      args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
        '--disable-background-networking', '--disable-component-update', '--disable-sync'],
      viewport: { width: 390, height: 780 },
      locale: 'en-US',
      timeout: STEP_MS,
    });
    // The user's answer to the page's question about notifications.
    await context.grantPermissions(['notifications'], { origin });
    blank = context.pages()[0] || await context.newPage();
    await blank.goto('about:blank');
    cdp = await context.newCDPSession(blank);
    cdp.on('ServiceWorker.workerRegistrationUpdated', (ev) => {
      for (const r of ev.registrations) registrations.set(r.registrationId, r);
    });
    cdp.on('ServiceWorker.workerVersionUpdated', (ev) => {
      for (const v of ev.versions) versions.set(v.versionId, v);
    });
    cdp.on('ServiceWorker.workerErrorReported', (ev) => {
      workerErrors.push(ev.errorMessage.errorMessage);
      log('worker error:', JSON.stringify(ev.errorMessage));
    });
    await cdp.send('ServiceWorker.enable');
    // What the worker asks pushgated's API (playwright reports a service worker's requests
    // to the context; its own script's update checks are left out).
    const fromWorker = (req) => req.serviceWorker() && new URL(req.url()).pathname.startsWith('/v1/');
    context.on('requestfinished', async (req) => {
      if (!fromWorker(req)) return;
      const res = await req.response();
      const call = {
        method: req.method(), path: new URL(req.url()).pathname, body: req.postData(),
        status: res ? res.status() : 0, answer: res ? await res.text().catch(() => null) : null,
      };
      log('worker:', call.method, call.path, call.body || '', '->', call.status);
      workerCalls.push(call);
    });
    context.on('requestfailed', (req) => {
      if (!fromWorker(req)) return;
      log('worker:', req.method(), req.url(), 'failed:', req.failure() && req.failure().errorText);
      workerCalls.push({ method: req.method(), path: new URL(req.url()).pathname, status: 0 });
    });
    context.on('console', (m) => {
      if (!m.worker()) return;   // the page's console is logged by openInbox
      log('worker console.' + m.type() + ':', m.text());
      if (m.type() === 'error' || m.type() === 'warning') workerErrors.push(m.text());
    });
    await openInbox();
    await page.getByLabel('Phone number (with country code)').waitFor({ state: 'visible' });
    return { title: await page.title() };
  },

  /* Registers the number through the page; the demo server (otp_echo) puts
   * the code in its answer and the page fills it in, as the SMS would. */
  async register({ msisdn }) {
    await page.getByLabel('Phone number (with country code)').fill(msisdn);
    await page.getByRole('button', { name: 'Send code' }).click();
    const code = page.getByLabel('Code from the SMS');
    await code.waitFor({ state: 'visible' });
    await until('the code in the page', async () => /^[0-9]{6}$/.test(await code.inputValue()),
      () => code.inputValue());
    const filled = await code.inputValue();
    await page.getByRole('button', { name: 'Verify' }).click();
    await page.locator('#conn[data-state="live"]').waitFor({ state: 'visible' });
    return { code: filled, conn: await page.locator('#conn-text').textContent() };
  },

  /* Waits until the page's push set-up has settled and the worker is active. */
  async push_setup() {
    const push = await until('the page to settle its push set-up', () => page.evaluate(
      (settled) => settled.includes(window.pushgateInbox.push.state) && { ...window.pushgateInbox.push },
      SETTLED), () => page.evaluate(() => window.pushgateInbox.push));
    const registrationId = await until('an activated worker for ' + scope, activeRegistration,
      () => ({ registrations: [...registrations.values()], versions: [...versions.values()] }));
    const scriptURL = [...versions.values()].find((v) => v.registrationId === registrationId).scriptURL;
    return {
      push, registrationId, scriptURL,
      conn: await page.locator('#conn').getAttribute('data-state'),
      scope: await page.evaluate(async (s) => (await navigator.serviceWorker.getRegistration(s)).scope, scope),
    };
  },

  /* What the page stored for itself (localStorage) and for the worker (IndexedDB). */
  async device() {
    return page.evaluate(() => new Promise((resolve, reject) => {
      const req = indexedDB.open('pushgate-inbox');
      req.onerror = () => reject(req.error);
      req.onsuccess = () => {
        const db = req.result;
        const get = db.transaction('device', 'readonly').objectStore('device').get('current');
        get.onerror = () => reject(get.error);
        get.onsuccess = () => {
          db.close();
          resolve({ idb: get.result || null, local: JSON.parse(localStorage.getItem('pushgate.device')) });
        };
      };
    }));
  },

  /* Closes the inbox page (its WebSocket with it): only about:blank is left. */
  async close_inbox() {
    await page.close();
    page = null;
    return { pages: context.pages().map((p) => p.url()) };
  },

  /* Hands a push message to the worker as the browser's push service would. */
  async deliver({ data }) {
    const registrationId = activeRegistration();
    if (!registrationId) throw new Error('no activated registration for ' + scope);
    await cdp.send('ServiceWorker.deliverPushMessage', { origin, registrationId, data });
    return { registrationId, pages: context.pages().map((p) => p.url()) };
  },

  /* The worker's requests to pushgated so far, once there are at least count of them. */
  async worker_calls({ count }) {
    await until(`${count} requests from the worker`, () => workerCalls.length >= (count || 0),
      () => workerCalls.map((c) => c.method + ' ' + c.path));
    return { calls: workerCalls.slice() };
  },

  /* Opens the inbox again and lists the folders it shows. */
  async reopen() {
    await openInbox();
    await page.locator('#inbox').waitFor({ state: 'visible' });
    return {
      folders: await page.locator('a.folder-item').evaluateAll((as) => as.map((a) => a.dataset.folder)),
      stats: await page.evaluate(() => window.pushgateInbox.stats),
    };
  },

  /* The worker's notifications, read through the registration by a page of the origin. */
  async notifications() {
    const list = await page.evaluate(async (s) => {
      const reg = await navigator.serviceWorker.getRegistration(s);
      return (await reg.getNotifications()).map((n) => ({ title: n.title, body: n.body, tag: n.tag }));
    }, scope);
    return { notifications: list };
  },

  /* Opens a folder and waits for a message with this text in it. */
  async open_folder({ folder, text }) {
    await page.locator(`a.folder-item[data-folder=${JSON.stringify(folder)}]`).click();
    await page.locator('#messages .msg-text', { hasText: text }).first().waitFor({ state: 'visible' });
    return {
      texts: await page.locator('#messages .msg-text').allTextContents(),
      ids: await page.locator('#messages .msg').evaluateAll((li) => li.map((n) => Number(n.dataset.id))),
      stats: await page.evaluate(() => window.pushgateInbox.stats),
    };
  },

  /* Log out: the page removes its subscription at pushgated and revokes the device. */
  async logout() {
    await page.getByRole('button', { name: 'Log out' }).click();
    await page.getByLabel('Phone number (with country code)').waitFor({ state: 'visible' });
    return { push: await page.evaluate(() => window.pushgateInbox.push) };
  },

  async screenshot({ name }) {
    fs.mkdirSync(artifactDir, { recursive: true });
    const file = path.join(artifactDir, `push-${name.replace(/[^a-z0-9-]/gi, '_')}.png`);
    await page.screenshot({ path: file, fullPage: true });
    return { file };
  },

  async errors() {
    return { errors: pageErrors.slice(), worker_errors: workerErrors.slice() };
  },

  async quit() {
    reply({ ok: true });
    await shutdown(0);
  },
};

const needsPage = new Set(['register', 'push_setup', 'device', 'close_inbox', 'notifications',
  'open_folder', 'logout', 'screenshot']);

async function run(line) {
  let cmd;
  try { cmd = JSON.parse(line); } catch (e) { return { ok: false, error: 'not JSON: ' + line.slice(0, 80) }; }
  const step = cmd && steps[cmd.cmd];
  if (!step) return { ok: false, error: 'unknown command ' + JSON.stringify(cmd && cmd.cmd) };
  if (cmd.cmd !== 'open' && !context) return { ok: false, error: 'no browser: send open first' };
  if (needsPage.has(cmd.cmd) && !page) return { ok: false, error: 'the inbox page is closed' };
  const limit = STEP_MS + 5000;
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
