// selftest.mjs: proves webpush-service.mjs against a third implementation, the
// npm web-push library (its own aes128gcm encryption and VAPID signing), plus
// a hand-made JWT signed with node:crypto. Starts the service as a child with a
// throw-away self-signed certificate, sends good and bad pushes, and checks
// what the service answered and recorded.
//
// Usage: node tests/pushsvc/selftest.mjs
// Prints "selftest: N passed, M failed"; exits 0 only when M is 0. The child
// and the temporary directory are removed in every case; 60 s overall bound.

import { execFileSync, spawn } from 'node:child_process';
import crypto from 'node:crypto';
import fs from 'node:fs';
import https from 'node:https';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import webpush from 'web-push';

const HERE = path.dirname(fileURLToPath(import.meta.url));
const OVERALL_MS = 60_000;

let child = null;
let tmp = null;
let passed = 0;
let failed = 0;
let serviceLog = ''; // the service's stderr, shown only when something failed

function cleanup() {
	if (child && child.exitCode === null && child.signalCode === null) {
		try {
			child.kill('SIGTERM');
		} catch { /* already gone */ }
	}
	if (tmp) {
		fs.rmSync(tmp, { recursive: true, force: true });
		tmp = null;
	}
}
process.on('exit', cleanup);

const deadline = setTimeout(() => {
	console.error(`selftest: overall timeout of ${OVERALL_MS / 1000} s`);
	console.log(`selftest: ${passed} passed, ${failed + 1} failed`);
	process.stderr.write(serviceLog ? serviceLog.trimEnd().replace(/^/gm, '  [service] ') + '\n' : '');
	cleanup();
	process.exit(1);
}, OVERALL_MS);

function check(name, cond, detail) {
	if (cond) {
		passed++;
		console.log(`ok   ${name}`);
	} else {
		failed++;
		console.log(`FAIL ${name}${detail !== undefined ? ': ' + JSON.stringify(detail) : ''}`);
	}
}

/* --- service --------------------------------------------------------------------------- */

function startService() {
	tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'pushsvc-selftest-'));
	const cert = path.join(tmp, 'cert.pem');
	const key = path.join(tmp, 'key.pem');
	execFileSync('openssl', [
		'req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes',
		'-days', '1', '-subj', '/CN=127.0.0.1', '-addext', 'subjectAltName=IP:127.0.0.1',
		'-keyout', key, '-out', cert,
	], { stdio: ['ignore', 'ignore', 'pipe'], timeout: 20_000 });
	child = spawn(process.execPath, [path.join(HERE, 'webpush-service.mjs'), '--cert', cert, '--key', key, '--port', '0'],
		{ stdio: ['ignore', 'pipe', 'pipe'] });
	child.stderr.on('data', (d) => {
		if (serviceLog.length < 256 * 1024)
			serviceLog += d;
	});
	return new Promise((resolve, reject) => {
		let out = '';
		child.stdout.on('data', (d) => {
			out += d;
			const nl = out.indexOf('\n');
			if (nl >= 0 && out !== null) {
				const line = out.slice(0, nl);
				out = null;
				try {
					resolve({ port: JSON.parse(line).port, ca: fs.readFileSync(cert) });
				} catch (e) {
					reject(new Error(`service printed ${JSON.stringify(line)}`));
				}
			}
		});
		child.on('exit', (code, sig) => reject(new Error(`service exited early (${code ?? sig})`)));
	});
}

/* --- HTTP ------------------------------------------------------------------------------ */

let agent;
let base;

function request(method, url, { headers = {}, body } = {}) {
	return new Promise((resolve, reject) => {
		const req = https.request(url, { method, headers, agent, timeout: 10_000 }, (res) => {
			const chunks = [];
			res.on('data', (c) => chunks.push(c));
			res.on('end', () => {
				const text = Buffer.concat(chunks).toString('utf8');
				let json = null;
				try {
					json = text ? JSON.parse(text) : null;
				} catch { /* not JSON */ }
				resolve({ status: res.statusCode, headers: res.headers, json, text });
			});
		});
		req.on('timeout', () => req.destroy(new Error('request timeout')));
		req.on('error', reject);
		req.end(body);
	});
}

const api = (method, p, json) => request(method, base + p, json === undefined ? {} :
	{ headers: { 'Content-Type': 'application/json' }, body: JSON.stringify(json) });

// web-push's answer as {status, headers}, whether it resolved or threw a WebPushError.
async function wpSend(subscription, payload, options) {
	try {
		const r = await webpush.sendNotification(subscription, payload, { agent, ...options });
		return { status: r.statusCode, headers: r.headers };
	} catch (e) {
		if (e.statusCode === undefined)
			throw e;
		return { status: e.statusCode, headers: e.headers };
	}
}

// A request that web-push built, changed by `mutate`, sent by us.
async function rawSend(subscription, payload, options, mutate) {
	const d = webpush.generateRequestDetails(subscription, payload, options);
	const msg = { headers: { ...d.headers }, body: d.body };
	mutate(msg);
	if (msg.body !== undefined && msg.body !== null)
		msg.headers['Content-Length'] = msg.body.length;
	return request('POST', d.endpoint, msg);
}

// An ES256 JWT made with node:crypto alone (a fourth implementation).
function handJwt(claims, { keyPair, header = { typ: 'JWT', alg: 'ES256' } } = {}) {
	const kp = keyPair || crypto.generateKeyPairSync('ec', { namedCurve: 'P-256' });
	const jwk = kp.publicKey.export({ format: 'jwk' });
	const k = Buffer.concat([Buffer.from([4]), Buffer.from(jwk.x, 'base64url'), Buffer.from(jwk.y, 'base64url')]).toString('base64url');
	const input = `${Buffer.from(JSON.stringify(header)).toString('base64url')}.${Buffer.from(JSON.stringify(claims)).toString('base64url')}`;
	const sig = crypto.sign('sha256', Buffer.from(input), { key: kp.privateKey, dsaEncoding: 'ieee-p1363' });
	return { t: `${input}.${sig.toString('base64url')}`, k };
}

/* --- the checks ------------------------------------------------------------------------ */

async function run() {
	const { port, ca } = await startService();
	agent = new https.Agent({ ca, keepAlive: true });
	base = `https://127.0.0.1:${port}`;
	const origin = base;
	check('service prints its port', Number.isInteger(port) && port > 0, port);

	// Subscribe.
	const s = await api('POST', '/subscribe');
	check('POST /subscribe answers 201', s.status === 201, s.status);
	const sub = s.json;
	const p256dh = Buffer.from(sub.keys.p256dh, 'base64url');
	const auth = Buffer.from(sub.keys.auth, 'base64url');
	check('subscription has a 65-byte uncompressed p256dh and a 16-byte auth, unpadded',
		p256dh.length === 65 && p256dh[0] === 4 && auth.length === 16 && !/=/.test(sub.keys.p256dh + sub.keys.auth), sub.keys);
	check('endpoint is on the listening address', sub.endpoint === `${origin}/push/${sub.id}`, sub.endpoint);
	const subscription = { endpoint: sub.endpoint, keys: sub.keys };

	const vapid = webpush.generateVAPIDKeys();
	const vapidDetails = { subject: 'mailto:t@example.com', publicKey: vapid.publicKey, privateKey: vapid.privateKey };
	const opts = { vapidDetails, TTL: 60, urgency: 'high', topic: 'abc', contentEncoding: 'aes128gcm' };

	// (1) A good push with non-ASCII text arrives byte-exact.
	const payload = 'Grüße, 안녕하세요 — ✓ 🚀 "quotes" \\ end';
	const before = Math.floor(Date.now() / 1000);
	let r = await wpSend(subscription, payload, opts);
	check('web-push send answered 201', r.status === 201, r.status);
	check('201 carries Location /message/<n> and the TTL', /^https:\/\/127\.0\.0\.1:\d+\/message\/\d+$/.test(r.headers.location || '') &&
		r.headers.ttl === '60', r.headers);
	let got = (await api('GET', `/received/${sub.id}`)).json;
	const e = got.received[0];
	check('one message received, none rejected', got.received.length === 1 && got.rejected.length === 0, got);
	check('plaintext is byte-exact', e.plaintext === payload && e.plaintext_b64 === Buffer.from(payload).toString('base64'), e);
	check('ttl, urgency and topic recorded', e.ttl === 60 && e.urgency === 'high' && e.topic === 'abc', e);
	check('claims recorded (aud = origin, sub, exp within 24 h)', e.claims.aud === origin && e.claims.sub === 'mailto:t@example.com' &&
		e.claims.exp > before && e.claims.exp <= before + 86400 + 1, e.claims);
	check('vapid key, record size and body length recorded', e.vapid_key === vapid.publicKey && e.record_size === 4096 &&
		e.body_len === 86 + Buffer.byteLength(payload) + 17, e);

	// (2) Signed with one key, k= of another: 403.
	const other = webpush.generateVAPIDKeys();
	r = await wpSend(subscription, 'x', { ...opts, vapidDetails: { ...vapidDetails, publicKey: other.publicKey } });
	check('JWT signed by a key other than k= answers 403', r.status === 403, r.status);
	got = (await api('GET', `/received/${sub.id}`)).json;
	const rej = got.rejected.at(-1);
	check('... and is recorded in rejected with its reason', got.received.length === 1 && rej && rej.answered === 403 &&
		/JWT refused/.test(rej.reason) && rej.vapid_key === other.publicKey, rej);

	// (3) Queued answers are given in order, then 201 again.
	const q = await api('POST', `/control/${sub.id}`, { answers: [{ status: 410 }, { status: 429, retry_after: 1 }, { status: 201 }] });
	check('POST /control queues answers', q.status === 200, q);
	r = await wpSend(subscription, 'first', opts);
	check('first queued answer: 410', r.status === 410, r.status);
	r = await wpSend(subscription, 'second', opts);
	check('second queued answer: 429 with Retry-After: 1', r.status === 429 && r.headers['retry-after'] === '1', r);
	r = await wpSend(subscription, 'third', opts);
	check('third queued answer: 201', r.status === 201, r.status);
	r = await wpSend(subscription, 'fourth', opts);
	check('queue used up: default 201', r.status === 201, r.status);
	got = (await api('GET', `/received/${sub.id}`)).json;
	const answered = got.rejected.slice(-2);
	check('queued refusals recorded after decryption', answered.length === 2 && answered[0].answered === 410 &&
		answered[0].plaintext === 'first' && answered[1].answered === 429 && answered[1].plaintext === 'second', answered);
	check('received holds the accepted ones in order', got.received.map((x) => x.plaintext).join('|') === `${payload}|third|fourth`,
		got.received.map((x) => x.plaintext));

	// Refusals of malformed requests (web-push builds them, we spoil one thing).
	const nowS = () => Math.floor(Date.now() / 1000);
	r = await rawSend(subscription, 'p', opts, (m) => { delete m.headers.TTL; });
	check('no TTL: 400', r.status === 400, r);
	r = await rawSend(subscription, 'p', opts, (m) => { m.headers.TTL = '-1'; });
	check('negative TTL: 400', r.status === 400, r);
	r = await rawSend(subscription, 'p', opts, (m) => { m.headers.Urgency = 'urgent'; });
	check('unknown Urgency: 400', r.status === 400, r);
	r = await rawSend(subscription, 'p', opts, (m) => { m.headers.Topic = 'a'.repeat(33); });
	check('Topic of 33 characters: 400', r.status === 400, r);
	r = await rawSend(subscription, 'p', opts, (m) => { m.headers.Topic = 'a+b'; });
	check('Topic outside base64url: 400', r.status === 400, r);
	r = await rawSend(subscription, 'p', { ...opts, contentEncoding: 'aesgcm' }, () => {});
	check('Content-Encoding aesgcm: 415', r.status === 415, r);
	r = await rawSend(subscription, 'p', opts, (m) => { delete m.headers.Authorization; });
	check('no Authorization: 401', r.status === 401, r);
	r = await rawSend(subscription, 'p', opts, (m) => { m.headers.Authorization = m.headers.Authorization.replace(/^vapid /, 'WebPush '); });
	check('Authorization scheme other than vapid: 401', r.status === 401, r);
	r = await rawSend(subscription, 'p', opts, (m) => { m.headers.Authorization = m.headers.Authorization.replace(/, k=.*/, ''); });
	check('vapid without k=: 401', r.status === 401, r);
	r = await rawSend(subscription, 'p', opts, (m) => {
		m.headers.Authorization = webpush.getVapidHeaders('https://127.0.0.1:1', vapidDetails.subject, vapid.publicKey, vapid.privateKey, 'aes128gcm').Authorization;
	});
	check('aud of another origin: 403', r.status === 403, r);

	const kp = crypto.generateKeyPairSync('ec', { namedCurve: 'P-256' });
	const withJwt = (claims, header) => (m) => {
		const j = handJwt(claims, { keyPair: kp, header });
		m.headers.Authorization = `vapid t=${j.t},k=${j.k}`;
	};
	r = await rawSend(subscription, 'hand-made', opts, withJwt({ aud: origin, exp: nowS() + 3600, sub: 'https://example.com/contact' }));
	check('node:crypto JWT, https: sub, "t=..,k=.." without space: 201', r.status === 201, r);
	r = await rawSend(subscription, 'p', opts, withJwt({ aud: origin, exp: nowS() + 90000, sub: 'mailto:t@example.com' }));
	check('exp more than 24 h ahead: 403', r.status === 403, r);
	r = await rawSend(subscription, 'p', opts, withJwt({ aud: origin, exp: nowS() - 10, sub: 'mailto:t@example.com' }));
	check('expired JWT: 403', r.status === 403, r);
	r = await rawSend(subscription, 'p', opts, withJwt({ aud: origin, exp: nowS() + 3600, sub: 'http://example.com' }));
	check('sub neither mailto: nor https:: 403', r.status === 403, r);
	r = await rawSend(subscription, 'p', opts, withJwt({ aud: origin, exp: nowS() + 3600 }));
	check('no sub: 403', r.status === 403, r);
	r = await rawSend(subscription, 'p', opts, withJwt({ aud: origin, exp: nowS() + 3600, sub: 'mailto:t@example.com' }, { typ: 'JWT', alg: 'ES384' }));
	check('alg other than ES256: 403', r.status === 403, r);

	r = await rawSend(subscription, 'tamper', opts, (m) => { m.body = Buffer.from(m.body); m.body[m.body.length - 1] ^= 1; });
	check('tampered ciphertext: 400', r.status === 400, r);
	r = await rawSend(subscription, 'p', opts, (m) => { m.body = Buffer.from(m.body); m.body.writeUInt32BE(18, 16); });
	check('rs not greater than the one record (RFC 8291 §4): 400', r.status === 400, r);
	r = await rawSend(subscription, 'p', opts, (m) => { m.body = Buffer.concat([m.body, Buffer.alloc(5000)]); });
	check('body over 4096 bytes: 413', r.status === 413, r);
	r = await rawSend({ ...subscription, keys: { ...sub.keys, auth: crypto.randomBytes(16).toString('base64url') } }, 'p', opts, () => {});
	check('encrypted with another auth secret: 400', r.status === 400, r);

	got = (await api('GET', `/received/${sub.id}`)).json;
	check('hand-made JWT message received', got.received.at(-1).plaintext === 'hand-made' &&
		got.received.at(-1).claims.sub === 'https://example.com/contact', got.received.at(-1));
	check('every refusal recorded with a reason', got.rejected.length === 22 &&
		got.rejected.every((x) => typeof x.reason === 'string' && x.answered >= 400), got.rejected.length);

	// Unknown subscription and paths.
	r = await request('POST', `${base}/push/nosuchid`, { body: 'x' });
	check('unknown subscription: 404', r.status === 404, r.status);
	r = await api('GET', '/elsewhere');
	check('other path: 404', r.status === 404, r.status);

	// (4) After DELETE the endpoint is gone: 410.
	r = await api('DELETE', `/subscriptions/${sub.id}`);
	check('DELETE /subscriptions answers 204', r.status === 204, r.status);
	r = await wpSend(subscription, 'after delete', opts);
	check('push to a deleted subscription: 410', r.status === 410, r.status);

	// Concurrency: many pushes at once on a few keep-alive connections.
	const s2 = (await api('POST', '/subscribe')).json;
	const sub2 = { endpoint: s2.endpoint, keys: s2.keys };
	const N = 200;
	const results = await Promise.all(Array.from({ length: N }, (_, i) => wpSend(sub2, `m${i}`, opts)));
	got = (await api('GET', `/received/${s2.id}`)).json;
	const texts = new Set(got.received.map((x) => x.plaintext));
	check(`${N} concurrent pushes all accepted and recorded`, results.every((x) => x.status === 201) && texts.size === N, got.received.length);
}

let code = 1;
try {
	await run();
	code = failed === 0 ? 0 : 1;
} catch (e) {
	failed++;
	console.log(`FAIL selftest aborted: ${e && e.stack || e}`);
}
if (failed)
	process.stderr.write(serviceLog ? serviceLog.trimEnd().replace(/^/gm, '  [service] ') + '\n' : '');
console.log(`selftest: ${passed} passed, ${failed} failed`);
clearTimeout(deadline);
if (agent)
	agent.destroy();
cleanup();
process.exit(code);
