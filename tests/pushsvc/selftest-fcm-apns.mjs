// selftest-fcm-apns.mjs: proves fcm-service.mjs and apns-service.mjs with an
// independent client: JWTs signed with node:crypto alone (RS256 for the Google
// service-account assertion, ES256 for the APNs provider token), requests made
// with node:http2 (and node:https for HTTP/1.1). Starts both services as
// children with a throw-away self-signed certificate, drives them the way a
// provider would, and checks what they answered and recorded.
//
// Usage: node tests/pushsvc/selftest-fcm-apns.mjs
// Prints "selftest-fcm-apns: N passed, M failed"; exits 0 only when M is 0. The
// children and the temporary directory are removed in every case; 60 s overall.

import { execFileSync, spawn } from 'node:child_process';
import crypto from 'node:crypto';
import fs from 'node:fs';
import http2 from 'node:http2';
import https from 'node:https';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const HERE = path.dirname(fileURLToPath(import.meta.url));
const OVERALL_MS = 60_000;
const NAME = 'selftest-fcm-apns';
const FCM_SCOPE = 'https://www.googleapis.com/auth/firebase.messaging';

const children = [];
const sessions = [];
let tmp = null;
let passed = 0;
let failed = 0;
let serviceLog = '';

function cleanup() {
	for (const s of sessions) {
		try {
			s.destroy();
		} catch { /* gone */ }
	}
	for (const c of children) {
		if (c.exitCode === null && c.signalCode === null) {
			try {
				c.kill('SIGTERM');
			} catch { /* already gone */ }
		}
	}
	if (tmp) {
		fs.rmSync(tmp, { recursive: true, force: true });
		tmp = null;
	}
}
process.on('exit', cleanup);

const deadline = setTimeout(() => {
	console.error(`${NAME}: overall timeout of ${OVERALL_MS / 1000} s`);
	console.log(`${NAME}: ${passed} passed, ${failed + 1} failed`);
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

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

/* --- services ----------------------------------------------------------------------------- */

function makeCert() {
	tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'pushsvc-fcm-apns-'));
	const cert = path.join(tmp, 'cert.pem');
	const key = path.join(tmp, 'key.pem');
	execFileSync('openssl', [
		'req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes',
		'-days', '1', '-subj', '/CN=127.0.0.1', '-addext', 'subjectAltName=IP:127.0.0.1',
		'-keyout', key, '-out', cert,
	], { stdio: ['ignore', 'ignore', 'pipe'], timeout: 20_000 });
	return { cert, key };
}

function startService(script, { cert, key }) {
	const child = spawn(process.execPath, [path.join(HERE, script), '--cert', cert, '--key', key, '--port', '0'],
		{ stdio: ['ignore', 'pipe', 'pipe'] });
	children.push(child);
	child.stderr.on('data', (d) => {
		if (serviceLog.length < 256 * 1024)
			serviceLog += `${script}: ${d}`;
	});
	return new Promise((resolve, reject) => {
		let out = '';
		child.stdout.on('data', (d) => {
			if (out === null)
				return;
			out += d;
			const nl = out.indexOf('\n');
			if (nl >= 0) {
				const line = out.slice(0, nl);
				out = null;
				try {
					resolve(JSON.parse(line).port);
				} catch {
					reject(new Error(`${script} printed ${JSON.stringify(line)}`));
				}
			}
		});
		child.on('exit', (code, sig) => reject(new Error(`${script} exited early (${code ?? sig})`)));
	});
}

/* --- HTTP ------------------------------------------------------------------------------ */

let ca;
let agent;

function parse(text) {
	try {
		return text ? JSON.parse(text) : null;
	} catch {
		return null;
	}
}

// HTTP/1.1 (what Python urllib speaks).
function h1(method, url, { headers = {}, body } = {}) {
	return new Promise((resolve, reject) => {
		const req = https.request(url, { method, headers, agent, timeout: 10_000 }, (res) => {
			const chunks = [];
			res.on('data', (c) => chunks.push(c));
			res.on('end', () => {
				const text = Buffer.concat(chunks).toString('utf8');
				resolve({ status: res.statusCode, headers: res.headers, text, json: parse(text), version: res.httpVersion });
			});
		});
		req.on('timeout', () => req.destroy(new Error('request timeout')));
		req.on('error', reject);
		req.end(body);
	});
}

function h2session(origin) {
	const s = http2.connect(origin, { ca });
	s.on('error', () => {});
	sessions.push(s);
	return s;
}

function h2(session, method, p, headers = {}, body) {
	return new Promise((resolve, reject) => {
		const req = session.request({ ':method': method, ':path': p, ...headers });
		const t = setTimeout(() => req.close(http2.constants.NGHTTP2_CANCEL), 10_000);
		let status = 0;
		let hdrs = {};
		const chunks = [];
		req.on('response', (h) => {
			status = h[':status'];
			hdrs = h;
		});
		req.on('data', (c) => chunks.push(c));
		req.on('end', () => {
			clearTimeout(t);
			const text = Buffer.concat(chunks).toString('utf8');
			resolve({ status, headers: hdrs, text, json: parse(text) });
		});
		req.on('error', (e) => {
			clearTimeout(t);
			reject(e);
		});
		req.end(body);
	});
}

const json = (o) => ({ headers: { 'content-type': 'application/json' }, body: JSON.stringify(o) });

/* --- JWTs with node:crypto alone ----------------------------------------------------------- */

const b64j = (o) => Buffer.from(JSON.stringify(o)).toString('base64url');

function signRS256(header, claims, privateKeyPem) {
	const input = `${b64j(header)}.${b64j(claims)}`;
	return `${input}.${crypto.sign('sha256', Buffer.from(input), privateKeyPem).toString('base64url')}`;
}

function signES256(header, claims, privateKey) {
	const input = `${b64j(header)}.${b64j(claims)}`;
	const sig = crypto.sign('sha256', Buffer.from(input), { key: privateKey, dsaEncoding: 'ieee-p1363' });
	return `${input}.${sig.toString('base64url')}`;
}

const nowS = () => Math.floor(Date.now() / 1000);

/* --- FCM ---------------------------------------------------------------------------------- */

async function runFcm(port) {
	const base = `https://127.0.0.1:${port}`;
	const c1 = (method, p, o) => h1(method, base + p, o);
	check('fcm: service prints its port', Number.isInteger(port) && port > 0, port);

	let r = await c1('POST', '/service-account');
	const sa = r.json;
	check('fcm: POST /service-account answers 201', r.status === 201, r.status);
	check('fcm: a complete service-account JSON', sa && sa.type === 'service_account' && sa.project_id === 'pushgate-test' &&
		/^[0-9a-f]{40}$/.test(sa.private_key_id) && sa.client_email === 'pushgate@pushgate-test.iam.gserviceaccount.com' &&
		/^\d{21}$/.test(sa.client_id) && sa.auth_uri && sa.token_uri === `${base}/token` &&
		sa.auth_provider_x509_cert_url && sa.client_x509_cert_url && sa.universe_domain === 'googleapis.com', sa);
	const pk = crypto.createPrivateKey(sa.private_key);
	check('fcm: private_key is an RSA 2048 PKCS#8 PEM', sa.private_key.startsWith('-----BEGIN PRIVATE KEY-----\n') &&
		pk.asymmetricKeyType === 'rsa' && pk.asymmetricKeyDetails.modulusLength === 2048, pk.asymmetricKeyDetails);

	r = await c1('POST', '/devices');
	const dev = r.json && r.json.token;
	check('fcm: POST /devices gives an FCM-like registration token', r.status === 201 && /^[A-Za-z0-9_:-]{140,200}$/.test(dev || ''), r.json);

	const assertion = (over = {}, hdr = {}, keyPem = sa.private_key) => {
		const iat = nowS();
		return signRS256({ alg: 'RS256', typ: 'JWT', kid: sa.private_key_id, ...hdr },
			{ iss: sa.client_email, scope: FCM_SCOPE, aud: sa.token_uri, iat, exp: iat + 3600, ...over }, keyPem);
	};
	const grant = (a, grantType = 'urn:ietf:params:oauth:grant-type:jwt-bearer') => c1('POST', '/token', {
		headers: { 'content-type': 'application/x-www-form-urlencoded' },
		body: new URLSearchParams({ grant_type: grantType, assertion: a }).toString(),
	});

	// The grant (over HTTP/1.1, as most OAuth clients do).
	r = await grant(assertion());
	check('fcm: /token grants an access token', r.status === 200 && /^ya29\./.test(r.json.access_token) &&
		r.json.expires_in === 3599 && r.json.token_type === 'Bearer', r.json);
	let access = r.json.access_token;

	// Assertions Google refuses.
	const other = crypto.generateKeyPairSync('rsa', { modulusLength: 2048 }).privateKey.export({ type: 'pkcs8', format: 'pem' });
	r = await grant(assertion({}, {}, other));
	check('fcm: assertion signed by another key: 400 invalid_grant', r.status === 400 && r.json.error === 'invalid_grant', r.json);
	r = await grant(assertion({ aud: 'https://oauth2.googleapis.com/token' }));
	check('fcm: aud not the token_uri: 400 invalid_grant', r.status === 400 && r.json.error === 'invalid_grant', r.json);
	r = await grant(assertion({ exp: nowS() + 3700 }));
	check('fcm: exp - iat over 3600 s: 400 invalid_grant', r.status === 400 && r.json.error === 'invalid_grant', r.json);
	r = await grant(assertion({ iat: nowS() + 600, exp: nowS() + 1200 }));
	check('fcm: iat in the future: 400 invalid_grant', r.status === 400 && r.json.error === 'invalid_grant', r.json);
	r = await grant(assertion({}, { kid: 'f'.repeat(40) }));
	check('fcm: kid not the private_key_id: 400 invalid_grant', r.status === 400 && r.json.error === 'invalid_grant', r.json);
	r = await grant(assertion({ scope: undefined }));
	check('fcm: no scope: 400 invalid_scope', r.status === 400 && r.json.error === 'invalid_scope', r.json);
	r = await grant(assertion(), 'client_credentials');
	check('fcm: other grant_type: 400 unsupported_grant_type', r.status === 400 && r.json.error === 'unsupported_grant_type', r.json);

	// Sends over HTTP/2.
	const fs2 = h2session(base);
	const sendPath = `/v1/projects/${sa.project_id}/messages:send`;
	const fcmSend = (body, tok = access, p = sendPath) => h2(fs2, 'POST', p, {
		authorization: `Bearer ${tok}`, 'content-type': 'application/json; charset=UTF-8',
	}, typeof body === 'string' ? body : JSON.stringify(body));
	const msg = (over = {}) => ({ message: { token: dev, data: { kind: 'wake', n: '1' }, android: { priority: 'high', ttl: '3.5s' },
		notification: { title: 'T', body: 'B' }, ...over } });

	r = await fcmSend(msg());
	check('fcm: send over HTTP/2 answers 200 with projects/<p>/messages/0:<n>', r.status === 200 &&
		/^projects\/pushgate-test\/messages\/0:\d+$/.test(r.json && r.json.name), r);
	let got = (await c1('GET', '/received')).json;
	let e = got.received.at(-1);
	check('fcm: received records token, message, HTTP/2, authorization_ok', e && e.token === dev && e.http_version === '2.0' &&
		e.authorization_ok === true && e.message.data.kind === 'wake' && e.name === r.json.name, e);

	r = await h1('POST', base + sendPath, { headers: { authorization: `Bearer ${access}`, 'content-type': 'application/json' },
		body: JSON.stringify(msg()) });
	check('fcm: send over HTTP/1.1 answers 200 too', r.status === 200 && r.version === '1.1', r.status);

	r = await fcmSend({ ...msg(), validate_only: true });
	check('fcm: validate_only answers projects/<p>/messages/fake_message_id',
		r.status === 200 && r.json.name === 'projects/pushgate-test/messages/fake_message_id', r.json);

	// Unknown token: the documented body, exactly.
	r = await fcmSend(msg({ token: 'nosuchtoken' }));
	check('fcm: unknown token: 400 INVALID_ARGUMENT, the documented body', r.status === 400 && JSON.stringify(r.json) === JSON.stringify({
		error: { code: 400, message: 'The registration token is not a valid FCM registration token', status: 'INVALID_ARGUMENT',
			details: [{ '@type': 'type.googleapis.com/google.firebase.fcm.v1.FcmError', errorCode: 'INVALID_ARGUMENT' }] },
	}), r.json);

	// Data value not a string.
	r = await fcmSend(msg({ data: { n: 12 } }));
	check('fcm: data value a number: 400 INVALID_ARGUMENT naming message.data[0].value', r.status === 400 &&
		r.json.error.status === 'INVALID_ARGUMENT' && r.json.error.message === "Invalid value at 'message.data[0].value' (TYPE_STRING), 12" &&
		r.json.error.details[0].fieldViolations[0].field === 'message.data[0].value', r.json);
	r = await fcmSend({ ...msg(), extra: 1 });
	check('fcm: unknown top-level field: 400 INVALID_ARGUMENT', r.status === 400 && r.json.error.status === 'INVALID_ARGUMENT' &&
		/Unknown name "extra"/.test(r.json.error.message), r.json);
	r = await fcmSend(msg({ colour: 'red' }));
	check('fcm: unknown message field: 400 INVALID_ARGUMENT', r.status === 400 && /Unknown name "colour" at 'message'/.test(r.json.error.message), r.json);
	r = await fcmSend(msg({ topic: 'news' }));
	check('fcm: token and topic both set: 400 INVALID_ARGUMENT', r.status === 400 && r.json.error.status === 'INVALID_ARGUMENT', r.json);
	r = await fcmSend({ message: { data: { a: 'b' } } });
	check('fcm: no target: 400 "Recipient of the message is not set."', r.status === 400 &&
		r.json.error.message === 'Recipient of the message is not set.', r.json);
	r = await fcmSend(msg({ android: { priority: 'urgent' } }));
	check('fcm: android.priority "urgent": 400', r.status === 400 && r.json.error.status === 'INVALID_ARGUMENT', r.json);
	r = await fcmSend(msg({ android: { ttl: '10' } }));
	check('fcm: android.ttl "10" (no s): 400', r.status === 400 && r.json.error.status === 'INVALID_ARGUMENT', r.json);
	r = await fcmSend(msg({ android: { ttl: 10 } }));
	check('fcm: android.ttl a number: 400', r.status === 400, r.json);
	r = await fcmSend(msg({ android: { ttl: '2419201s' } }));
	check('fcm: android.ttl over 4 weeks: 400', r.status === 400, r.json);
	r = await fcmSend(msg({ android: { priority: 'normal', ttl: '0s', collapse_key: 'c' } }));
	check('fcm: android normal, "0s", collapse_key: 200', r.status === 200, r.json);
	r = await fcmSend(msg({ data: { from: 'x' } }));
	check('fcm: reserved data key "from": 400', r.status === 400 && r.json.error.status === 'INVALID_ARGUMENT', r.json);
	r = await fcmSend(msg({ data: { big: 'x'.repeat(4093) }, notification: undefined }));
	check('fcm: 4096 bytes of payload data: 200', r.status === 200, r.json);
	r = await fcmSend(msg({ data: { big: 'x'.repeat(4094) }, notification: undefined }));
	check('fcm: 4097 bytes: 400 "Message is too big"', r.status === 400 && r.json.error.message === 'Message is too big', r.json);
	r = await fcmSend('{not json');
	check('fcm: body not JSON: 400', r.status === 400 && r.json.error.status === 'INVALID_ARGUMENT', r.json);
	r = await fcmSend(msg(), access, '/v1/projects/someone-else/messages:send');
	check('fcm: another project in the path: 403 PERMISSION_DENIED', r.status === 403 && r.json.error.status === 'PERMISSION_DENIED', r.json);
	r = await h2(fs2, 'POST', sendPath, { 'content-type': 'application/json' }, JSON.stringify(msg()));
	check('fcm: no Authorization: 401 UNAUTHENTICATED', r.status === 401 && r.json.error.status === 'UNAUTHENTICATED', r.json);
	r = await fcmSend(msg(), 'ya29.forged');
	check('fcm: unknown access token: 401 UNAUTHENTICATED with the documented message', r.status === 401 &&
		r.json.error.code === 401 && r.json.error.status === 'UNAUTHENTICATED' &&
		r.json.error.message.startsWith('Request had invalid authentication credentials.'), r.json);

	// SENDER_ID_MISMATCH: a token of another project.
	const sa2 = (await c1('POST', '/service-account', json({ project_id: 'pushgate-other' }))).json;
	const dev2 = (await c1('POST', '/devices', json({ project_id: 'pushgate-other' }))).json.token;
	r = await fcmSend(msg({ token: dev2 }));
	check('fcm: token of another project: 403 SENDER_ID_MISMATCH', r.status === 403 &&
		r.json.error.details[0].errorCode === 'SENDER_ID_MISMATCH', r.json);
	check('fcm: a second account has its own project and key', sa2.project_id === 'pushgate-other' &&
		sa2.private_key_id !== sa.private_key_id, sa2.client_email);

	// Unregistered.
	r = await c1('DELETE', `/devices/${encodeURIComponent(dev)}`);
	check('fcm: DELETE /devices answers 204', r.status === 204, r.status);
	r = await fcmSend(msg());
	check('fcm: deleted token: 404 NOT_FOUND UNREGISTERED', r.status === 404 && r.json.error.status === 'NOT_FOUND' &&
		r.json.error.message === 'Requested entity was not found.' && r.json.error.details[0].errorCode === 'UNREGISTERED', r.json);

	// Access tokens expired by control, then a new grant.
	const dev3 = (await c1('POST', '/devices')).json.token;
	r = await c1('POST', '/control/expire-tokens');
	check('fcm: /control/expire-tokens', r.status === 200 && r.json.expired >= 1, r.json);
	r = await fcmSend(msg({ token: dev3 }));
	check('fcm: send after expire-tokens: 401 UNAUTHENTICATED', r.status === 401 && r.json.error.status === 'UNAUTHENTICATED', r.json);
	r = await grant(assertion());
	access = r.json.access_token;
	r = await fcmSend(msg({ token: dev3 }));
	check('fcm: a new grant works', r.status === 200, r.json);

	// Token lifetime.
	r = await c1('POST', '/control/token-lifetime', json({ expires_in: 1 }));
	check('fcm: /control/token-lifetime', r.status === 200 && r.json.expires_in === 1, r.json);
	r = await grant(assertion());
	const shortLived = r.json.access_token;
	check('fcm: grant carries the set expires_in', r.json.expires_in === 1, r.json);
	await sleep(1100);
	r = await fcmSend(msg({ token: dev3 }), shortLived);
	check('fcm: access token past expires_in: 401', r.status === 401, r.json);
	await c1('POST', '/control/token-lifetime', json({ expires_in: 3599 }));

	// Queued answers.
	r = await c1('POST', '/control', json({ answers: [{ status: 503, retry_after: 2 }, { status: 429 }, { status: 500 },
		{ error_code: 'THIRD_PARTY_AUTH_ERROR' }] }));
	check('fcm: POST /control queues answers', r.status === 200 && r.json.queued === 4, r.json);
	r = await fcmSend(msg({ token: dev3 }));
	check('fcm: queued 503 UNAVAILABLE with Retry-After: 2', r.status === 503 && r.headers['retry-after'] === '2' &&
		r.json.error.status === 'UNAVAILABLE' && r.json.error.details[0].errorCode === 'UNAVAILABLE', r);
	r = await fcmSend(msg({ token: dev3 }));
	check('fcm: queued 429 RESOURCE_EXHAUSTED / QUOTA_EXCEEDED', r.status === 429 && r.json.error.status === 'RESOURCE_EXHAUSTED' &&
		r.json.error.details[0].errorCode === 'QUOTA_EXCEEDED', r.json);
	r = await fcmSend(msg({ token: dev3 }));
	check('fcm: queued 500 INTERNAL', r.status === 500 && r.json.error.status === 'INTERNAL' && r.json.error.details[0].errorCode === 'INTERNAL', r.json);
	r = await fcmSend(msg({ token: dev3 }));
	check('fcm: queued 401 THIRD_PARTY_AUTH_ERROR', r.status === 401 && r.json.error.details[0].errorCode === 'THIRD_PARTY_AUTH_ERROR', r.json);
	r = await fcmSend(msg({ token: dev3 }));
	check('fcm: queue used up: 200 again', r.status === 200, r.json);

	got = (await c1('GET', '/received')).json;
	check('fcm: /received counts the grants', got.token_grants === 3 && got.grants.every((g) => g.client_email === sa.client_email), got.token_grants);
	const reasons = got.rejected.map((x) => x.reason);
	check('fcm: refusals recorded with reasons and answers', got.rejected.every((x) => typeof x.reason === 'string' && x.answered >= 400) &&
		reasons.includes('unknown registration token') && reasons.includes('token deleted through DELETE /devices') &&
		reasons.filter((x) => x === 'queued answer').length === 4 && got.rejected.some((x) => x.endpoint === '/token'), reasons);
}

/* --- APNs --------------------------------------------------------------------------------- */

async function runApns(port) {
	const base = `https://127.0.0.1:${port}`;
	const c1 = (method, p, o) => h1(method, base + p, o);
	check('apns: service prints its port', Number.isInteger(port) && port > 0, port);

	let r = await c1('POST', '/key');
	const k = r.json;
	check('apns: POST /key answers 201 with key_id, team_id, p8', r.status === 201 && /^[A-Z0-9]{10}$/.test(k.key_id) &&
		/^[A-Z0-9]{10}$/.test(k.team_id) && k.p8.startsWith('-----BEGIN PRIVATE KEY-----\n'), k);
	const p8 = crypto.createPrivateKey(k.p8);
	check('apns: p8 is a P-256 private key', p8.asymmetricKeyType === 'ec' && p8.asymmetricKeyDetails.namedCurve === 'prime256v1',
		p8.asymmetricKeyDetails);
	r = await c1('POST', '/config', json({ bundle_id: 'com.example.app' }));
	check('apns: POST /config sets the bundle id', r.status === 200 && r.json.bundle_id === 'com.example.app', r.json);
	r = await c1('POST', '/devices');
	const tok = r.json.token;
	check('apns: POST /devices gives 64 hex digits', r.status === 201 && /^[0-9a-f]{64}$/.test(tok), r.json);

	const jwtAt = (iat, key = p8, hdr = {}) => signES256({ alg: 'ES256', kid: k.key_id, ...hdr }, { iss: k.team_id, iat }, key);
	let jwt = jwtAt(nowS());
	const s2 = h2session(base);
	const push = (o = {}) => {
		const headers = {
			authorization: `bearer ${o.jwt ?? jwt}`, 'apns-topic': 'com.example.app', 'apns-push-type': 'alert', 'apns-priority': '10',
			'apns-expiration': '0', ...o.headers,
		};
		for (const [h, v] of Object.entries(headers)) {
			if (v === undefined)
				delete headers[h];
		}
		const body = o.body !== undefined ? o.body : JSON.stringify({ aps: { alert: { title: 'T', body: 'B' } }, id: 7 });
		return h2(s2, 'POST', `/3/device/${o.token ?? tok}`, headers, body);
	};
	const reasonIs = (res, status, reason) => res.status === status && res.text === JSON.stringify({ reason });

	const id = crypto.randomUUID();
	r = await push({ headers: { 'apns-id': id, 'apns-collapse-id': 'c1' } });
	check('apns: HTTP/2 send answers 200 and echoes apns-id', r.status === 200 && r.headers['apns-id'] === id && r.text === '', r);
	r = await push();
	check('apns: without apns-id a new UUID comes back', r.status === 200 &&
		/^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/.test(r.headers['apns-id'] || ''), r.headers);
	let got = (await c1('GET', '/received')).json;
	let e = got.received[0];
	check('apns: received records token, apns headers, payload, HTTP/2, JWT', e && e.token === tok && e.http_version === '2.0' &&
		e.headers['apns-topic'] === 'com.example.app' && e.headers['apns-id'] === id && e.payload.id === 7 &&
		e.jwt.header.kid === k.key_id && e.jwt.claims.iss === k.team_id && got.jwts_seen === 1, e);

	// HTTP/1.1 is refused.
	r = await c1('POST', `/3/device/${tok}`, { headers: { authorization: `bearer ${jwt}`, 'apns-topic': 'com.example.app',
		'apns-push-type': 'alert' }, body: JSON.stringify({ aps: { alert: 'x' } }) });
	got = (await c1('GET', '/received')).json;
	check('apns: HTTP/1.1 send refused (505) and recorded "not HTTP/2"', r.status === 505 &&
		got.rejected.at(-1).reason === 'not HTTP/2' && got.received.length === 2, r.status);

	// Headers.
	r = await push({ headers: { 'apns-topic': 'com.other.app' } });
	check('apns: topic of another app: 400 DeviceTokenNotForTopic', reasonIs(r, 400, 'DeviceTokenNotForTopic'), r.text);
	r = await push({ headers: { 'apns-topic': 'not a topic' } });
	check('apns: malformed topic: 400 BadTopic', reasonIs(r, 400, 'BadTopic'), r.text);
	r = await push({ headers: { 'apns-topic': undefined } });
	check('apns: no topic: 400 MissingTopic', reasonIs(r, 400, 'MissingTopic'), r.text);
	r = await push({ headers: { 'apns-push-type': 'banner' } });
	check('apns: push type "banner": 400 InvalidPushType', reasonIs(r, 400, 'InvalidPushType'), r.text);
	r = await push({ headers: { 'apns-push-type': undefined } });
	check('apns: no push type: 400 InvalidPushType', reasonIs(r, 400, 'InvalidPushType'), r.text);
	const bg = JSON.stringify({ aps: { 'content-available': 1 } });
	r = await push({ headers: { 'apns-push-type': 'background', 'apns-priority': '10' }, body: bg });
	check('apns: background with priority 10: 400 BadPriority', reasonIs(r, 400, 'BadPriority'), r.text);
	r = await push({ headers: { 'apns-push-type': 'background', 'apns-priority': '5' }, body: bg });
	check('apns: background with priority 5: 200', r.status === 200, r.text);
	r = await push({ headers: { 'apns-priority': '7' } });
	check('apns: priority 7: 400 BadPriority', reasonIs(r, 400, 'BadPriority'), r.text);
	r = await push({ headers: { 'apns-expiration': 'tomorrow' } });
	check('apns: apns-expiration not an integer: 400 BadExpirationDate', reasonIs(r, 400, 'BadExpirationDate'), r.text);
	r = await push({ headers: { 'apns-id': 'not-a-uuid' } });
	check('apns: apns-id not a UUID: 400 BadMessageId', reasonIs(r, 400, 'BadMessageId'), r.text);
	r = await push({ headers: { 'apns-collapse-id': 'c'.repeat(65) } });
	check('apns: apns-collapse-id of 65 bytes: 400 BadCollapseId', reasonIs(r, 400, 'BadCollapseId'), r.text);
	r = await push({ headers: { 'apns-collapse-id': 'c'.repeat(64) } });
	check('apns: apns-collapse-id of 64 bytes: 200', r.status === 200, r.text);

	// Payload.
	r = await push({ body: '' });
	check('apns: empty payload: 400 PayloadEmpty', reasonIs(r, 400, 'PayloadEmpty'), r.text);
	const big = JSON.stringify({ aps: { alert: 'x' }, pad: 'y'.repeat(4096) });
	r = await push({ body: big });
	check('apns: payload over 4096 bytes: 413 PayloadTooLarge', reasonIs(r, 413, 'PayloadTooLarge'), r.text);
	const exact = JSON.stringify({ aps: { alert: 'x' }, pad: '' });
	r = await push({ body: JSON.stringify({ aps: { alert: 'x' }, pad: 'y'.repeat(4096 - exact.length) }) });
	check('apns: payload of exactly 4096 bytes: 200', r.status === 200, r.text);

	// Device tokens.
	r = await push({ token: 'zz' + tok.slice(2) });
	check('apns: token not hex: 400 BadDeviceToken', reasonIs(r, 400, 'BadDeviceToken'), r.text);
	r = await push({ token: crypto.randomBytes(32).toString('hex') });
	check('apns: unknown token: 400 BadDeviceToken', reasonIs(r, 400, 'BadDeviceToken'), r.text);
	const gone = (await c1('POST', '/devices')).json.token;
	r = await c1('DELETE', `/devices/${gone}`);
	check('apns: DELETE /devices answers 204', r.status === 204, r.status);
	const before = Date.now();
	r = await push({ token: gone });
	check('apns: unregistered: 410 {"reason": "Unregistered", "timestamp": ms}', r.status === 410 && r.json.reason === 'Unregistered' &&
		Number.isInteger(r.json.timestamp) && r.json.timestamp <= before && r.json.timestamp > before - 60_000 &&
		Object.keys(r.json).length === 2, r.text);

	// Provider tokens.
	r = await push({ jwt: '' , headers: { authorization: undefined } });
	check('apns: no authorization: 403 MissingProviderToken', reasonIs(r, 403, 'MissingProviderToken'), r.text);
	const otherKey = crypto.generateKeyPairSync('ec', { namedCurve: 'P-256' }).privateKey;
	r = await push({ jwt: jwtAt(nowS(), otherKey) });
	check('apns: JWT signed by another key: 403 InvalidProviderToken', reasonIs(r, 403, 'InvalidProviderToken'), r.text);
	r = await push({ jwt: jwtAt(nowS(), p8, { kid: 'ABCDEFGHIJ' }) });
	check('apns: unknown kid: 403 InvalidProviderToken', reasonIs(r, 403, 'InvalidProviderToken'), r.text);
	r = await push({ jwt: jwtAt(nowS() - 7200) });
	check('apns: JWT with iat 2 h ago: 403 ExpiredProviderToken', reasonIs(r, 403, 'ExpiredProviderToken'), r.text);
	const second = jwtAt(nowS() - 5);
	r = await push({ jwt: second });
	check('apns: a second new JWT within 20 min: 429 TooManyProviderTokenUpdates', reasonIs(r, 429, 'TooManyProviderTokenUpdates'), r.text);
	r = await push();
	check('apns: the first JWT still works', r.status === 200, r.text);

	r = await c1('POST', '/control/expire-tokens');
	check('apns: /control/expire-tokens', r.status === 200 && r.json.expired === 1, r.json);
	r = await push();
	check('apns: the old JWT after expire-tokens: 403 ExpiredProviderToken', reasonIs(r, 403, 'ExpiredProviderToken'), r.text);
	jwt = second;
	r = await push();
	check('apns: after expire-tokens a new JWT works', r.status === 200, r.text);
	r = await push({ jwt: jwtAt(nowS() + 1) });
	check('apns: ... and the 20-minute rule holds again', reasonIs(r, 429, 'TooManyProviderTokenUpdates'), r.text);

	// Queued answers.
	r = await c1('POST', '/control', json({ answers: [{ status: 429, retry_after: 3 }, { status: 503 }, { status: 500 }, { status: 410 }] }));
	check('apns: POST /control queues answers', r.status === 200 && r.json.queued === 4, r.json);
	r = await push();
	check('apns: queued 429 TooManyRequests with retry-after', reasonIs(r, 429, 'TooManyRequests') && r.headers['retry-after'] === '3', r);
	r = await push();
	check('apns: queued 503 ServiceUnavailable', reasonIs(r, 503, 'ServiceUnavailable'), r.text);
	r = await push();
	check('apns: queued 500 InternalServerError', reasonIs(r, 500, 'InternalServerError'), r.text);
	r = await push();
	check('apns: queued 410 Unregistered with timestamp', r.status === 410 && r.json.reason === 'Unregistered' &&
		Number.isInteger(r.json.timestamp), r.text);
	r = await push();
	check('apns: queue used up: 200 again', r.status === 200, r.text);

	got = (await c1('GET', '/received')).json;
	check('apns: jwts_seen counts accepted provider tokens', got.jwts_seen === 2, got.jwts_seen);
	check('apns: every refusal recorded with its reason', got.rejected.every((x) => typeof x.reason === 'string' && x.answered >= 400) &&
		got.rejected.some((x) => x.reason === 'TooManyProviderTokenUpdates' && x.jwt && x.jwt.claims.iss === k.team_id), got.rejected.length);
	const bgEntry = got.received.find((x) => x.headers['apns-push-type'] === 'background');
	check('apns: received background push, no payload warnings', bgEntry && bgEntry.headers['apns-priority'] === '5' &&
		bgEntry.warnings.length === 0, bgEntry);
}

let code = 1;
try {
	const certs = makeCert();
	ca = fs.readFileSync(certs.cert);
	agent = new https.Agent({ ca, keepAlive: true });
	const [fcmPort, apnsPort] = await Promise.all([startService('fcm-service.mjs', certs), startService('apns-service.mjs', certs)]);
	await runFcm(fcmPort);
	await runApns(apnsPort);
	code = failed === 0 ? 0 : 1;
} catch (e) {
	failed++;
	console.log(`FAIL ${NAME} aborted: ${e && e.stack || e}`);
}
if (failed)
	process.stderr.write(serviceLog ? serviceLog.trimEnd().replace(/^/gm, '  [service] ') + '\n' : '');
console.log(`${NAME}: ${passed} passed, ${failed} failed`);
clearTimeout(deadline);
if (agent)
	agent.destroy();
cleanup();
process.exit(code);
