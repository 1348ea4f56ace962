// fcm-service.mjs: a local stand-in for Firebase Cloud Messaging's HTTP v1 API
// and for the Google OAuth 2.0 token endpoint that a service account uses, for
// tests. It checks every request the way Google documents it and answers with
// Google's documented success and error bodies, so pushgated's FCM provider can
// be tested without Google and with every refusal reproducible.
//
//   POST /service-account                       a Google service-account JSON (RSA key, token_uri here)
//   POST /token                                 RFC 7523 JWT bearer grant -> access token
//   POST /v1/projects/<project>/messages:send   projects.messages.send
//
// plus a small JSON control API (devices, queued answers, token expiry, records);
// see README.md. Signatures are verified with `jose`, which shares no code with
// pushgated. HTTPS with HTTP/2 and HTTP/1.1 on one port.
//
// Owns only in-memory maps; prints one line {"port": N} on stdout once
// listening, logs refusals (only) to stderr. Never starts timers of its own;
// exits on SIGTERM or SIGINT.

import crypto from 'node:crypto';
import { promisify } from 'node:util';
import { compactVerify, decodeProtectedHeader } from 'jose';
import { parseArgs, readBody, serveH2 } from './common.mjs';

const generateKeyPair = promisify(crypto.generateKeyPair);

const MAX_BODY = 64 * 1024;
const MAX_CONTROL_BODY = 64 * 1024;
const PAYLOAD_LIMIT = 4096;           // ErrorCode INVALID_ARGUMENT: 4096 bytes for most messages
const PAYLOAD_LIMIT_TOPIC = 2048;     // ... or 2048 bytes in the case of messages to topics
const MAX_TTL_S = 2419200;            // ErrorCode INVALID_ARGUMENT: ttl between 0 and 2,419,200 (4 weeks)
const JWT_BEARER = 'urn:ietf:params:oauth:grant-type:jwt-bearer';
const MAX_ASSERTION_LIFETIME = 3600;  // OAuth2ServiceAccount: exp at most 1 hour after iat
const CLOCK_SKEW = 60;
const DEFAULT_PROJECT = 'pushgate-test';
const DEFAULT_ACCOUNT = 'pushgate';
// projects.messages.send: "Requires one of the following OAuth scopes".
const SEND_SCOPES = new Set([
	'https://www.googleapis.com/auth/firebase.messaging',
	'https://www.googleapis.com/auth/cloud-platform',
]);
const JWS_RE = /^[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+$/;
const PROJECT_RE = /^[a-z][a-z0-9-]{4,28}[a-z0-9]$/;   // Google Cloud project ID rules
const ACCOUNT_RE = /^[a-z][a-z0-9-]{4,28}[a-z0-9]$/;   // service account ID rules
const TOPIC_RE = /^[a-zA-Z0-9_.~%-]{1,900}$/;
const DURATION_RE = /^(\d+)(\.\d{1,9})?s$/;

const MSG_UNAUTHENTICATED = 'Request had invalid authentication credentials. Expected OAuth 2 access token, login cookie ' +
	'or other valid authentication credential. See https://developers.google.com/identity/sign-in/web/devconsole-project.';
const MSG_NO_CREDENTIAL = 'Request is missing required authentication credential. Expected OAuth 2 access token, login cookie ' +
	'or other valid authentication credential. See https://developers.google.com/identity/sign-in/web/devconsole-project.';
const MSG_SHORT_LIVED = 'Invalid JWT: Token must be a short-lived token (60 minutes) and in a reasonable timeframe. ' +
	'Check your iat and exp values in the JWT claim.';

/* --- state ----------------------------------------------------------------------- */

const accounts = new Map();      // client_email -> { email, projectId, clientId }
const signingKeys = new Map();   // private_key_id -> { kid, publicKey, email, projectId }
const accessTokens = new Map();  // access token -> { email, projectId, scopes, expiresAt, revoked }
const devices = new Map();       // registration token -> { token, projectId, deleted, deletedAt }
let answers = [];                // queued answers for the next verified sends
const received = [];
const rejected = [];
const grants = [];
let tokenLifetime = 3599;
let messageSeq = 0;
let origin = null;
let tokenUri = null;
let rejectionsLogged = 0;

function logRejection(where, status, reason) {
	rejectionsLogged++;
	// Bounded: the first 100 in full, then one line per 1000.
	if (rejectionsLogged <= 100 || rejectionsLogged % 1000 === 0)
		process.stderr.write(`level=warn mod=fcmsvc ev=rejected at=${where} status=${status} ` +
			`reason=${JSON.stringify(reason)} total=${rejectionsLogged}\n`);
}

/* --- HTTP helpers ------------------------------------------------------------------ */

function send(res, status, body, headers = {}) {
	const h = { ...headers };
	let data = '';
	if (body !== undefined && body !== null) {
		data = JSON.stringify(body, null, 2);
		h['content-type'] = 'application/json; charset=UTF-8';
	}
	h['content-length'] = Buffer.byteLength(data);
	res.writeHead(status, h);
	res.end(data);
}

// Reads the request body; keeps at most `limit + 1` bytes (the rest is drained
// and dropped) so an oversized body costs no memory but is still detected.
function single(req, name) {
	const v = req.headers[name];
	return Array.isArray(v) ? v.join(', ') : v;
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

/* --- Google error bodies (google.rpc.Status as JSON) --------------------------------- */

class Refusal extends Error {
	constructor(status, body, reason, headers = {}) {
		super(reason);
		this.status = status;
		this.body = body;
		this.headers = headers;
	}
}

function googleError(code, status, message, details) {
	const e = { code, message, status };
	if (details && details.length)
		e.details = details;
	return { error: e };
}

const fcmError = (errorCode) => ({ '@type': 'type.googleapis.com/google.firebase.fcm.v1.FcmError', errorCode });

function badRequest(field, description) {
	const v = field ? { field, description } : { description };
	return { '@type': 'type.googleapis.com/google.rpc.BadRequest', fieldViolations: [v] };
}

// A request the JSON/proto layer refuses (wrong type, unknown name): BadRequest only.
function protoRefusal(field, description, reason) {
	return new Refusal(400, googleError(400, 'INVALID_ARGUMENT', description, [badRequest(field, description)]), reason || description);
}

// A message FCM itself refuses: BadRequest naming the field plus FcmError INVALID_ARGUMENT.
function fcmInvalid(field, description, reason) {
	return new Refusal(400, googleError(400, 'INVALID_ARGUMENT', description,
		[badRequest(field, description), fcmError('INVALID_ARGUMENT')]), reason || description);
}

function invalidValue(field, type, value) {
	let shown;
	try {
		shown = typeof value === 'string' ? JSON.stringify(value) : JSON.stringify(value);
	} catch {
		shown = String(value);
	}
	return protoRefusal(field, `Invalid value at '${field}' (${type}), ${shown}`);
}

function unknownName(name, where) {
	const d = where ?
		`Invalid JSON payload received. Unknown name "${name}" at '${where}': Cannot find field.` :
		`Invalid JSON payload received. Unknown name "${name}": Cannot find field.`;
	return protoRefusal(where || null, d, `unknown field ${where ? where + '.' : ''}${name}`);
}

// Answers FCM gives for the documented error codes (ErrorCode reference), used
// by queued answers; the same bodies as the real checks below.
const CANNED = {
	INVALID_ARGUMENT: { status: 400, grpc: 'INVALID_ARGUMENT', message: 'Request contains an invalid argument.' },
	THIRD_PARTY_AUTH_ERROR: { status: 401, grpc: 'UNAUTHENTICATED', message: 'Auth error from APNS or Web Push Service' },
	SENDER_ID_MISMATCH: { status: 403, grpc: 'PERMISSION_DENIED', message: 'SenderId mismatch' },
	UNREGISTERED: { status: 404, grpc: 'NOT_FOUND', message: 'Requested entity was not found.' },
	QUOTA_EXCEEDED: { status: 429, grpc: 'RESOURCE_EXHAUSTED', message: 'Quota exceeded for the message target.' },
	INTERNAL: { status: 500, grpc: 'INTERNAL', message: 'Internal error encountered.' },
	UNAVAILABLE: { status: 503, grpc: 'UNAVAILABLE', message: 'The service is currently unavailable.' },
};
const CODE_FOR_STATUS = {
	400: 'INVALID_ARGUMENT', 401: 'THIRD_PARTY_AUTH_ERROR', 403: 'SENDER_ID_MISMATCH', 404: 'UNREGISTERED',
	429: 'QUOTA_EXCEEDED', 500: 'INTERNAL', 503: 'UNAVAILABLE',
};

function cannedBody(errorCode) {
	const c = CANNED[errorCode];
	return googleError(c.status, c.grpc, c.message, [fcmError(errorCode)]);
}

/* --- service accounts and the token endpoint ------------------------------------------ */

async function newServiceAccount(opts) {
	const projectId = opts.project_id ?? DEFAULT_PROJECT;
	const name = opts.account ?? DEFAULT_ACCOUNT;
	if (typeof projectId !== 'string' || !PROJECT_RE.test(projectId))
		throw new Error('project_id: 6-30 characters, lowercase letters, digits and hyphens, starting with a letter');
	if (typeof name !== 'string' || !ACCOUNT_RE.test(name))
		throw new Error('account: 6-30 characters, lowercase letters, digits and hyphens, starting with a letter');
	const email = `${name}@${projectId}.iam.gserviceaccount.com`;
	let acct = accounts.get(email);
	if (!acct) {
		// A 21-digit numeric client_id, like Google's.
		const clientId = String(1 + crypto.randomInt(9)) + Array.from({ length: 20 }, () => crypto.randomInt(10)).join('');
		acct = { email, projectId, clientId };
		accounts.set(email, acct);
	}
	const { publicKey, privateKey } = await generateKeyPair('rsa', { modulusLength: 2048 });
	const kid = crypto.randomBytes(20).toString('hex');
	signingKeys.set(kid, { kid, publicKey, email, projectId });
	return {
		type: 'service_account',
		project_id: projectId,
		private_key_id: kid,
		private_key: privateKey.export({ type: 'pkcs8', format: 'pem' }),
		client_email: email,
		client_id: acct.clientId,
		auth_uri: 'https://accounts.google.com/o/oauth2/auth',
		token_uri: tokenUri,
		auth_provider_x509_cert_url: 'https://www.googleapis.com/oauth2/v1/certs',
		client_x509_cert_url: `https://www.googleapis.com/robot/v1/metadata/x509/${encodeURIComponent(email)}`,
		universe_domain: 'googleapis.com',
	};
}

const oauthError = (status, error, description, reason) =>
	new Refusal(status, { error, error_description: description }, reason || description);

const invalidGrant = (description, reason) => oauthError(400, 'invalid_grant', description, reason);

// RFC 7523 §2.1 / Google "Using OAuth 2.0 for Server to Server Applications".
async function verifyAssertion(assertion, info) {
	if (!JWS_RE.test(assertion))
		throw invalidGrant('Invalid JWT Signature.', 'assertion is not a JWS compact serialization');
	let header;
	let claims;
	try {
		header = decodeProtectedHeader(assertion);
		claims = JSON.parse(Buffer.from(assertion.split('.')[1], 'base64url').toString('utf8'));
	} catch (e) {
		throw invalidGrant('Invalid JWT Signature.', `assertion unreadable: ${e.message}`);
	}
	if (!claims || typeof claims !== 'object' || Array.isArray(claims))
		throw invalidGrant('Invalid JWT Signature.', 'assertion claims are not a JSON object');
	info.header = header;
	info.claims = claims;
	if (header.alg !== 'RS256')
		throw invalidGrant('Invalid JWT Signature.', `alg ${JSON.stringify(header.alg)} is not RS256`);
	if (header.typ !== undefined && String(header.typ).toUpperCase() !== 'JWT')
		throw invalidGrant('Invalid JWT Signature.', `typ ${JSON.stringify(header.typ)} is not JWT`);
	const acct = typeof claims.iss === 'string' ? accounts.get(claims.iss) : undefined;
	if (!acct)
		throw invalidGrant('Invalid grant: account not found', `iss ${JSON.stringify(claims.iss)} is no service account here`);
	if (typeof header.kid !== 'string')
		throw invalidGrant('Invalid JWT Signature.', 'header has no kid (the private_key_id)');
	const key = signingKeys.get(header.kid);
	if (!key || key.email !== acct.email)
		throw invalidGrant('Invalid JWT Signature.', `kid ${JSON.stringify(header.kid)} is not a private_key_id of ${acct.email}`);
	try {
		await compactVerify(assertion, key.publicKey, { algorithms: ['RS256'] });
	} catch (e) {
		throw invalidGrant('Invalid JWT Signature.', `signature refused: ${e.code || ''} ${e.message}`.trim());
	}
	if (claims.aud !== tokenUri)
		throw invalidGrant(`Invalid JWT: Failed audience check. The right audience is ${tokenUri}`,
			`aud ${JSON.stringify(claims.aud)} is not the token_uri ${tokenUri}`);
	const now = Math.floor(Date.now() / 1000);
	const { iat, exp } = claims;
	if (typeof iat !== 'number' || !Number.isFinite(iat) || typeof exp !== 'number' || !Number.isFinite(exp))
		throw invalidGrant(MSG_SHORT_LIVED, 'iat and exp must both be numbers (seconds since the epoch)');
	if (iat > now + CLOCK_SKEW)
		throw invalidGrant(MSG_SHORT_LIVED, `iat ${iat} is in the future (now ${now})`);
	if (exp <= now - CLOCK_SKEW)
		throw invalidGrant(MSG_SHORT_LIVED, `assertion expired (exp ${exp}, now ${now})`);
	if (exp <= iat)
		throw invalidGrant(MSG_SHORT_LIVED, `exp ${exp} is not after iat ${iat}`);
	if (exp - iat > MAX_ASSERTION_LIFETIME)
		throw invalidGrant(MSG_SHORT_LIVED, `exp - iat = ${exp - iat} s is over ${MAX_ASSERTION_LIFETIME} s`);
	if (claims.sub !== undefined && claims.sub !== acct.email)
		throw oauthError(401, 'unauthorized_client', 'Client is unauthorized to retrieve access tokens using this method, ' +
			'or client not authorized for any of the scopes requested.', `sub ${JSON.stringify(claims.sub)} asks for domain-wide delegation`);
	const scopes = typeof claims.scope === 'string' ? claims.scope.split(' ').filter(Boolean) : [];
	if (!scopes.length || !scopes.every((s) => s.startsWith('https://www.googleapis.com/auth/')))
		throw oauthError(400, 'invalid_scope', 'Invalid OAuth scope or ID token audience provided.',
			`scope ${JSON.stringify(claims.scope)} is not a space-delimited list of Google API scopes`);
	return { acct, key, scopes };
}

async function handleToken(req, res) {
	const info = { at: Date.now(), endpoint: '/token', http_version: req.httpVersion };
	if (req.method !== 'POST') {
		req.resume();
		return send(res, 405, { error: 'invalid_request', error_description: 'POST only' }, { allow: 'POST' });
	}
	const { body, total } = await readBody(req, MAX_BODY);
	try {
		if (total > MAX_BODY)
			throw oauthError(400, 'invalid_request', 'Request too large', `body of ${total} bytes`);
		const ct = (single(req, 'content-type') || '').split(';')[0].trim().toLowerCase();
		if (ct !== 'application/x-www-form-urlencoded')
			throw oauthError(400, 'invalid_request', 'Bad Request', `Content-Type ${JSON.stringify(ct)} is not application/x-www-form-urlencoded`);
		const params = new URLSearchParams(body.toString('utf8'));
		const grantType = params.get('grant_type');
		info.grant_type = grantType;
		if (grantType === null)
			throw oauthError(400, 'unsupported_grant_type', 'Invalid grant_type: ', 'no grant_type');
		if (grantType !== JWT_BEARER)
			throw oauthError(400, 'unsupported_grant_type', `Invalid grant_type: ${grantType}`, `grant_type ${grantType} is not ${JWT_BEARER}`);
		const assertion = params.get('assertion');
		if (!assertion)
			throw oauthError(400, 'invalid_request', 'Missing required parameter: assertion', 'no assertion');
		const { acct, key, scopes } = await verifyAssertion(assertion, info);
		const token = `ya29.c.${crypto.randomBytes(96).toString('base64url')}`;
		const expiresIn = tokenLifetime;
		accessTokens.set(token, {
			email: acct.email, projectId: acct.projectId, scopes, expiresAt: Date.now() + expiresIn * 1000, revoked: false,
		});
		grants.push({ at: info.at, client_email: acct.email, private_key_id: key.kid, scopes, expires_in: expiresIn,
			http_version: info.http_version, header: info.header, claims: info.claims });
		return send(res, 200, { access_token: token, expires_in: expiresIn, token_type: 'Bearer' });
	} catch (e) {
		if (!(e instanceof Refusal))
			throw e;
		rejected.push({ ...info, answered: e.status, reason: e.message, error: e.body.error });
		logRejection('/token', e.status, e.message);
		return send(res, e.status, e.body, e.headers);
	}
}

/* --- projects.messages.send ------------------------------------------------------------ */

// proto3 JSON accepts both the proto field name and its lowerCamelCase form.
const snake = (k) => k.replace(/[A-Z]/g, (c) => `_${c.toLowerCase()}`);

function isObject(v) {
	return v !== null && typeof v === 'object' && !Array.isArray(v);
}

function checkFields(obj, allowed, where) {
	for (const k of Object.keys(obj)) {
		if (!allowed.has(snake(k)))
			throw unknownName(k, where);
	}
}

function field(obj, name) {
	if (obj[name] !== undefined)
		return obj[name];
	const camel = name.replace(/_([a-z])/g, (_, c) => c.toUpperCase());
	return obj[camel];
}

function checkObject(v, where, type) {
	if (!isObject(v))
		throw invalidValue(where, type, v);
}

function checkString(v, where) {
	if (v !== undefined && typeof v !== 'string')
		throw invalidValue(where, 'TYPE_STRING', v);
}

function checkBool(v, where) {
	if (v !== undefined && typeof v !== 'boolean')
		throw invalidValue(where, 'TYPE_BOOL', v);
}

// map<string, string>: every value a string (the documented example error).
function checkStringMap(v, where) {
	if (v === undefined)
		return;
	if (!isObject(v))
		throw invalidValue(where, 'type.googleapis.com/google.protobuf.Map', v);
	Object.entries(v).forEach(([, val], i) => {
		if (typeof val !== 'string')
			throw invalidValue(`${where}[${i}].value`, 'TYPE_STRING', val);
	});
}

// ErrorCode INVALID_ARGUMENT: "Invalid data key ... from, or gcm, or any value prefixed by google".
function checkDataKeys(v, where) {
	if (!v)
		return;
	for (const k of Object.keys(v)) {
		if (k === 'from' || k === 'gcm' || k.toLowerCase().startsWith('google'))
			throw fcmInvalid(where, `Invalid data payload key: ${k}`, `reserved data key ${JSON.stringify(k)} in ${where}`);
	}
}

const MESSAGE_FIELDS = new Set(['name', 'data', 'notification', 'android', 'webpush', 'apns', 'fcm_options', 'token', 'topic', 'condition']);
const NOTIFICATION_FIELDS = new Set(['title', 'body', 'image']);
const ANDROID_FIELDS = new Set(['collapse_key', 'priority', 'ttl', 'restricted_package_name', 'data', 'notification',
	'fcm_options', 'direct_boot_ok', 'bandwidth_constrained_ok', 'restricted_satellite_ok']);
const ANDROID_NOTIFICATION_FIELDS = new Set(['title', 'body', 'icon', 'color', 'sound', 'tag', 'click_action',
	'body_loc_key', 'body_loc_args', 'title_loc_key', 'title_loc_args', 'channel_id', 'ticker', 'sticky', 'event_time',
	'local_only', 'notification_priority', 'default_sound', 'default_vibrate_timings', 'default_light_settings',
	'vibrate_timings', 'visibility', 'notification_count', 'light_settings', 'image', 'bypass_proxy_notification', 'proxy']);
const FCM_OPTIONS_FIELDS = new Set(['analytics_label']);
const WEBPUSH_FIELDS = new Set(['headers', 'data', 'notification', 'fcm_options']);
const APNS_FIELDS = new Set(['headers', 'payload', 'fcm_options', 'live_activity_token']);

function checkAndroid(a) {
	checkObject(a, 'message.android', 'type.googleapis.com/google.firebase.fcm.v1.AndroidConfig');
	checkFields(a, ANDROID_FIELDS, 'message.android');
	checkString(field(a, 'collapse_key'), 'message.android.collapse_key');
	checkString(field(a, 'restricted_package_name'), 'message.android.restricted_package_name');
	for (const b of ['direct_boot_ok', 'bandwidth_constrained_ok', 'restricted_satellite_ok'])
		checkBool(field(a, b), `message.android.${b}`);
	const pri = a.priority;
	if (pri !== undefined && !(typeof pri === 'string' && ['normal', 'high'].includes(pri.toLowerCase())))
		throw invalidValue('message.android.priority', 'type.googleapis.com/google.firebase.fcm.v1.AndroidMessagePriority', pri);
	const ttl = a.ttl;
	if (ttl !== undefined) {
		// google.protobuf.Duration in JSON: a string of seconds ending in "s",
		// with up to nine fractional digits, e.g. "3.5s".
		const m = typeof ttl === 'string' ? DURATION_RE.exec(ttl) : null;
		if (!m)
			throw protoRefusal('message.android.ttl', `Invalid value at 'message.android.ttl' (type.googleapis.com/google.protobuf.Duration), ` +
				`Field 'ttl', Illegal duration format; duration must end with 's'`, `android.ttl ${JSON.stringify(ttl)} is not a duration string`);
		if (Number(m[1]) > MAX_TTL_S || (Number(m[1]) === MAX_TTL_S && m[2] && Number(m[2]) > 0))
			throw fcmInvalid('message.android.ttl', `The ttl must be between 0 and ${MAX_TTL_S} seconds (4 weeks).`,
				`android.ttl ${ttl} is over 4 weeks`);
	}
	checkStringMap(a.data, 'message.android.data');
	checkDataKeys(a.data, 'message.android.data');
	if (a.notification !== undefined) {
		checkObject(a.notification, 'message.android.notification', 'type.googleapis.com/google.firebase.fcm.v1.AndroidNotification');
		checkFields(a.notification, ANDROID_NOTIFICATION_FIELDS, 'message.android.notification');
		for (const s of ['title', 'body', 'channel_id', 'tag', 'sound', 'icon', 'color', 'click_action', 'image'])
			checkString(field(a.notification, s), `message.android.notification.${s}`);
	}
	const fo = field(a, 'fcm_options');
	if (fo !== undefined) {
		checkObject(fo, 'message.android.fcm_options', 'type.googleapis.com/google.firebase.fcm.v1.AndroidFcmOptions');
		checkFields(fo, FCM_OPTIONS_FIELDS, 'message.android.fcm_options');
	}
}

// The request body of projects.messages.send: {"validate_only"?, "message"}.
function checkSendRequest(json) {
	if (!isObject(json))
		throw protoRefusal(null, `Invalid JSON payload received. Expected an object.`, 'body is not a JSON object');
	checkFields(json, new Set(['validate_only', 'message']), null);
	const validateOnly = field(json, 'validate_only');
	checkBool(validateOnly, 'validate_only');
	const msg = json.message;
	if (msg === undefined || msg === null)
		throw fcmInvalid('message', 'Request contains an invalid argument.', 'no message');
	checkObject(msg, 'message', 'type.googleapis.com/google.firebase.fcm.v1.Message');
	checkFields(msg, MESSAGE_FIELDS, 'message');
	checkString(msg.name, 'message.name');

	// The target is a proto oneof: exactly one of token, topic, condition.
	let target = null;
	for (const t of ['token', 'topic', 'condition']) {
		if (msg[t] === undefined)
			continue;
		checkString(msg[t], `message.${t}`);
		if (target)
			throw protoRefusal('message', `Invalid value at 'message' (oneof), oneof field 'target' is already set. Cannot set '${t}'`,
				`both ${target} and ${t} set`);
		target = t;
	}
	if (!target)
		throw fcmInvalid('message', 'Recipient of the message is not set.', 'none of token, topic, condition');
	if (target === 'topic' && !TOPIC_RE.test(msg.topic))
		throw fcmInvalid('message.topic', 'Invalid topic name.', `topic ${JSON.stringify(msg.topic)} is not [a-zA-Z0-9-_.~%]+`);

	checkStringMap(msg.data, 'message.data');
	checkDataKeys(msg.data, 'message.data');
	if (msg.notification !== undefined) {
		checkObject(msg.notification, 'message.notification', 'type.googleapis.com/google.firebase.fcm.v1.Notification');
		checkFields(msg.notification, NOTIFICATION_FIELDS, 'message.notification');
		for (const s of NOTIFICATION_FIELDS)
			checkString(msg.notification[s], `message.notification.${s}`);
	}
	if (msg.android !== undefined)
		checkAndroid(msg.android);
	if (msg.webpush !== undefined) {
		checkObject(msg.webpush, 'message.webpush', 'type.googleapis.com/google.firebase.fcm.v1.WebpushConfig');
		checkFields(msg.webpush, WEBPUSH_FIELDS, 'message.webpush');
		checkStringMap(msg.webpush.headers, 'message.webpush.headers');
		checkStringMap(msg.webpush.data, 'message.webpush.data');
	}
	if (msg.apns !== undefined) {
		checkObject(msg.apns, 'message.apns', 'type.googleapis.com/google.firebase.fcm.v1.ApnsConfig');
		checkFields(msg.apns, APNS_FIELDS, 'message.apns');
		checkStringMap(msg.apns.headers, 'message.apns.headers');
		if (msg.apns.payload !== undefined)
			checkObject(msg.apns.payload, 'message.apns.payload', 'type.googleapis.com/google.protobuf.Struct');
	}
	const fo = field(msg, 'fcm_options');
	if (fo !== undefined) {
		checkObject(fo, 'message.fcm_options', 'type.googleapis.com/google.firebase.fcm.v1.FcmOptions');
		checkFields(fo, FCM_OPTIONS_FIELDS, 'message.fcm_options');
	}
	return { message: msg, validateOnly: validateOnly === true, target };
}

// ErrorCode INVALID_ARGUMENT "Message too big": the payload data, keys and
// values, of what reaches an Android device: data (android.data replaces
// message.data) and the notification's title and body.
function payloadSize(msg) {
	const a = msg.android || {};
	const data = a.data !== undefined ? a.data : (msg.data || {});
	let n = 0;
	for (const [k, v] of Object.entries(data))
		n += Buffer.byteLength(k) + Buffer.byteLength(String(v));
	const notif = { ...(msg.notification || {}), ...(a.notification || {}) };
	for (const k of ['title', 'body']) {
		if (typeof notif[k] === 'string')
			n += Buffer.byteLength(notif[k]);
	}
	return n;
}

function unauthenticated(message, reason) {
	return new Refusal(401, googleError(401, 'UNAUTHENTICATED', message), reason,
		{ 'www-authenticate': 'Bearer realm="https://accounts.google.com/", error="invalid_token"' });
}

async function handleSend(req, res, project) {
	const info = { at: Date.now(), endpoint: 'send', project, http_version: req.httpVersion, authorization_ok: false };
	if (req.method !== 'POST') {
		req.resume();
		return send(res, 404, googleError(404, 'NOT_FOUND', 'Method not found.'));
	}
	const { body, total } = await readBody(req, MAX_BODY);
	let parsed;
	try {
		const auth = single(req, 'authorization');
		if (auth === undefined || auth.trim() === '')
			throw new Refusal(401, googleError(401, 'UNAUTHENTICATED', MSG_NO_CREDENTIAL), 'no Authorization header',
				{ 'www-authenticate': 'Bearer realm="https://accounts.google.com/"' });
		const m = /^\s*Bearer\s+(\S+)\s*$/i.exec(auth);
		if (!m)
			throw unauthenticated(MSG_UNAUTHENTICATED, `Authorization ${JSON.stringify(auth.slice(0, 40))} is not "Bearer <token>"`);
		const tok = accessTokens.get(m[1]);
		if (!tok)
			throw unauthenticated(MSG_UNAUTHENTICATED, 'unknown access token');
		if (tok.revoked)
			throw unauthenticated(MSG_UNAUTHENTICATED, 'access token expired by /control/expire-tokens');
		if (Date.now() >= tok.expiresAt)
			throw unauthenticated(MSG_UNAUTHENTICATED, `access token expired ${Date.now() - tok.expiresAt} ms ago`);
		info.authorization_ok = true;
		info.account = tok.email;
		if (!tok.scopes.some((s) => SEND_SCOPES.has(s)))
			throw new Refusal(403, googleError(403, 'PERMISSION_DENIED', 'Request had insufficient authentication scopes.'),
				`access token scopes ${tok.scopes.join(' ')} include neither firebase.messaging nor cloud-platform`);
		if (project !== tok.projectId)
			throw new Refusal(403, googleError(403, 'PERMISSION_DENIED', `Permission 'cloudmessaging.messages.create' denied on ` +
				`resource '//cloudresourcemanager.googleapis.com/projects/${project}' (or it may not exist).`),
			`project ${project} is not the account's project ${tok.projectId}`);

		if (total > MAX_BODY)
			throw fcmInvalid('message', 'Message is too big', `request body of ${total} bytes`);
		const ct = (single(req, 'content-type') || '').split(';')[0].trim().toLowerCase();
		if (ct !== 'application/json')
			throw protoRefusal(null, `Invalid JSON payload received. Content-Type ${JSON.stringify(ct)} is not application/json.`,
				`Content-Type ${JSON.stringify(ct)} is not application/json`);
		let json;
		try {
			json = JSON.parse(body.toString('utf8'));
		} catch (e) {
			throw protoRefusal(null, 'Invalid JSON payload received. Unexpected token.', `body is not JSON: ${e.message}`);
		}
		info.message = isObject(json) ? json.message : undefined;
		parsed = checkSendRequest(json);
		info.validate_only = parsed.validateOnly;
		const msg = parsed.message;
		if (parsed.target === 'token')
			info.token = msg.token;
		const size = payloadSize(msg);
		info.payload_bytes = size;
		const limit = parsed.target === 'token' ? PAYLOAD_LIMIT : PAYLOAD_LIMIT_TOPIC;
		if (size > limit)
			throw fcmInvalid('message', 'Message is too big', `payload of ${size} bytes is over ${limit}`);
		if (parsed.target === 'token') {
			const dev = devices.get(msg.token);
			if (!dev)
				throw new Refusal(400, googleError(400, 'INVALID_ARGUMENT', 'The registration token is not a valid FCM registration token',
					[fcmError('INVALID_ARGUMENT')]), 'unknown registration token');
			if (dev.projectId !== project)
				throw new Refusal(403, googleError(403, 'PERMISSION_DENIED', 'SenderId mismatch', [fcmError('SENDER_ID_MISMATCH')]),
					`token belongs to project ${dev.projectId}, not ${project}`);
			if (dev.deleted)
				throw new Refusal(404, googleError(404, 'NOT_FOUND', 'Requested entity was not found.', [fcmError('UNREGISTERED')]),
					'token deleted through DELETE /devices');
		}
	} catch (e) {
		if (!(e instanceof Refusal))
			throw e;
		rejected.push({ ...info, answered: e.status, reason: e.message, error: e.body.error });
		logRejection('send', e.status, e.message);
		return send(res, e.status, e.body, e.headers);
	}

	if (!parsed.validateOnly && answers.length) {
		const ans = answers.shift();
		if (ans.status < 200 || ans.status > 299) {
			rejected.push({ ...info, answered: ans.status, reason: 'queued answer', error: ans.body.error });
			const h = ans.retry_after !== undefined ? { 'retry-after': ans.retry_after } : {};
			return send(res, ans.status, ans.body, h);
		}
	}
	const name = parsed.validateOnly ? `projects/${project}/messages/fake_message_id` : `projects/${project}/messages/0:${++messageSeq}`;
	received.push({ ...info, name, answered: 200 });
	return send(res, 200, { name });
}

/* --- control API ------------------------------------------------------------------- */

function fcmRegistrationToken() {
	// Shaped like a real one: an instance id, ":APA91b", then base64url text.
	const inst = crypto.randomBytes(17).toString('base64url').slice(0, 22);
	const rest = crypto.randomBytes(101).toString('base64url').slice(0, 134);
	return `${inst}:APA91b${rest}`;
}

function parseAnswers(json) {
	if (!json || !Array.isArray(json.answers))
		return null;
	const out = [];
	for (const a of json.answers) {
		if (!isObject(a))
			return null;
		let errorCode = a.error_code;
		let status = a.status;
		if (errorCode !== undefined && !(errorCode in CANNED))
			return null;
		if (status === undefined && errorCode)
			status = CANNED[errorCode].status;
		if (!Number.isInteger(status) || status < 200 || status > 599)
			return null;
		const ans = { status };
		if (status >= 300) {
			errorCode = errorCode || CODE_FOR_STATUS[status];
			ans.body = errorCode ? cannedBody(errorCode) : googleError(status, 'UNKNOWN', 'Unknown error.');
			if (errorCode && CANNED[errorCode].status !== status)
				ans.body.error.code = status;
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
	if (path === '/service-account' && method === 'POST') {
		const j = await readJson(req, res);
		if (j === undefined)
			return undefined;
		try {
			return send(res, 201, await newServiceAccount(j));
		} catch (e) {
			return send(res, 400, { error: e.message });
		}
	}
	if (path === '/devices' && method === 'POST') {
		const j = await readJson(req, res);
		if (j === undefined)
			return undefined;
		const projectId = j.project_id ?? DEFAULT_PROJECT;
		if (typeof projectId !== 'string' || !PROJECT_RE.test(projectId))
			return send(res, 400, { error: 'project_id is not a project ID' });
		const token = fcmRegistrationToken();
		devices.set(token, { token, projectId, deleted: false, deletedAt: null });
		return send(res, 201, { token, project_id: projectId });
	}
	let m;
	if ((m = /^\/devices\/(.+)$/.exec(path)) && method === 'DELETE') {
		req.resume();
		const dev = devices.get(decodeURIComponent(m[1]));
		if (!dev)
			return send(res, 404, { error: 'unknown device' });
		dev.deleted = true;
		dev.deletedAt = Date.now();
		return send(res, 204);
	}
	if (path === '/control' && method === 'POST') {
		const j = await readJson(req, res);
		if (j === undefined)
			return undefined;
		const parsed = parseAnswers(j);
		if (!parsed)
			return send(res, 400, { error: 'expected {"answers": [{"status": 200..599, "error_code"?: ' +
				`${Object.keys(CANNED).join('|')}, "retry_after"?: n}, ...]}` });
		answers.push(...parsed);
		return send(res, 200, { queued: answers.length });
	}
	if (path === '/control/expire-tokens' && method === 'POST') {
		req.resume();
		let n = 0;
		for (const t of accessTokens.values()) {
			if (!t.revoked) {
				t.revoked = true;
				n++;
			}
		}
		return send(res, 200, { expired: n });
	}
	if (path === '/control/token-lifetime' && method === 'POST') {
		const j = await readJson(req, res);
		if (j === undefined)
			return undefined;
		if (!Number.isInteger(j.expires_in) || j.expires_in < 1 || j.expires_in > 86400)
			return send(res, 400, { error: 'expected {"expires_in": 1..86400}' });
		tokenLifetime = j.expires_in;
		return send(res, 200, { expires_in: tokenLifetime });
	}
	if (path === '/control/reset' && method === 'POST') {
		req.resume();
		answers = [];
		received.length = 0;
		rejected.length = 0;
		grants.length = 0;
		return send(res, 200, {});
	}
	if (path === '/received' && method === 'GET') {
		req.resume();
		return send(res, 200, { received, rejected, token_grants: grants.length, grants, queued_answers: answers.length });
	}
	req.resume();
	return send(res, 404, { error: `no ${method} ${path}` });
}

/* --- server ------------------------------------------------------------------------- */

async function route(req, res) {
	const path = req.url.split('?')[0];
	let m;
	if ((m = /^\/v1\/projects\/([^/]+)\/messages(?::|%3A|%3a)send$/.exec(path)))
		return handleSend(req, res, decodeURIComponent(m[1]));
	if (path === '/token')
		return handleToken(req, res);
	return handleControl(req, res, path);
}

function main() {
	const opt = parseArgs('fcm-service', process.argv.slice(2));
	serveH2('fcm-service', opt, route, googleError(500, 'INTERNAL', 'Internal error encountered.'), (o) => {
		origin = o;
		tokenUri = `${origin}/token`;
	});
}

main();
