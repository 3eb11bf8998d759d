'use strict';
// HTTP layer: authentication, routing, list/get/create/update/patch/delete,
// watch (bookmarks, 410, timeoutSeconds), subresources and fault injection.
const http = require('http');
const u = require('./k8sutil');
const { RESOURCES, clone } = require('./store');

const MAX_BODY = 3 * 1024 * 1024;

function send(res, code, obj, headers = {}) {
  if (res.headersSent) { res.end(); return; }
  const body = JSON.stringify(obj);
  res.writeHead(code, { 'Content-Type': 'application/json', 'Content-Length': Buffer.byteLength(body), ...headers });
  res.end(body);
}

function readBody(req) {
  return new Promise((resolve, reject) => {
    const chunks = [];
    let size = 0;
    req.on('data', (c) => {
      size += c.length;
      if (size > MAX_BODY) { reject(new u.ApiError(413, 'RequestEntityTooLarge', 'Request entity too large: limit is 3145728')); req.destroy(); return; }
      chunks.push(c);
    });
    req.on('end', () => resolve(Buffer.concat(chunks)));
    req.on('error', reject);
  });
}

function parseJson(buf) {
  if (!buf.length) return undefined;
  try { return JSON.parse(buf.toString('utf8')); } catch (e) { throw u.badRequest(`error decoding request body: ${e.message}`); }
}

// Splits a request path into {resource, ns, name, sub, rest}; undefined when unknown.
function route(pathname) {
  let m = /^\/api\/v1\/(.*)$/.exec(pathname);
  let group = '';
  if (!m) {
    m = /^\/apis\/(rbac\.authorization\.k8s\.io)\/v1\/(.*)$/.exec(pathname);
    if (!m) return undefined;
    group = m[1];
    m = [m[0], m[2]];
  }
  const parts = m[1].split('/').map(decodeURIComponent);
  let ns = '';
  if (parts[0] === 'namespaces' && parts.length >= 3) { ns = parts[1]; parts.splice(0, 2); }
  const [resource, name, sub, ...rest] = parts;
  const R = RESOURCES[resource];
  if (!R || R.group !== group) return undefined;
  if (ns && !R.namespaced) return undefined;
  return { resource, R, ns, name, sub, rest: rest.join('/') };
}

class Api {
  constructor(opts, store) {
    this.opts = opts;
    this.store = store;
    this.watches = new Set();
    this.hooks = {}; // log(req,res,pod,query), proxy(req,res,pod,port,path), evict(pod)
    store.listeners.push((resource, type, obj, prev) => {
      for (const w of this.watches) w.deliver({ resource, type, obj, prev });
    });
    if (opts.bookmarkIntervalMs > 0) this.bookmarkTimer = setInterval(() => { for (const w of this.watches) w.bookmark(); }, opts.bookmarkIntervalMs);
    if (opts.cutWatchesEveryS > 0) this.cutTimer = setInterval(() => this.cutWatches(), opts.cutWatchesEveryS * 1000);
  }

  close() {
    clearInterval(this.bookmarkTimer); clearInterval(this.cutTimer);
    this.cutWatches();
  }
  cutWatches() { for (const w of [...this.watches]) w.end(); }

  authorize(req) {
    const h = req.headers.authorization || '';
    const m = /^Bearer (.+)$/.exec(h);
    if (!m) return undefined;
    if (m[1] === this.opts.token) return 'admin';
    if (this.opts.readonlyToken && m[1] === this.opts.readonlyToken) return 'readonly';
    return undefined;
  }

  async handle(req, res) {
    const url = new URL(req.url, 'https://x');
    const q = url.searchParams;
    try {
      if (this.opts.latencyMs > 0) await new Promise((r) => setTimeout(r, this.opts.latencyMs));
      if (['/healthz', '/readyz', '/livez'].includes(url.pathname)) { res.writeHead(200, { 'Content-Type': 'text/plain' }); res.end('ok'); return; }
      const user = this.authorize(req);
      if (!user) throw new u.ApiError(401, 'Unauthorized', 'Unauthorized');
      if (url.pathname.startsWith('/admin/')) return await this.admin(req, res, url, user);
      const r = Math.random();
      if (r < this.opts.fail429) throw new u.ApiError(429, 'TooManyRequests', 'Too many requests, please try again later.', { retryAfterSeconds: 1 }, { 'Retry-After': '1' });
      if (r < this.opts.fail429 + this.opts.fail500) throw new u.ApiError(500, 'InternalError', 'Internal error occurred: injected failure');
      if (url.pathname === '/version') return send(res, 200, { major: '1', minor: '30', gitVersion: 'v1.30.0-jgsched-test', platform: 'linux/amd64' });
      if (url.pathname === '/api') return send(res, 200, { kind: 'APIVersions', versions: ['v1'], serverAddressByClientCIDRs: [] });
      if (url.pathname === '/api/v1') return send(res, 200, this.discovery(''));
      if (url.pathname === '/apis/rbac.authorization.k8s.io/v1') return send(res, 200, this.discovery('rbac.authorization.k8s.io'));
      const rt = route(url.pathname);
      if (!rt) throw new u.ApiError(404, 'NotFound', 'the server could not find the requested resource');
      const verb = this.verb(req.method, rt, q);
      if (user === 'readonly' && !['get', 'list', 'watch'].includes(verb)) {
        throw new u.ApiError(403, 'Forbidden', `${rt.resource}${rt.name ? ` "${rt.name}"` : ''} is forbidden: User "jg-readonly" cannot ${verb} resource "${rt.resource}${rt.sub ? '/' + rt.sub : ''}" in API group "${rt.R.group}"${rt.ns ? ` in the namespace "${rt.ns}"` : ''}`, { name: rt.name, kind: rt.resource });
      }
      return await this.dispatch(req, res, rt, q, verb);
    } catch (e) {
      if (!(e instanceof u.ApiError)) { console.error(e); e = new u.ApiError(500, 'InternalError', `Internal error occurred: ${e.message}`); }
      send(res, e.status.code, e.status, e.headers);
    }
  }

  discovery(group) {
    const resources = [];
    for (const [name, R] of Object.entries(RESOURCES)) {
      if (R.group !== group) continue;
      resources.push({ name, singularName: R.kind.toLowerCase(), namespaced: R.namespaced, kind: R.kind, verbs: ['create', 'delete', 'deletecollection', 'get', 'list', 'patch', 'update', 'watch'] });
      if (name === 'pods') for (const s of ['status', 'log', 'proxy', 'eviction']) resources.push({ name: `pods/${s}`, singularName: '', namespaced: true, kind: s === 'eviction' ? 'Eviction' : 'Pod', verbs: ['get', 'create', 'update', 'patch'] });
    }
    return { kind: 'APIResourceList', apiVersion: 'v1', groupVersion: group ? `${group}/v1` : 'v1', resources };
  }

  verb(method, rt, q) {
    const coll = !rt.name;
    switch (method) {
      case 'GET': return coll ? (/^(1|true)$/.test(q.get('watch') || '') ? 'watch' : 'list') : 'get';
      case 'POST': return 'create';
      case 'PUT': return 'update';
      case 'PATCH': return 'patch';
      case 'DELETE': return coll ? 'deletecollection' : 'delete';
      default: return method.toLowerCase();
    }
  }

  async dispatch(req, res, rt, q, verb) {
    const { resource, R, ns, name, sub } = rt;
    const store = this.store;
    if (R.namespaced && !ns && !['list', 'watch'].includes(verb)) throw new u.ApiError(404, 'NotFound', 'the server could not find the requested resource');
    if (sub && !(resource === 'pods' && ['status', 'log', 'proxy', 'eviction'].includes(sub)) && !(resource === 'namespaces' && sub === 'status')) {
      throw new u.ApiError(404, 'NotFound', 'the server could not find the requested resource');
    }
    if (resource === 'pods' && sub === 'log' && verb === 'get') {
      const pod = store.get('pods', ns, name); if (!pod) throw u.notFound('pods', name);
      return this.hooks.log ? this.hooks.log(req, res, pod, q) : send(res, 400, u.status(400, 'BadRequest', 'no kubelet').status);
    }
    if (resource === 'pods' && sub === 'proxy') return this.proxy(req, res, rt);
    if (resource === 'pods' && sub === 'eviction' && verb === 'create') {
      const pod = store.get('pods', ns, name); if (!pod) throw u.notFound('pods', name);
      const body = parseJson(await readBody(req)) || {};
      store.mutate('pods', ns, name, (p) => setCondition(p, { type: 'DisruptionTarget', status: 'True', reason: 'EvictionByEvictionAPI', message: 'Eviction API: evicting' }));
      store.delete('pods', ns, name, (body.deleteOptions) || {});
      return send(res, 201, { kind: 'Status', apiVersion: 'v1', metadata: {}, status: 'Success', code: 201 });
    }
    switch (verb) {
      case 'list': return this.list(res, rt, q);
      case 'watch': return this.watch(req, res, rt, q);
      case 'get': {
        const o = store.get(resource, ns, name); if (!o) throw u.notFound(resource, name);
        return send(res, 200, o);
      }
      case 'create': {
        if (name) throw new u.ApiError(405, 'MethodNotAllowed', 'the server does not allow this method on the requested resource');
        const o = store.create(resource, ns, parseJson(await readBody(req)));
        return send(res, 201, o);
      }
      case 'update': {
        const o = store.update(resource, ns, name, parseJson(await readBody(req)), sub === 'status' ? 'status' : '');
        return send(res, 200, o);
      }
      case 'patch': {
        const ct = (req.headers['content-type'] || '').split(';')[0].trim();
        const body = parseJson(await readBody(req));
        const old = store.get(resource, ns, name); if (!old) throw u.notFound(resource, name);
        let patched;
        if (ct === 'application/merge-patch+json') patched = u.mergePatch(clone(old), body);
        else if (ct === 'application/json-patch+json') patched = u.jsonPatch(old, body);
        else throw new u.ApiError(415, 'UnsupportedMediaType', `the body of the request was in an unknown format - accepted media types include: application/json-patch+json, application/merge-patch+json (strategic merge and apply patches are not implemented by this test server)`);
        // A resourceVersion in the patch is a precondition; otherwise the patch applies to the current object.
        if (!(body && body.metadata && body.metadata.resourceVersion) && patched.metadata) patched.metadata.resourceVersion = old.metadata.resourceVersion;
        const o = store.update(resource, ns, name, patched, sub === 'status' ? 'status' : '');
        return send(res, 200, o);
      }
      case 'delete': {
        const body = parseJson(await readBody(req)) || {};
        const opts = { ...body };
        if (q.has('gracePeriodSeconds')) opts.gracePeriodSeconds = Number(q.get('gracePeriodSeconds'));
        if (q.has('propagationPolicy')) opts.propagationPolicy = q.get('propagationPolicy');
        const { obj, gone } = store.delete(resource, ns, name, opts);
        if (resource === 'pods' || !gone) return send(res, gone ? 200 : 200, obj);
        return send(res, 200, { kind: 'Status', apiVersion: 'v1', metadata: {}, status: 'Success', details: { name, kind: resource, uid: obj.metadata.uid } });
      }
      case 'deletecollection': {
        const items = this.select(rt, q);
        const body = parseJson(await readBody(req)) || {};
        const opts = { ...body };
        if (q.has('gracePeriodSeconds')) opts.gracePeriodSeconds = Number(q.get('gracePeriodSeconds'));
        if (q.has('propagationPolicy')) opts.propagationPolicy = q.get('propagationPolicy');
        const out = [];
        for (const o of items) { try { out.push(store.delete(resource, o.metadata.namespace, o.metadata.name, opts).obj); } catch (e) { if (!(e instanceof u.ApiError)) throw e; } }
        return send(res, 200, { kind: `${R.kind}List`, apiVersion: R.apiVersion, metadata: { resourceVersion: String(store.rv) }, items: out });
      }
    }
    throw new u.ApiError(405, 'MethodNotAllowed', 'the server does not allow this method on the requested resource');
  }

  select(rt, q) {
    const lsel = u.parseLabelSelector(q.get('labelSelector'));
    const fsel = u.parseFieldSelector(q.get('fieldSelector'));
    return this.store.list(rt.resource, rt.ns).filter((o) => u.matchLabels(lsel, o.metadata.labels) && u.matchFields(fsel, o));
  }

  list(res, rt, q) {
    let items = this.select(rt, q);
    const meta = { resourceVersion: String(this.store.rv) };
    // limit/continue: the continue token is the offset (no consistent snapshot: see README).
    const limit = Number(q.get('limit') || 0);
    const start = q.get('continue') ? Number(Buffer.from(q.get('continue'), 'base64').toString()) : 0;
    if (Number.isNaN(start)) throw u.badRequest('invalid continue token');
    if (limit > 0) {
      const page = items.slice(start, start + limit);
      if (start + limit < items.length) { meta.continue = Buffer.from(String(start + limit)).toString('base64'); meta.remainingItemCount = items.length - start - limit; }
      items = page;
    }
    send(res, 200, { kind: `${rt.R.kind}List`, apiVersion: rt.R.apiVersion, metadata: meta, items });
  }

  watch(req, res, rt, q) {
    const store = this.store;
    const lsel = u.parseLabelSelector(q.get('labelSelector'));
    const fsel = u.parseFieldSelector(q.get('fieldSelector'));
    const matches = (o) => o && (!rt.ns || o.metadata.namespace === rt.ns) && u.matchLabels(lsel, o.metadata.labels) && u.matchFields(fsel, o);
    const bookmarks = /^(1|true)$/.test(q.get('allowWatchBookmarks') || '');
    const rvParam = q.get('resourceVersion') || '';
    res.writeHead(200, { 'Content-Type': 'application/json', 'Transfer-Encoding': 'chunked', 'Cache-Control': 'no-cache' });
    res.flushHeaders();
    const write = (type, object) => res.write(JSON.stringify({ type, object }) + '\n');
    const w = {
      ended: false,
      deliver: (ev) => {
        if (ev.resource !== rt.resource || w.ended) return;
        const now = matches(ev.obj);
        const before = ev.prev && ev.type === 'MODIFIED' ? matches(ev.prev) : now;
        if (ev.type === 'MODIFIED' && now && !before) write('ADDED', ev.obj);
        else if (ev.type === 'MODIFIED' && !now && before) write('DELETED', ev.obj);
        else if (now) write(ev.type, ev.obj);
      },
      bookmark: () => {
        if (bookmarks && !w.ended) write('BOOKMARK', { kind: rt.R.kind, apiVersion: rt.R.apiVersion, metadata: { resourceVersion: String(store.rv) } });
      },
      end: () => {
        if (w.ended) return;
        w.ended = true; this.watches.delete(w); clearTimeout(w.timer); res.end();
      },
    };
    if (rvParam === '' || rvParam === '0') {
      for (const o of this.select(rt, q)) write('ADDED', o);
    } else {
      const from = Number(rvParam);
      if (!Number.isInteger(from) || from < 0) { write('ERROR', u.status(400, 'BadRequest', `invalid resource version: ${rvParam}`)); res.end(); return; }
      if (from < store.compactedRv) {
        write('ERROR', u.status(410, 'Expired', `too old resource version: ${from} (${store.compactedRv + 1})`));
        res.end(); return;
      }
      for (const ev of store.history) if (ev.rv > from) w.deliver(ev);
    }
    this.watches.add(w);
    const timeout = Number(q.get('timeoutSeconds') || 0);
    // A real apiserver ends a watch after a random 5-10 min (--min-request-timeout) when no timeout is asked.
    w.timer = setTimeout(() => w.end(), (timeout > 0 ? timeout : 300 + Math.random() * 300) * 1000);
    req.on('close', () => w.end());
    res.on('close', () => w.end());
  }

  async proxy(req, res, rt) {
    const m = /^(?:https?:)?([^:]+)(?::(\d+))?$/.exec(rt.name);
    if (!m) throw u.badRequest(`invalid pod proxy name: ${rt.name}`);
    const pod = this.store.get('pods', rt.ns, m[1]);
    if (!pod) throw u.notFound('pods', m[1]);
    const ip = pod.status && pod.status.podIP;
    if (!ip) throw new u.ApiError(503, 'ServiceUnavailable', `pod ${m[1]} has no IP address`);
    const port = Number(m[2] || 80);
    const url = new URL(req.url, 'https://x');
    const body = await readBody(req);
    const headers = { ...req.headers };
    for (const h of ['authorization', 'host', 'connection', 'transfer-encoding', 'keep-alive']) delete headers[h];
    headers['content-length'] = body.length;
    const up = http.request({ host: ip, port, method: req.method, path: '/' + rt.rest + url.search, headers }, (ur) => {
      res.writeHead(ur.statusCode, ur.headers);
      ur.pipe(res);
    });
    up.on('error', (e) => send(res, 503, u.status(503, 'ServiceUnavailable', `error trying to reach service: dial tcp ${ip}:${port}: ${e.code || e.message}`)));
    res.on('close', () => { if (!res.writableFinished) up.destroy(); });
    up.end(body);
  }

  async admin(req, res, url, user) {
    if (user !== 'admin') throw new u.ApiError(403, 'Forbidden', 'admin endpoints need the admin token');
    let m;
    if (req.method === 'POST' && url.pathname === '/admin/compact') { this.store.compact(); return send(res, 200, { compactedResourceVersion: String(this.store.compactedRv) }); }
    if (req.method === 'POST' && url.pathname === '/admin/cut-watches') { const n = this.watches.size; this.cutWatches(); return send(res, 200, { cut: n }); }
    if (req.method === 'POST' && (m = /^\/admin\/nodes\/([^/]+)\/kill$/.exec(url.pathname))) {
      if (!this.hooks.killNode) throw u.badRequest('no node lifecycle');
      return send(res, 200, this.hooks.killNode(decodeURIComponent(m[1]), url.searchParams.get('mode') || 'taint'));
    }
    if (req.method === 'GET' && (m = /^\/admin\/pods\/([^/]+)\/([^/]+)\/containers\/([^/]+)\/pid$/.exec(url.pathname))) {
      if (!this.hooks.containerProcess) throw u.badRequest('no kubelet (--no-kubelet)');
      return send(res, 200, this.hooks.containerProcess(...m.slice(1, 4).map(decodeURIComponent)));
    }
    if (req.method === 'POST' && url.pathname === '/admin/faults') {
      const body = parseJson(await readBody(req)) || {};
      for (const k of ['latencyMs', 'fail429', 'fail500']) if (typeof body[k] === 'number') this.opts[k] = body[k];
      return send(res, 200, { latencyMs: this.opts.latencyMs, fail429: this.opts.fail429, fail500: this.opts.fail500 });
    }
    throw new u.ApiError(404, 'NotFound', 'unknown admin endpoint');
  }
}

function setCondition(pod, cond) {
  pod.status ??= {};
  const conds = pod.status.conditions ??= [];
  const t = new Date().toISOString().replace(/\.\d+Z$/, 'Z');
  const old = conds.find((c) => c.type === cond.type);
  if (old) {
    if (old.status !== cond.status) old.lastTransitionTime = t;
    Object.assign(old, cond);
  } else conds.push({ lastProbeTime: null, lastTransitionTime: t, ...cond });
}

module.exports = { Api, setCondition, send };
