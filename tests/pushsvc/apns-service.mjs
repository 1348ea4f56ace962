// apns-service.mjs: a local stand-in for the Apple Push Notification service
// provider API (token-based authentication over HTTP/2), for tests. It checks
// every POST /3/device/<token> the way Apple documents it ("Sending notification
// requests to APNs", "Establishing a token-based connection to APNs",
// "Handling notification responses from APNs") and answers with Apple's status
// codes and {"reason": ...} bodies, so pushgated's APNs provider can be tested
// without Apple and with every refusal reproducible.
//
// The provider JWT (ES256) is verified with `jose`, which shares no code with
// pushgated. HTTP/2 only for /3/device/* (APNs is HTTP/2 only); the JSON control
// API (keys, devices, queued answers, token expiry, records) also speaks
// HTTP/1.1. See README.md.
//
// Owns only in-memory maps; prints one line {"port": N} on stdout once
// listening, logs refusals (only) to stderr. Never starts timers of its own;
// exits on SIGTERM or SIGINT.

import crypto from 'node:crypto';
import { compactVerify, decodeProtectedHeader } from 'jose';
import { parseArgs, readBody, serveH2 } from './common.mjs';

const MAX_PAYLOAD = 4096;              // "Creating the remote notification payload": 4 KB for regular pushes
const MAX_CONTROL_BODY = 64 * 1024;
const TOKEN_MAX_AGE = 3600;            // APNs rejects a token whose iat is more than one hour old
const TOKEN_MIN_REFRESH = 20 * 60;     // ... and reports an error if tokens are recreated more than once every 20 minutes
const CLOCK_SKEW = 60;
const MAX_COLLAPSE_ID = 64;            // apns-collapse-id: at most 64 bytes
const DEFAULT_BUNDLE = 'com.pushgate.test';
const PUSH_TYPES = new Set(['alert', 'background']);
const PRIORITIES = new Set(['10', '5', '1']);
const ID_ALPHABET = 'ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789';
const ID_RE = /^[A-Z0-9]{10}$/;
const UUID_RE = /^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$/;
const BUNDLE_RE = /^[A-Za-z0-9-]+(\.[A-Za-z0-9-]+)+$/;
const DEVICE_TOKEN_RE = /^[0-9a-fA-F]{64}$/;
const JWS_RE = /^[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+$/;
// Request headers whose repetition APNs refuses with DuplicateHeaders.
const SINGLE_HEADERS = new Set(['authorization', 'apns-id', 'apns-topic', 'apns-push-type', 'apns-priority',
	'apns-expiration', 'apns-collapse-id']);
// Default reasons of queued answers (the "Handling notification responses" table).
const DEFAULT_REASON = {
	400: 'BadDeviceToken', 403: 'Forbidden', 404: 'BadPath', 405: 'MethodNotAllowed', 410: 'Unregistered',
	413: 'PayloadTooLarge', 429: 'TooManyRequests', 500: 'InternalServerError', 503: 'ServiceUnavailable',
};

/* --- state ----------------------------------------------------------------------- */

const signingKeys = new Map();  // key_id -> { keyId, teamId, publicKey }
const teams = new Map();        // team_id -> { current: jwt | null }
const seenJwts = new Map();     // accepted provider JWT -> { teamId, keyId, iat, expired, firstSeen }
const verifiedJwts = new Map(); // JWT -> { header, claims, key } (signature checked once)
const devices = new Map();      // lowercase hex token -> { token, bundleId, unregisteredAt }
let bundleId = DEFAULT_BUNDLE;
let answers = [];
const received = [];
const rejected = [];
let rejectionsLogged = 0;
const CACHE_MAX = 1024;

function logRejection(status, reason, detail) {
	rejectionsLogged++;
	if (rejectionsLogged <= 100 || rejectionsLogged % 1000 === 0)
		process.stderr.write(`level=warn mod=apnssvc ev=rejected status=${status} reason=${reason} ` +
			`detail=${JSON.stringify(detail)} total=${rejectionsLogged}\n`);
}

function randomId() {
	let s = '';
	for (let i = 0; i < 10; i++)
		s += ID_ALPHABET[crypto.randomInt(ID_ALPHABET.length)];
	return s;
}

/* --- HTTP helpers ------------------------------------------------------------------ */

function send(res, status, body, headers = {}) {
	const h = { ...headers };
	let data = '';
	if (body !== undefined && body !== null) {
		data = JSON.stringify(body);
		h['content-type'] = 'application/json';
	}
	h['content-length'] = Buffer.byteLength(data);
	res.writeHead(status, h);
	res.end(data);
}

async function readJson(req, res) {
	const { body, total } = await readBody(req, MAX_CONTROL_BODY);
	if (total > MAX_CONTROL_BODY) {
		send(res, 413, { error: 'control body too large' });
		return undefined;
	}
	if (body.length === 0)
		return {};
	try {
		const j = JSON.parse(body.toString('utf8'));
		if (j && typeof j === 'object' && !Array.isArray(j))
			return j;
	} catch { /* below */ }
	send(res, 400, { error: 'body is not a JSON object' });
	return undefined;
}

function header(req, name) {
	const v = req.headers[name];
	return Array.isArray(v) ? v.join(', ') : v;
}

function isObject(v) {
	return v !== null && typeof v === 'object' && !Array.isArray(v);
}

/* --- provider authentication token ---------------------------------------------------- */

class Refusal extends Error {
	constructor(status, reason, detail, extra = {}) {
		super(detail);
		this.status = status;
		this.reason = reason;
		this.extra = extra;
	}
}

function teamState(teamId) {
	let t = teams.get(teamId);
	if (!t) {
		t = { current: null };
		teams.set(teamId, t);
	}
	return t;
}

// "Establishing a token-based connection to APNs": authorization: bearer <JWT>,
// header {alg: ES256, kid: key ID}, claims {iss: team ID, iat}; signed with the
// .p8 key; refreshed no more than once every 20 minutes and no less than once
// every 60 minutes.
async function checkProviderToken(req, info) {
	const v = header(req, 'authorization');
	if (v === undefined || v.trim() === '')
		throw new Refusal(403, 'MissingProviderToken', 'no authorization header');
	const m = /^\s*bearer\s+(\S+)\s*$/i.exec(v);
	if (!m)
		throw new Refusal(403, 'MissingProviderToken', `authorization ${JSON.stringify(v.slice(0, 40))} is not "bearer <JWT>"`);
	const jwt = m[1];
	if (!JWS_RE.test(jwt))
		throw new Refusal(403, 'InvalidProviderToken', 'provider token is not a JWS compact serialization');
	let ver = verifiedJwts.get(jwt);
	if (!ver) {
		let hdr;
		let claims;
		try {
			hdr = decodeProtectedHeader(jwt);
			claims = JSON.parse(Buffer.from(jwt.split('.')[1], 'base64url').toString('utf8'));
		} catch (e) {
			throw new Refusal(403, 'InvalidProviderToken', `provider token unreadable: ${e.message}`);
		}
		info.jwt = { header: hdr, claims };
		if (!isObject(claims))
			throw new Refusal(403, 'InvalidProviderToken', 'claims are not a JSON object');
		if (hdr.alg !== 'ES256')
			throw new Refusal(403, 'InvalidProviderToken', `alg ${JSON.stringify(hdr.alg)} is not ES256`);
		const key = typeof hdr.kid === 'string' ? signingKeys.get(hdr.kid) : undefined;
		if (!key)
			throw new Refusal(403, 'InvalidProviderToken', `kid ${JSON.stringify(hdr.kid)} is no key here`);
		try {
			await compactVerify(jwt, key.publicKey, { algorithms: ['ES256'] });
		} catch (e) {
			throw new Refusal(403, 'InvalidProviderToken', `signature refused under key ${key.keyId}: ${e.code || ''} ${e.message}`.trim());
		}
		if (claims.iss !== key.teamId)
			throw new Refusal(403, 'InvalidProviderToken', `iss ${JSON.stringify(claims.iss)} is not the team ${key.teamId} of key ${key.keyId}`);
		if (typeof claims.iat !== 'number' || !Number.isInteger(claims.iat))
			throw new Refusal(403, 'InvalidProviderToken', `iat ${JSON.stringify(claims.iat)} is not an integer of seconds`);
		ver = { header: hdr, claims, key };
		if (verifiedJwts.size >= CACHE_MAX)
			verifiedJwts.clear();
		verifiedJwts.set(jwt, ver);
	}
	info.jwt = { header: ver.header, claims: ver.claims };
	const now = Math.floor(Date.now() / 1000);
	const iat = ver.claims.iat;
	const seen = seenJwts.get(jwt);
	if (seen && seen.expired)
		throw new Refusal(403, 'ExpiredProviderToken', 'provider token expired by /control/expire-tokens');
	if (now - iat > TOKEN_MAX_AGE)
		throw new Refusal(403, 'ExpiredProviderToken', `iat ${iat} is ${now - iat} s old (over one hour)`);
	if (iat > now + CLOCK_SKEW)
		throw new Refusal(403, 'InvalidProviderToken', `iat ${iat} is ${iat - now} s in the future`);
	if (!seen) {
		// A new token. Counted per team: Apple does not tell tokens of
		// different keys of one team apart for this rule.
		const team = teamState(ver.key.teamId);
		const cur = team.current ? seenJwts.get(team.current) : null;
		if (cur && !cur.expired && now - cur.iat < TOKEN_MIN_REFRESH && now - cur.iat <= TOKEN_MAX_AGE)
			throw new Refusal(429, 'TooManyProviderTokenUpdates',
				`new provider token ${now - cur.iat} s after the previous one (iat ${cur.iat}); 20 minutes at least`);
		seenJwts.set(jwt, { teamId: ver.key.teamId, keyId: ver.key.keyId, iat, expired: false, firstSeen: Date.now() });
		team.current = jwt;
	}
}

/* --- POST /3/device/<token> ------------------------------------------------------------------ */

function apnsHeaders(req) {
	const out = {};
	for (const [k, v] of Object.entries(req.headers)) {
		if (k.startsWith('apns-'))
			out[k] = Array.isArray(v) ? v.join(', ') : v;
	}
	return out;
}

function duplicateHeader(req) {
	const raw = req.rawHeaders || [];
	const seen = new Set();
	for (let i = 0; i < raw.length; i += 2) {
		const k = String(raw[i]).toLowerCase();
		if (!SINGLE_HEADERS.has(k))
			continue;
		if (seen.has(k))
			return k;
		seen.add(k);
	}
	return null;
}

function payloadWarnings(pushType, aps) {
	const w = [];
	const visible = aps.alert !== undefined || aps.badge !== undefined || aps.sound !== undefined;
	if (pushType === 'background') {
		if (aps['content-available'] !== 1)
			w.push('background push without aps.content-available = 1');
		if (visible)
			w.push('background push with alert, badge or sound');
	} else if (pushType === 'alert' && !visible) {
		w.push('alert push without aps.alert, badge or sound');
	}
	return w;
}

async function handleDevice(req, res, rawToken) {
	const info = {
		at: Date.now(), token: rawToken, http_version: req.httpVersion, headers: apnsHeaders(req), jwt: null,
	};
	// APNs speaks HTTP/2 only.
	if (req.httpVersionMajor !== 2) {
		req.resume();
		rejected.push({ ...info, answered: 505, reason: 'not HTTP/2' });
		logRejection(505, '-', `HTTP/${req.httpVersion} request`);
		res.writeHead(505, { connection: 'close', 'content-length': 0 });
		res.end();
		return;
	}
	const givenId = header(req, 'apns-id');
	const apnsId = givenId !== undefined && UUID_RE.test(givenId) ? givenId : crypto.randomUUID();
	const { body, total } = await readBody(req, MAX_PAYLOAD);
	let dev;
	try {
		if (req.method !== 'POST')
			throw new Refusal(405, 'MethodNotAllowed', `method ${req.method}`);
		const dup = duplicateHeader(req);
		if (dup)
			throw new Refusal(400, 'DuplicateHeaders', `${dup} repeated`);
		await checkProviderToken(req, info);

		const topic = header(req, 'apns-topic');
		if (topic === undefined || topic === '')
			throw new Refusal(400, 'MissingTopic', 'no apns-topic (required with token-based authentication)');
		if (!BUNDLE_RE.test(topic))
			throw new Refusal(400, 'BadTopic', `apns-topic ${JSON.stringify(topic)} is not a bundle ID`);
		const pushType = header(req, 'apns-push-type');
		if (pushType === undefined || !PUSH_TYPES.has(pushType))
			throw new Refusal(400, 'InvalidPushType', `apns-push-type ${JSON.stringify(pushType ?? null)} is not alert or background`);
		const pri = header(req, 'apns-priority');
		if (pri !== undefined && !PRIORITIES.has(pri))
			throw new Refusal(400, 'BadPriority', `apns-priority ${JSON.stringify(pri)} is not 10, 5 or 1`);
		if (pushType === 'background' && pri !== undefined && pri !== '5')
			throw new Refusal(400, 'BadPriority', `background push with apns-priority ${pri}; it must be 5`);
		const expiration = header(req, 'apns-expiration');
		if (expiration !== undefined && !/^\d{1,12}$/.test(expiration))
			throw new Refusal(400, 'BadExpirationDate', `apns-expiration ${JSON.stringify(expiration)} is not a UNIX epoch in seconds`);
		if (givenId !== undefined && !UUID_RE.test(givenId))
			throw new Refusal(400, 'BadMessageId', `apns-id ${JSON.stringify(givenId)} is not a canonical UUID`);
		const collapse = header(req, 'apns-collapse-id');
		if (collapse !== undefined && Buffer.byteLength(collapse) > MAX_COLLAPSE_ID)
			throw new Refusal(400, 'BadCollapseId', `apns-collapse-id of ${Buffer.byteLength(collapse)} bytes (64 at most)`);

		if (total === 0)
			throw new Refusal(400, 'PayloadEmpty', 'empty body');
		if (total > MAX_PAYLOAD)
			throw new Refusal(413, 'PayloadTooLarge', `payload of ${total} bytes (4096 at most)`);
		let payload;
		try {
			payload = JSON.parse(body.toString('utf8'));
		} catch (e) {
			throw new Refusal(400, 'PayloadEmpty', `payload is not JSON: ${e.message}`);
		}
		info.payload = payload;
		if (!isObject(payload) || !isObject(payload.aps))
			throw new Refusal(400, 'PayloadEmpty', 'payload is not a JSON object with an aps dictionary');

		if (rawToken === '')
			throw new Refusal(400, 'MissingDeviceToken', 'no device token in :path');
		if (!DEVICE_TOKEN_RE.test(rawToken))
			throw new Refusal(400, 'BadDeviceToken', `device token ${JSON.stringify(rawToken.slice(0, 80))} is not 64 hex digits`);
		dev = devices.get(rawToken.toLowerCase());
		if (!dev)
			throw new Refusal(400, 'BadDeviceToken', 'unknown device token');
		if (topic !== dev.bundleId)
			throw new Refusal(400, 'DeviceTokenNotForTopic', `device token is for ${dev.bundleId}, apns-topic is ${topic}`);
		if (dev.unregisteredAt !== null)
			throw new Refusal(410, 'Unregistered', 'device token deleted through DELETE /devices', { timestamp: dev.unregisteredAt });
		info.warnings = payloadWarnings(pushType, payload.aps);
	} catch (e) {
		if (!(e instanceof Refusal))
			throw e;
		rejected.push({ ...info, apns_id: apnsId, answered: e.status, reason: e.reason, detail: e.message });
		logRejection(e.status, e.reason, e.message);
		return send(res, e.status, { reason: e.reason, ...e.extra }, { 'apns-id': apnsId });
	}

	if (answers.length) {
		const ans = answers.shift();
		if (ans.status !== 200) {
			const extra = ans.reason === 'Unregistered' ? { timestamp: Date.now() } : {};
			rejected.push({ ...info, apns_id: apnsId, answered: ans.status, reason: ans.reason, detail: 'queued answer' });
			const h = { 'apns-id': apnsId };
			if (ans.retry_after !== undefined)
				h['retry-after'] = ans.retry_after;
			return send(res, ans.status, { reason: ans.reason, ...extra }, h);
		}
	}
	received.push({ ...info, apns_id: apnsId, answered: 200 });
	res.writeHead(200, { 'apns-id': apnsId, 'content-length': 0 });
	res.end();
}

/* --- control API ------------------------------------------------------------------- */

function parseAnswers(json) {
	if (!json || !Array.isArray(json.answers))
		return null;
	const out = [];
	for (const a of json.answers) {
		if (!isObject(a) || !Number.isInteger(a.status) || a.status < 200 || a.status > 599)
			return null;
		const ans = { status: a.status };
		if (a.status !== 200) {
			const reason = a.reason ?? DEFAULT_REASON[a.status];
			if (typeof reason !== 'string' || !reason)
				return null;
			ans.reason = reason;
		}
		if (a.retry_after !== undefined && a.retry_after !== null) {
			if (!(Number.isInteger(a.retry_after) && a.retry_after >= 0) && typeof a.retry_after !== 'string')
				return null;
			ans.retry_after = String(a.retry_after);
		}
		out.push(ans);
	}
	return out;
}

async function handleControl(req, res, path) {
	const method = req.method;
	if (path === '/key' && method === 'POST') {
		const j = await readJson(req, res);
		if (j === undefined)
			return undefined;
		const teamId = j.team_id ?? randomId();
		if (typeof teamId !== 'string' || !ID_RE.test(teamId))
			return send(res, 400, { error: 'team_id is 10 characters [A-Z0-9]' });
		let keyId;
		do
			keyId = randomId();
		while (signingKeys.has(keyId));
		const { publicKey, privateKey } = crypto.generateKeyPairSync('ec', { namedCurve: 'P-256' });
		signingKeys.set(keyId, { keyId, teamId, publicKey });
		teamState(teamId);
		return send(res, 201, { key_id: keyId, team_id: teamId, p8: privateKey.export({ type: 'pkcs8', format: 'pem' }) });
	}
	if (path === '/config' && (method === 'POST' || method === 'GET')) {
		const j = method === 'POST' ? await readJson(req, res) : (req.resume(), {});
		if (j === undefined)
			return undefined;
		if (j.bundle_id !== undefined) {
			if (typeof j.bundle_id !== 'string' || !BUNDLE_RE.test(j.bundle_id))
				return send(res, 400, { error: 'bundle_id is not a bundle ID' });
			bundleId = j.bundle_id;
		}
		return send(res, 200, { bundle_id: bundleId });
	}
	if (path === '/devices' && method === 'POST') {
		const j = await readJson(req, res);
		if (j === undefined)
			return undefined;
		const b = j.bundle_id ?? bundleId;
		if (typeof b !== 'string' || !BUNDLE_RE.test(b))
			return send(res, 400, { error: 'bundle_id is not a bundle ID' });
		const token = crypto.randomBytes(32).toString('hex');
		devices.set(token, { token, bundleId: b, unregisteredAt: null });
		return send(res, 201, { token, bundle_id: b });
	}
	let m;
	if ((m = /^\/devices\/([^/]+)$/.exec(path)) && method === 'DELETE') {
		req.resume();
		const dev = devices.get(decodeURIComponent(m[1]).toLowerCase());
		if (!dev)
			return send(res, 404, { error: 'unknown device' });
		if (dev.unregisteredAt === null)
			dev.unregisteredAt = Date.now();
		return send(res, 204);
	}
	if (path === '/control' && method === 'POST') {
		const j = await readJson(req, res);
		if (j === undefined)
			return undefined;
		const parsed = parseAnswers(j);
		if (!parsed)
			return send(res, 400, { error: 'expected {"answers": [{"status": 200..599, "reason"?: s, "retry_after"?: n}, ...]}' });
		answers.push(...parsed);
		return send(res, 200, { queued: answers.length });
	}
	if (path === '/control/expire-tokens' && method === 'POST') {
		req.resume();
		let n = 0;
		for (const s of seenJwts.values()) {
			if (!s.expired) {
				s.expired = true;
				n++;
			}
		}
		for (const t of teams.values())
			t.current = null;
		return send(res, 200, { expired: n });
	}
	if (path === '/control/reset' && method === 'POST') {
		req.resume();
		answers = [];
		received.length = 0;
		rejected.length = 0;
		return send(res, 200, {});
	}
	if (path === '/received' && method === 'GET') {
		req.resume();
		return send(res, 200, { received, rejected, jwts_seen: seenJwts.size, queued_answers: answers.length });
	}
	req.resume();
	return send(res, 404, { reason: 'BadPath' });
}

/* --- server ------------------------------------------------------------------------- */

async function route(req, res) {
	const path = req.url.split('?')[0];
	let m;
	if ((m = /^\/3\/device\/(.*)$/.exec(path)))
		return handleDevice(req, res, m[1]);
	return handleControl(req, res, path);
}

function main() {
	const opt = parseArgs('apns-service', process.argv.slice(2));
	serveH2('apns-service', opt, route, { reason: 'InternalServerError' }, () => {});
}

main();
