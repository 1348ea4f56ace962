/*
 * inbox.test.mjs: drives the reference web inbox (web/) in Debian's headless
 * Chromium through playwright-core, one step per command, so that the
 * integration test (tests/integration/t_web_inbox.py) can interleave browser
 * steps with what it checks in PostgreSQL and sends through the HTTP API.
 *
 *   node tests/browser/inbox.test.mjs URL ARTIFACT_DIR
 *
 * Commands arrive on stdin, one JSON object a line ({"cmd": "register",
 * "msisdn": "..."}); each gets exactly one JSON line on stdout: {"ok": true,
 * ...} or {"ok": false, "error": "..."}. Diagnostics go to stderr. Every
 * step is bounded (STEP_MS) and so is the whole run (RUN_MS); end of stdin
 * closes the browser. It never downloads a browser: CHROMIUM (default
 * /usr/bin/chromium) is used as installed, with a fresh --user-data-dir.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import readline from 'node:readline';
import { chromium } from 'playwright-core';

const STEP_MS = 20000;
const RUN_MS = 240000;

const [url, artifactDir] = process.argv.slice(2);
if (!url || !artifactDir) {
  process.stderr.write('usage: node inbox.test.mjs URL ARTIFACT_DIR\n');
  process.exit(2);
}

const log = (...a) => process.stderr.write('inbox.test: ' + a.join(' ') + '\n');
const reply = (obj) => process.stdout.write(JSON.stringify(obj) + '\n');

const userDataDir = fs.mkdtempSync(path.join(os.tmpdir(), 'pushgate-chromium-'));
let context = null;
let page = null;
const pageErrors = [];

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

const folderLink = (folder) => page.locator(`a.folder-item[data-folder=${JSON.stringify(folder)}]`);

async function unreadOf(folder) {
  const badge = folderLink(folder).locator('.badge');
  return (await badge.count()) ? parseInt(await badge.textContent(), 10) : 0;
}

async function totalUnread() {
  const b = page.locator('#total-unread');
  return (await b.isVisible()) ? parseInt(await b.textContent(), 10) : 0;
}

/* Each step returns the fields of its reply; throwing makes it {ok:false}. */
const steps = {
  async open() {
    context = await chromium.launchPersistentContext(userDataDir, {
      executablePath: process.env.CHROMIUM || '/usr/bin/chromium',
      headless: true,
      args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
        '--disable-background-networking', '--disable-component-update', '--disable-sync',
        '--autoplay-policy=no-user-gesture-required'],
      viewport: { width: 390, height: 780 },
      locale: 'en-US',
      timeout: STEP_MS,
    });
    page = context.pages()[0] || await context.newPage();
    page.setDefaultTimeout(STEP_MS);
    page.on('pageerror', (e) => { pageErrors.push(String(e)); log('page error:', e); });
    page.on('console', (m) => { if (m.type() === 'error') log('console:', m.text()); });
    await page.goto(url, { waitUntil: 'load' });
    await page.getByLabel('Phone number (with country code)').waitFor({ state: 'visible' });
    return { title: await page.title() };
  },

  async register({ msisdn }) {
    await page.getByLabel('Phone number (with country code)').fill(msisdn);
    await page.getByRole('button', { name: 'Send code' }).click();
    await page.getByLabel('Code from the SMS').waitFor({ state: 'visible' });
    return {};
  },

  async verify({ code }) {
    await page.getByLabel('Code from the SMS').fill(code);
    await page.getByRole('button', { name: 'Verify' }).click();
    await page.locator('#conn[data-state="live"]').waitFor({ state: 'visible' });
    return { conn: await page.locator('#conn-text').textContent() };
  },

  /* Wait until a message with this text is listed in the folder list
   * (as the folder's newest message) and report the unread counts. */
  async wait_message({ folder, text }) {
    await folderLink(folder).locator('.fi-preview', { hasText: text }).waitFor({ state: 'visible' });
    const toast = page.locator('#toast', { hasText: text });
    await toast.waitFor({ state: 'visible' });
    return {
      unread: await unreadOf(folder), total_unread: await totalUnread(),
      title: await page.title(), toast: await toast.textContent(),
      stats: await page.evaluate(() => window.pushgateInbox.stats),
    };
  },

  async open_folder({ folder }) {
    await folderLink(folder).click();
    await page.locator(`#folder[data-folder=${JSON.stringify(folder)}]`).waitFor({ state: 'visible' });
    return { unread: await unreadOf(folder), total_unread: await totalUnread() };
  },

  async back() {
    await page.getByRole('button', { name: '← Senders' }).click();
    await page.locator('#folders-pane').waitFor({ state: 'visible' });
    return {};
  },

  /* Texts shown in the open folder, newest first, and the page's counters. */
  async folder_texts() {
    return {
      texts: await page.locator('#messages .msg-text').allTextContents(),
      stats: await page.evaluate(() => window.pushgateInbox.stats),
    };
  },

  /* Wait until the open folder shows a message with this text. */
  async wait_in_folder({ text }) {
    await page.locator('#messages .msg-text', { hasText: text }).waitFor({ state: 'visible' });
    return { texts: await page.locator('#messages .msg-text').allTextContents() };
  },

  /* Click Reject (or Allow) and wait for the server's answer to show. */
  async reject() {
    await page.getByRole('button', { name: 'Reject' }).click();
    await page.locator('#block[data-blocked="yes"]', { hasText: 'Allow' }).waitFor();
    return { state: await page.locator('#block-state').textContent() };
  },

  async allow() {
    await page.getByRole('button', { name: 'Allow' }).click();
    await page.locator('#block[data-blocked="no"]', { hasText: 'Reject' }).waitFor();
    return { state: await page.locator('#block-state').textContent() };
  },

  /* Wait for the connection indicator to reach a state (live, offline, ...). */
  async wait_conn({ state, ms }) {
    await page.locator(`#conn[data-state=${JSON.stringify(state)}]`)
      .waitFor({ state: 'attached', timeout: ms || STEP_MS });
    return {
      text: await page.locator('#conn-text').textContent(),
      stats: await page.evaluate(() => window.pushgateInbox.stats),
    };
  },

  /* Log out: the page revokes its token and shows registration again. */
  async logout() {
    await page.getByRole('button', { name: 'Log out' }).click();
    await page.getByLabel('Phone number (with country code)').waitFor({ state: 'visible' });
    return {
      conn: await page.locator('#conn').getAttribute('data-state'),
      stored: await page.evaluate(() => localStorage.getItem('pushgate.device')),
    };
  },

  async screenshot({ name }) {
    fs.mkdirSync(artifactDir, { recursive: true });
    const file = path.join(artifactDir, `inbox-${name.replace(/[^a-z0-9-]/gi, '_')}.png`);
    await page.screenshot({ path: file, fullPage: true });
    return { file };
  },

  async errors() {
    return { errors: pageErrors.slice() };
  },

  async quit() {
    reply({ ok: true });
    await shutdown(0);
  },
};

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
