// webpush-service.mjs: a Web Push *receiving* service for tests, built on
// implementations of the standards that are independent of pushgated's C code:
// http_ece (the RFC 8188 / RFC 8291 reference) decrypts, jose verifies the
// RFC 8292 VAPID JWT, node:crypto makes the subscriptions' P-256 keys.
//
// It acts as a push service (RFC 8030 §5) on POST /push/<id> and records every
// message it accepted or refused, so a test can ask what pushgated really sent.
// A small JSON control API on the same HTTPS server creates subscriptions,
// queues the answers the push endpoint will give (410, 429 + Retry-After, ...)
// and reads the records back. See README.md.
//
// Owns only in-memory maps; prints one line {"port": N} on stdout once
// listening, logs refusals (only) to stderr. Never starts timers of its own;
// exits on SIGTERM or SIGINT.

import crypto from 'node:crypto';
import fs from 'node:fs';
import https from 'node:https';
import { createRequire } from 'node:module';
import { decodeProtectedHeader, importJWK, jwtVerify } from 'jose';
import { parseArgs, readBody } from './common.mjs';

const require = createRequire(import.meta.url);
const ece = require('http_ece');

const MAX_PUSH_BODY = 4096;           // RFC 8291 §4: a push service may refuse more
const MAX_CONTROL_BODY = 64 * 1024;
const MAX_VAPID_EXP_AHEAD = 24 * 3600; // RFC 8292 §2
const URGENCIES = new Set(['very-low', 'low', 'normal', 'high']); // RFC 8030 §5.3
const TOPIC_RE = /^[A-Za-z0-9_-]{1,32}$/;                         // RFC 8030 §5.4
const B64URL_RE = /^[A-Za-z0-9_-]+$/;

/* --- state ----------------------------------------------------------------------- */

// id -> { id, ecdh, auth, publicKey, deleted, answers: [], received: [], rejected: [] }
const subscriptions = new Map();
let messageSeq = 0;
let origin = null;        // https://HOST:PORT, the VAPID audience (RFC 8292 §2)
let rejectionsLogged = 0;
// Benchmarks: only every verifyEvery-th push is verified (VAPID, decryption) and
// recorded; the others are checked for their headers, counted and answered 201,
// so the service keeps up with a sender on the same machine.
let verifyEvery = 1;
const stats = { pushes: 0, verified: 0, accepted: 0, rejected: 0 };

// Verified (k, t) pairs -> {header, claims}: a sender reuses one JWT for many
// messages, and the signature of the same bytes under the same key does not
// change. The claims are still checked against the clock on every message.
const verifiedTokens = new Map();
const importedKeys = new Map();
const CACHE_MAX = 1024;

function cachePut(map, key, value) {
	if (map.size >= CACHE_MAX)
		map.clear();
	map.set(key, value);
}

function logRejection(sub, status, reason) {
	rejectionsLogged++;
	// Bounded: the first 100 in full, then one line per 1000.
	if (rejectionsLogged <= 100 || rejectionsLogged % 1000 === 0)
		process.stderr.write(`level=warn mod=pushsvc ev=rejected id=${sub ? sub.id : '-'} status=${status} ` +
			`reason=${JSON.stringify(reason)} total=${rejectionsLogged}\n`);
}

/* --- HTTP helpers ------------------------------------------------------------------ */

function send(res, status, body, headers = {}) {
	const h = { ...headers };
	let data = '';
	if (body !== undefined && body !== null) {
		data = JSON.stringify(body);
		h['Content-Type'] = 'application/json';
	}
	h['Content-Length'] = Buffer.byteLength(data);
	res.writeHead(status, h);
	res.end(data);
}

// Reads the request body; keeps at most `limit + 1` bytes (the rest is drained
// and dropped) so an oversized body costs no memory but is still detected.
/* --- control API ------------------------------------------------------------------- */

function newSubscription(shared) {
	const ecdh = shared ? shared.ecdh : crypto.createECDH('prime256v1');
	if (!shared)
		ecdh.generateKeys();
	const auth = shared ? shared.auth : crypto.randomBytes(16);
	const id = crypto.randomBytes(12).toString('base64url');
	const sub = {
		id, ecdh, auth, publicKey: ecdh.getPublicKey(), deleted: false,
		answers: [], received: [], rejected: [],
	};
	subscriptions.set(id, sub);
	return sub;
}

function parseAnswers(json) {
	if (!json || !Array.isArray(json.answers))
		return null;
	const out = [];
	for (const a of json.answers) {
		if (!a || !Number.isInteger(a.status) || a.status < 200 || a.status > 599)
			return null;
		const ans = { status: a.status };
		if (a.retry_after !== undefined && a.retry_after !== null) {
			if (!(Number.isInteger(a.retry_after) && a.retry_after >= 0) && typeof a.retry_after !== 'string')
				return null;
			ans.retry_after = String(a.retry_after);
		}
		out.push(ans);
	}
	return out;
}

function renderEntry(e) {
	const out = { ...e };
	if (e.plaintext !== undefined) {
		out.plaintext = e.plaintext.toString('utf8');
		out.plaintext_b64 = e.plaintext.toString('base64');
	}
	return out;
}

async function handleControl(req, res, path) {
	if (path === '/subscribe') {
		if (req.method !== 'POST')
			return send(res, 405, { error: 'POST only' }, { Allow: 'POST' });
		const { body } = await readBody(req, MAX_CONTROL_BODY);
		let count = 1;
		try {
			const j = body.length ? JSON.parse(body.toString('utf8')) : {};
			if (Number.isSafeInteger(j.count) && j.count >= 1 && j.count <= 1000000)
				count = j.count;
		} catch {
			return send(res, 400, { error: 'body is not JSON' });
		}
		if (count > 1) {
			// many subscriptions sharing one key pair (benchmarks): ids and endpoints only
			const first = newSubscription();
			const ids = [first.id];
			for (let i = 1; i < count; i++)
				ids.push(newSubscription(first).id);
			return send(res, 201, {
				ids, endpoint_prefix: `${origin}/push/`,
				keys: { p256dh: first.publicKey.toString('base64url'), auth: first.auth.toString('base64url') },
			});
		}
		const sub = newSubscription();
		return send(res, 201, {
			id: sub.id,
			endpoint: `${origin}/push/${sub.id}`,
			keys: { p256dh: sub.publicKey.toString('base64url'), auth: sub.auth.toString('base64url') },
		});
	}
	let m;
	if ((m = /^\/control\/([^/]+)$/.exec(path))) {
		const sub = subscriptions.get(m[1]);
		if (!sub)
			return send(res, 404, { error: 'unknown subscription' });
		if (req.method !== 'POST')
			return send(res, 405, { error: 'POST only' }, { Allow: 'POST' });
		const { body, total } = await readBody(req, MAX_CONTROL_BODY);
		if (total > MAX_CONTROL_BODY)
			return send(res, 413, { error: 'control body too large' });
		let json;
		try {
			json = JSON.parse(body.toString('utf8'));
		} catch {
			return send(res, 400, { error: 'body is not JSON' });
		}
		const answers = parseAnswers(json);
		if (!answers)
			return send(res, 400, { error: 'expected {"answers": [{"status": 200..599, "retry_after"?: n}, ...]}' });
		sub.answers.push(...answers);
		return send(res, 200, { queued: sub.answers.length });
	}
	if ((m = /^\/received\/([^/]+)$/.exec(path))) {
		const sub = subscriptions.get(m[1]);
		if (!sub)
			return send(res, 404, { error: 'unknown subscription' });
		if (req.method !== 'GET')
			return send(res, 405, { error: 'GET only' }, { Allow: 'GET' });
		return send(res, 200, { received: sub.received.map(renderEntry), rejected: sub.rejected.map(renderEntry) });
	}
	if ((m = /^\/subscriptions\/([^/]+)$/.exec(path))) {
		const sub = subscriptions.get(m[1]);
		if (!sub)
			return send(res, 404, { error: 'unknown subscription' });
		if (req.method !== 'DELETE')
			return send(res, 405, { error: 'DELETE only' }, { Allow: 'DELETE' });
		sub.deleted = true;
		return send(res, 204);
	}
	if (path === '/stats')
		return send(res, 200, stats);
	return send(res, 404, { error: 'no such path' });
}

/* --- VAPID (RFC 8292) ---------------------------------------------------------------- */

class Refusal extends Error {
	constructor(status, reason) {
		super(reason);
		this.status = status;
	}
}

// RFC 8292 §3: Authorization: vapid t=<JWT>, k=<base64url P-256 point>
function parseVapidAuthorization(value) {
	if (value === undefined)
		throw new Refusal(401, 'no Authorization header');
	const m = /^\s*vapid\s+(.*)$/is.exec(value);
	if (!m)
		throw new Refusal(401, `Authorization scheme is not vapid: ${value.slice(0, 40)}`);
	const params = {};
	for (const part of m[1].split(',')) {
		const p = part.trim();
		const eq = p.indexOf('=');
		if (eq <= 0)
			throw new Refusal(401, `malformed vapid parameter "${p.slice(0, 40)}"`);
		const name = p.slice(0, eq).trim().toLowerCase();
		let val = p.slice(eq + 1).trim();
		if (val.length >= 2 && val.startsWith('"') && val.endsWith('"'))
			val = val.slice(1, -1);
		if (name in params)
			throw new Refusal(401, `vapid parameter ${name} given twice`);
		params[name] = val;
	}
	if (!params.t)
		throw new Refusal(401, 'vapid t= missing');
	if (!params.k)
		throw new Refusal(401, 'vapid k= missing');
	if (!B64URL_RE.test(params.k))
		throw new Refusal(401, 'vapid k= is not base64url without padding');
	const point = Buffer.from(params.k, 'base64url');
	if (point.length !== 65 || point[0] !== 0x04)
		throw new Refusal(401, `vapid k= is not an uncompressed P-256 point (${point.length} bytes)`);
	if (!/^[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+$/.test(params.t))
		throw new Refusal(401, 'vapid t= is not a JWS compact serialization');
	return { t: params.t, k: params.k, point };
}

async function vapidKey(k, point) {
	let key = importedKeys.get(k);
	if (key)
		return key;
	try {
		key = await importJWK({
			kty: 'EC', crv: 'P-256',
			x: point.subarray(1, 33).toString('base64url'),
			y: point.subarray(33, 65).toString('base64url'),
		}, 'ES256');
	} catch (e) {
		throw new Refusal(401, `vapid k= is not a P-256 public key: ${e.message}`);
	}
	cachePut(importedKeys, k, key);
	return key;
}

// Fills info.vapid_key and info.claims as soon as they are known, so that a
// refused message's record says what was sent.
async function verifyVapid(value, info) {
	const { t, k, point } = parseVapidAuthorization(value);
	info.vapid_key = k;
	const cacheKey = `${k} ${t}`;
	let v = verifiedTokens.get(cacheKey);
	if (!v) {
		let header;
		try {
			header = decodeProtectedHeader(t);
			const c = JSON.parse(Buffer.from(t.split('.')[1], 'base64url').toString('utf8'));
			info.claims = { aud: c.aud, exp: c.exp, sub: c.sub };
		} catch (e) {
			throw new Refusal(401, `JWT unreadable: ${e.message}`);
		}
		if (header.alg !== 'ES256')
			throw new Refusal(403, `JWT alg is ${header.alg}, not ES256`);
		if (header.typ !== undefined && String(header.typ).toUpperCase() !== 'JWT')
			throw new Refusal(403, `JWT typ is ${header.typ}, not JWT`);
		const key = await vapidKey(k, point);
		let result;
		try {
			result = await jwtVerify(t, key, {
				algorithms: ['ES256'],
				audience: origin,
				requiredClaims: ['aud', 'exp', 'sub'],
			});
		} catch (e) {
			throw new Refusal(403, `JWT refused: ${e.code || ''} ${e.message}`.trim());
		}
		v = { header: result.protectedHeader, claims: result.payload };
		cachePut(verifiedTokens, cacheKey, v);
	}
	const c = v.claims;
	info.claims = { aud: c.aud, exp: c.exp, sub: c.sub };
	// Checked on every message, cached or not.
	if (c.aud !== origin)
		throw new Refusal(403, `JWT aud ${JSON.stringify(c.aud)} is not ${origin}`);
	const now = Date.now() / 1000;
	if (typeof c.exp !== 'number' || !Number.isFinite(c.exp))
		throw new Refusal(403, 'JWT exp is not a number');
	if (c.exp <= now)
		throw new Refusal(403, `JWT expired (exp ${c.exp}, now ${Math.floor(now)})`);
	if (c.exp > now + MAX_VAPID_EXP_AHEAD)
		throw new Refusal(403, `JWT exp ${c.exp} is more than 24 h ahead (now ${Math.floor(now)})`);
	if (typeof c.sub !== 'string' || !(c.sub.startsWith('mailto:') || c.sub.startsWith('https:')))
		throw new Refusal(403, `JWT sub ${JSON.stringify(c.sub)} is neither mailto: nor https:`);
}

/* --- aes128gcm (RFC 8188 §2, RFC 8291 §4) ------------------------------------------------ */

// The header checks RFC 8291 adds to RFC 8188; then http_ece does the rest
// (key derivation, AES-GCM, the 0x02 delimiter and zero padding).
function decryptPush(sub, body, info) {
	if (body.length < 21)
		throw new Refusal(400, `body of ${body.length} bytes is shorter than the aes128gcm header`);
	const salt = body.subarray(0, 16);
	const rs = body.readUInt32BE(16);
	const idlen = body[20];
	info.record_size = rs;
	info.ece_salt = salt.toString('base64url');
	if (idlen !== 65)
		throw new Refusal(400, `aes128gcm keyid length ${idlen}, RFC 8291 wants the 65-byte sender key`);
	if (body.length < 21 + idlen)
		throw new Refusal(400, 'body shorter than its aes128gcm keyid');
	const keyid = body.subarray(21, 21 + idlen);
	info.ece_keyid = keyid.toString('base64url');
	if (keyid[0] !== 0x04)
		throw new Refusal(400, 'aes128gcm keyid is not an uncompressed P-256 point');
	if (rs < 18)
		throw new Refusal(400, `aes128gcm rs ${rs} below 18`);
	const recordLen = body.length - 21 - idlen;
	if (recordLen < 17)
		throw new Refusal(400, `record of ${recordLen} bytes cannot hold a tag and a delimiter`);
	// RFC 8291 §4: one record, and rs greater than plaintext + delimiter + padding + tag.
	if (recordLen >= rs)
		throw new Refusal(400, `record of ${recordLen} bytes is not smaller than rs ${rs} (RFC 8291 §4: a single record)`);
	try {
		return ece.decrypt(body, { version: 'aes128gcm', privateKey: sub.ecdh, authSecret: sub.auth });
	} catch (e) {
		throw new Refusal(400, `decryption failed: ${e.message}`);
	}
}

/* --- push endpoint (RFC 8030 §5) ----------------------------------------------------------- */

function single(req, name) {
	const v = req.headers[name];
	return Array.isArray(v) ? v.join(', ') : v;
}

async function handlePush(req, res, id) {
	const sub = subscriptions.get(id);
	if (!sub) {
		req.resume();
		return send(res, 404, { error: 'unknown subscription' });
	}
	if (sub.deleted) {
		req.resume();
		return send(res, 410, { error: 'subscription deleted' });
	}
	if (req.method !== 'POST') {
		req.resume();
		return send(res, 405, { error: 'POST only' }, { Allow: 'POST' });
	}
	const { body, total } = await readBody(req, MAX_PUSH_BODY);
	const info = {
		at: Date.now(), ttl: null, urgency: null, topic: null, claims: null, vapid_key: null, body_len: total,
	};
	try {
		const ttl = single(req, 'ttl');
		if (ttl === undefined)
			throw new Refusal(400, 'no TTL header');
		if (!/^\d+$/.test(ttl.trim()))
			throw new Refusal(400, `TTL ${JSON.stringify(ttl)} is not a non-negative integer`);
		info.ttl = Number(ttl.trim());

		const urgency = single(req, 'urgency');
		if (urgency !== undefined) {
			info.urgency = urgency;
			if (!URGENCIES.has(urgency.trim()))
				throw new Refusal(400, `Urgency ${JSON.stringify(urgency)} is not very-low|low|normal|high`);
			info.urgency = urgency.trim();
		}
		const topic = single(req, 'topic');
		if (topic !== undefined) {
			info.topic = topic;
			if (!TOPIC_RE.test(topic))
				throw new Refusal(400, `Topic ${JSON.stringify(topic)} is not 1..32 base64url characters`);
		}
		const ce = single(req, 'content-encoding');
		if (ce === undefined || ce.trim().toLowerCase() !== 'aes128gcm')
			throw new Refusal(415, `Content-Encoding ${JSON.stringify(ce ?? null)} is not aes128gcm`);
		if (++stats.pushes % verifyEvery !== 0 && !sub.answers.length) {
			if (total > MAX_PUSH_BODY || !single(req, 'authorization'))
				throw new Refusal(total > MAX_PUSH_BODY ? 413 : 401, 'unverified push refused');
			stats.accepted++;
			res.writeHead(201, { 'Content-Length': 0 });
			return res.end();
		}
		stats.verified++;

		await verifyVapid(single(req, 'authorization'), info);

		if (total > MAX_PUSH_BODY)
			throw new Refusal(413, `body of ${total} bytes exceeds ${MAX_PUSH_BODY}`);
		info.plaintext = decryptPush(sub, body, info);
	} catch (e) {
		if (!(e instanceof Refusal))
			throw e;
		stats.rejected++;
		sub.rejected.push({ ...info, answered: e.status, reason: e.message });
		logRejection(sub, e.status, e.message);
		return send(res, e.status, { error: e.message });
	}

	const ans = sub.answers.length ? sub.answers.shift() : { status: 201 };
	if (ans.status < 200 || ans.status > 299) {
		sub.rejected.push({ ...info, answered: ans.status, reason: 'queued answer' });
		const h = ans.retry_after !== undefined ? { 'Retry-After': ans.retry_after } : {};
		return send(res, ans.status, { error: 'queued answer' }, h);
	}
	stats.accepted++;
	const n = ++messageSeq;
	sub.received.push({ ...info, message: n, answered: ans.status });
	// RFC 8030 §5.2: the TTL the push service keeps the message for comes back.
	res.writeHead(ans.status, {
		Location: `${origin}/message/${n}`,
		TTL: String(info.ttl),
		'Content-Length': 0,
	});
	res.end();
}

/* --- server ------------------------------------------------------------------------- */

async function route(req, res) {
	const path = req.url.split('?')[0];
	let m;
	if ((m = /^\/push\/([^/]+)$/.exec(path)))
		return handlePush(req, res, m[1]);
	return handleControl(req, res, path);
}

function main() {
	const opt = parseArgs('webpush-service', process.argv.slice(2), { 'verify-every': 1 });
	if (!/^\d+$/.test(String(opt['verify-every'])) || Number(opt['verify-every']) < 1)
		opt.usage('--verify-every must be a positive integer');
	verifyEvery = Number(opt['verify-every']);
	const server = https.createServer({
		cert: fs.readFileSync(opt.cert),
		key: fs.readFileSync(opt.key),
		keepAliveTimeout: 30_000,
	}, (req, res) => {
		route(req, res).catch((e) => {
			process.stderr.write(`level=error mod=pushsvc ev=handler_failed err=${JSON.stringify(String(e && e.stack || e))}\n`);
			if (!res.headersSent)
				send(res, 500, { error: 'internal error' });
			else
				res.destroy();
		});
	});
	server.on('clientError', (err, socket) => {
		if (socket.writable && err.code !== 'ECONNRESET')
			socket.end('HTTP/1.1 400 Bad Request\r\nConnection: close\r\n\r\n');
		else
			socket.destroy();
	});
	server.on('error', (e) => {
		process.stderr.write(`webpush-service: ${e.message}\n`);
		process.exit(1);
	});
	const stop = () => {
		server.close();
		server.closeAllConnections();
		process.exit(0);
	};
	process.on('SIGTERM', stop);
	process.on('SIGINT', stop);
	server.listen(opt.port, opt.host, () => {
		const port = server.address().port;
		const host = opt.host.includes(':') ? `[${opt.host}]` : opt.host;
		origin = new URL(`https://${host}:${port}`).origin;
		process.stdout.write(`{"port": ${port}}\n`);
	});
}

main();
