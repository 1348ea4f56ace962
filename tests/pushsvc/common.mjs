// common.mjs: what the test push services share: their command line
// (--cert, --key, --port, --host and a service's own options) and reading a
// request body up to a limit (the total is counted, the rest dropped); the
// HTTP/2 server of the FCM and APNs stand-ins.

import fs from 'node:fs';
import http2 from 'node:http2';

export function parseArgs(prog, argv, extra = {}) {
	const opt = { cert: null, key: null, port: 0, host: '127.0.0.1', ...extra };
	const usage = (msg) => {
		if (msg)
			process.stderr.write(`${prog}: ${msg}\n`);
		const more = Object.keys(extra).map((k) => ` [--${k} ${extra[k]}]`).join('');
		process.stderr.write(`usage: node ${prog}.mjs --cert CERT.pem --key KEY.pem [--port 0] [--host 127.0.0.1]${more}\n`);
		process.exit(2);
	};
	for (let i = 0; i < argv.length; i++) {
		const a = argv[i];
		const eq = a.indexOf('=');
		const name = a.startsWith('--') ? (eq > 0 ? a.slice(2, eq) : a.slice(2)) : null;
		if (!name || !(name in opt))
			usage(`unknown argument ${a}`);
		let val;
		if (eq > 0)
			val = a.slice(eq + 1);
		else if (i + 1 < argv.length)
			val = argv[++i];
		else
			usage(`--${name} needs a value`);
		opt[name] = val;
	}
	if (!opt.cert || !opt.key)
		usage('--cert and --key are required');
	if (!/^\d+$/.test(String(opt.port)) || Number(opt.port) > 65535)
		usage('--port must be 0..65535');
	opt.port = Number(opt.port);
	opt.usage = usage;
	return opt;
}

export function readBody(req, limit) {
	return new Promise((resolve, reject) => {
		const chunks = [];
		let kept = 0;
		let total = 0;
		req.on('data', (c) => {
			total += c.length;
			if (kept <= limit) {
				const take = c.subarray(0, limit + 1 - kept);
				chunks.push(take);
				kept += take.length;
			}
		});
		req.on('end', () => resolve({ body: Buffer.concat(chunks, kept), total }));
		req.on('error', reject);
	});
}

/*
 * An HTTPS server with HTTP/2 and HTTP/1.1 on one port (http2 with
 * allowHTTP1) running handler(req, res); an exception answers 500 with
 * failBody (or ends the stream). SIGTERM/SIGINT close every session and
 * exit. When listening, listening(origin) runs and {"port": N} is printed.
 */
export function serveH2(prog, opt, handler, failBody, listening) {
	const server = http2.createSecureServer({
		cert: fs.readFileSync(opt.cert),
		key: fs.readFileSync(opt.key),
		allowHTTP1: true,
	}, (req, res) => {
		handler(req, res).catch((e) => {
			process.stderr.write(`level=error mod=${prog} ev=handler_failed err=${JSON.stringify(String(e && e.stack || e))}\n`);
			if (!res.headersSent) {
				const data = JSON.stringify(failBody);
				res.writeHead(500, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(data) });
				res.end(data);
			} else {
				res.destroy();
			}
		});
	});
	const sessions = new Set();
	server.on('session', (s) => {
		sessions.add(s);
		s.on('close', () => sessions.delete(s));
		s.on('error', () => {});
	});
	server.on('secureConnection', (sock) => sock.on('error', () => {}));
	server.on('error', (e) => {
		process.stderr.write(`${prog}: ${e.message}\n`);
		process.exit(1);
	});
	const stop = () => {
		for (const s of sessions)
			s.destroy();
		server.close();
		process.exit(0);
	};
	process.on('SIGTERM', stop);
	process.on('SIGINT', stop);
	server.listen(opt.port, opt.host, () => {
		const port = server.address().port;
		const host = opt.host.includes(':') ? `[${opt.host}]` : opt.host;
		listening(new URL(`https://${host}:${port}`).origin);
		process.stdout.write(`{"port": ${port}}\n`);
	});
}
