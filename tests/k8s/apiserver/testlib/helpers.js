'use strict';
// Starts a test apiserver and talks to it as a client would.
const { spawn } = require('child_process');
const fs = require('fs');
const os = require('os');
const path = require('path');
const https = require('https');

const SERVER = path.join(__dirname, '..', 'server.js');

async function startServer(args = []) {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'jk-test-'));
  const kc = path.join(dir, 'kubeconfig');
  const child = spawn(process.execPath, [...(process.env.JK_NODE_ARGS ? process.env.JK_NODE_ARGS.split(' ') : []), SERVER, '--port', '0', '--kubeconfig-out', kc, ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
  let stderr = '';
  child.stderr.on('data', (d) => { stderr += d; });
  const line = await new Promise((resolve, reject) => {
    let out = '';
    child.stdout.on('data', (d) => { out += d; const m = /READY .*\n/.exec(out); if (m) resolve(m[0]); });
    child.on('exit', (code) => reject(new Error(`server exited ${code}: ${stderr}`)));
  });
  const port = Number(/port=(\d+)/.exec(line)[1]);
  const text = fs.readFileSync(kc, 'utf8');
  const ca = Buffer.from(/certificate-authority-data: (\S+)/.exec(text)[1], 'base64');
  const token = /token: (\S+)/.exec(text)[1];
  const agent = new https.Agent({ ca, keepAlive: true });
  const srv = {
    child, port, ca, token, kubeconfig: kc, ready: line, stderr: () => stderr,
    dns: (/dns=(\S*)/.exec(line) || [])[1],
    request(method, p, body, { headers = {}, auth = true, raw = false } = {}) {
      return new Promise((resolve, reject) => {
        const h = { ...headers };
        if (auth) h.Authorization = `Bearer ${auth === true ? token : auth}`;
        let data;
        if (body !== undefined) { data = typeof body === 'string' ? body : JSON.stringify(body); h['Content-Type'] ??= 'application/json'; h['Content-Length'] = Buffer.byteLength(data); }
        const req = https.request({ host: '127.0.0.1', port, method, path: p, headers: h, agent }, (res) => {
          const chunks = [];
          res.on('data', (c) => chunks.push(c));
          res.on('end', () => {
            const text = Buffer.concat(chunks).toString();
            let json; if (!raw) { try { json = JSON.parse(text); } catch (e) { json = undefined; } }
            resolve({ code: res.statusCode, headers: res.headers, body: json, text });
          });
        });
        req.on('error', reject);
        if (data !== undefined) req.write(data);
        req.end();
      });
    },
    // Opens a watch; returns {events, next(pred, ms), close()}.
    watch(p) {
      const events = [];
      const waiters = [];
      let buf = '';
      let ended = false;
      const req = https.request({ host: '127.0.0.1', port, path: p, headers: { Authorization: `Bearer ${token}` }, agent: new https.Agent({ ca }) }, (res) => {
        res.on('data', (c) => {
          buf += c;
          let i;
          while ((i = buf.indexOf('\n')) >= 0) { events.push(JSON.parse(buf.slice(0, i))); buf = buf.slice(i + 1); }
          for (const w of [...waiters]) w();
        });
        res.on('end', () => { ended = true; for (const w of [...waiters]) w(); });
      });
      req.end();
      return {
        events,
        ended: () => ended,
        next(pred, ms = 30000) {
          return new Promise((resolve, reject) => {
            const check = () => {
              const e = events.find(pred);
              if (e) { waiters.splice(waiters.indexOf(check), 1); clearTimeout(t); resolve(e); }
              else if (ended) { waiters.splice(waiters.indexOf(check), 1); clearTimeout(t); reject(new Error('watch ended: ' + JSON.stringify(events.map((x) => x.type)))); }
            };
            const t = setTimeout(() => { waiters.splice(waiters.indexOf(check), 1); reject(new Error('timeout waiting on watch: ' + JSON.stringify(events.map((x) => x.type)))); }, ms);
            waiters.push(check);
            check();
          });
        },
        close() { req.destroy(); },
      };
    },
    async stop() {
      if (child.exitCode === null && child.signalCode === null) {
        const done = new Promise((r) => child.once('exit', r));
        child.kill('SIGTERM');
        await done;
      }
      agent.destroy();
      fs.rmSync(dir, { recursive: true, force: true });
    },
  };
  return srv;
}

// Polls fn until it returns a truthy value (tests wait on states, not sleeps).
async function until(fn, ms = 30000, what = 'condition') {
  const end = Date.now() + ms;
  for (;;) {
    const v = await fn();
    if (v) return v;
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

const pod = (name, extra = {}) => ({
  apiVersion: 'v1', kind: 'Pod', metadata: { name, ...(extra.metadata || {}) },
  spec: { containers: [{ name: 'main', image: 'busybox:1', command: ['sleep', '1000'] }], ...(extra.spec || {}) },
});

module.exports = { startServer, until, pod };
