#!/usr/bin/env node
'use strict';
// Test Kubernetes API server for jgsched's Kubernetes backend.  Test code
// only: see README.md for what it implements and where it is not faithful.
const fs = require('fs');
const os = require('os');
const path = require('path');
const https = require('https');
const crypto = require('crypto');
const { execFileSync } = require('child_process');
const { Store } = require('./lib/store');
const { Api, setCondition } = require('./lib/api');
const { Scheduler, recordEvent } = require('./lib/scheduler');

const USAGE = `usage: server.js [options]
  --port N                 HTTPS port on 127.0.0.1 (0: any; printed on the READY line)
  --kubeconfig-out FILE    write a kubeconfig for this server
  --token T                bearer token (default: random)
  --readonly-token T       a token that may only get/list/watch (403 otherwise)
  --namespace NS           namespace written into the kubeconfig (created; default "default")
  --nodes FILE             JSON: [{"name","allocatable":{"cpu","memory","nvidia.com/gpu","pods"},"labels"}]
  --no-kubelet             bind pods but run nothing (no root needed)
  --history N              watch event history length (default 1000)
  --bookmark-interval-ms N BOOKMARK events on watches that allow them (default 5000)
  --restart-backoff-ms N   delay before restarting a container (default 1000)
  --latency-ms N           delay every request by N ms
  --fail-429 F             share of requests answered 429 TooManyRequests (Retry-After: 1)
  --fail-500 F             share of requests answered 500 InternalError
  --cut-watches-every S    end every watch stream every S seconds
  --state-dir DIR          where runs record what to clean (default /run/jg-test-apiserver)
  --image-files IMAGE=DIR  containers of IMAGE (any tag) see DIR's entries at /<entry>, read-only
                           (repeatable; images are otherwise ignored)`;

function parseArgs(argv) {
  const o = { port: 0, token: crypto.randomBytes(24).toString('hex'), namespace: 'default', kubelet: true,
    historyMax: 1000, bookmarkIntervalMs: 5000, restartBackoffMs: 1000, latencyMs: 0, fail429: 0, fail500: 0,
    cutWatchesEveryS: 0, stateDir: '/run/jg-test-apiserver', imageFiles: {} };
  const num = (v, f) => { const n = Number(v); if (!Number.isFinite(n) || n < 0) { console.error(`${f}: not a number: ${v}`); process.exit(2); } return n; };
  for (let i = 2; i < argv.length; i++) {
    const a = argv[i], v = argv[i + 1];
    const take = () => { i++; if (v === undefined) { console.error(`${a} needs a value`); process.exit(2); } return v; };
    switch (a) {
      case '--port': o.port = num(take(), a); break;
      case '--kubeconfig-out': o.kubeconfigOut = take(); break;
      case '--token': o.token = take(); break;
      case '--readonly-token': o.readonlyToken = take(); break;
      case '--namespace': o.namespace = take(); break;
      case '--nodes': o.nodesFile = take(); break;
      case '--no-kubelet': o.kubelet = false; break;
      case '--history': o.historyMax = num(take(), a); break;
      case '--bookmark-interval-ms': o.bookmarkIntervalMs = num(take(), a); break;
      case '--restart-backoff-ms': o.restartBackoffMs = num(take(), a); break;
      case '--latency-ms': o.latencyMs = num(take(), a); break;
      case '--fail-429': o.fail429 = num(take(), a); break;
      case '--fail-500': o.fail500 = num(take(), a); break;
      case '--cut-watches-every': o.cutWatchesEveryS = num(take(), a); break;
      case '--state-dir': o.stateDir = take(); break;
      case '--image-files': {
        const [img, dir] = take().split('=');
        if (!img || !dir || !fs.statSync(dir, { throwIfNoEntry: false })?.isDirectory()) { console.error(`--image-files: want IMAGE=DIR with an existing DIR: ${v}`); process.exit(2); }
        o.imageFiles[img] = path.resolve(dir);
        break;
      }
      case '-h': case '--help': console.log(USAGE); process.exit(0); break;
      default: console.error(`unknown option ${a}\n${USAGE}`); process.exit(2);
    }
  }
  return o;
}

function makeCerts(dir) {
  const run = (...args) => execFileSync('openssl', args, { cwd: dir, stdio: ['ignore', 'ignore', 'pipe'] });
  const ec = ['-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes'];
  run('req', '-x509', ...ec, '-keyout', 'ca.key', '-out', 'ca.crt', '-days', '7', '-subj', '/CN=jg-test-apiserver-ca',
    '-addext', 'basicConstraints=critical,CA:TRUE', '-addext', 'keyUsage=critical,keyCertSign,cRLSign');
  run('req', ...ec, '-keyout', 'server.key', '-out', 'server.csr', '-subj', '/CN=kube-apiserver');
  fs.writeFileSync(path.join(dir, 'ext.cnf'), 'subjectAltName=IP:127.0.0.1,DNS:localhost\nbasicConstraints=CA:FALSE\nkeyUsage=critical,digitalSignature,keyEncipherment\nextendedKeyUsage=serverAuth\n');
  run('x509', '-req', '-in', 'server.csr', '-CA', 'ca.crt', '-CAkey', 'ca.key', '-CAcreateserial', '-out', 'server.crt', '-days', '7', '-extfile', 'ext.cnf');
  return { ca: fs.readFileSync(path.join(dir, 'ca.crt')), cert: fs.readFileSync(path.join(dir, 'server.crt')), key: fs.readFileSync(path.join(dir, 'server.key')) };
}

function kubeconfig(port, ca, token, namespace) {
  return `apiVersion: v1
kind: Config
clusters:
- name: jg-test
  cluster:
    server: https://127.0.0.1:${port}
    certificate-authority-data: ${Buffer.from(ca).toString('base64')}
users:
- name: jg-test-admin
  user:
    token: ${token}
contexts:
- name: jg-test
  context:
    cluster: jg-test
    user: jg-test-admin
    namespace: ${namespace}
current-context: jg-test
preferences: {}
`;
}

const DEFAULT_NODES = [
  { name: 'node-1', allocatable: { cpu: '4', memory: '8Gi', pods: '110' }, labels: {} },
  { name: 'node-2', allocatable: { cpu: '4', memory: '8Gi', pods: '110' }, labels: {} },
];

function nodeObject(n) {
  const alloc = { pods: '110', 'ephemeral-storage': '100Gi', ...n.allocatable };
  const t = new Date().toISOString().replace(/\.\d+Z$/, 'Z');
  const id = crypto.createHash('sha256').update(n.name).digest('hex').slice(0, 32);
  return {
    metadata: { name: n.name, labels: { 'kubernetes.io/hostname': n.name, 'kubernetes.io/os': 'linux', 'kubernetes.io/arch': 'amd64', ...(n.labels || {}) } },
    spec: {},
    status: {
      capacity: { ...alloc }, allocatable: alloc,
      conditions: [{ type: 'Ready', status: 'True', reason: 'KubeletReady', message: 'kubelet is posting ready status', lastHeartbeatTime: t, lastTransitionTime: t }],
      addresses: [{ type: 'InternalIP', address: '127.0.0.1' }, { type: 'Hostname', address: n.name }],
      nodeInfo: { machineID: id, systemUUID: id, bootID: id, kernelVersion: os.release(), osImage: 'jgsched test node', containerRuntimeVersion: 'jgsched-test://local-processes',
        kubeletVersion: 'v1.30.0-jgsched-test', kubeProxyVersion: 'v1.30.0-jgsched-test', operatingSystem: 'linux', architecture: 'amd64' },
    },
  };
}

// Node loss as the node lifecycle controller and PodGC report it.
function killNode(store, name, mode, kubelet) {
  const node = store.get('nodes', '', name);
  if (!node) throw new (require('./lib/k8sutil').ApiError)(404, 'NotFound', `nodes "${name}" not found`);
  if (kubelet) kubelet.killNode(name);
  const pods = store.list('pods').filter((p) => p.spec.nodeName === name);
  if (mode === 'delete') {
    store.finishDelete('nodes', node);
    for (const p of pods) {
      store.mutate('pods', p.metadata.namespace, p.metadata.name, (o) => {
        setCondition(o, { type: 'DisruptionTarget', status: 'True', reason: 'DeletionByPodGC', message: 'PodGC: node no longer exists' });
        if (o.status.phase !== 'Succeeded') o.status.phase = 'Failed';
      });
      const cur = store.get('pods', p.metadata.namespace, p.metadata.name);
      if (cur) store.finishDelete('pods', cur);
    }
  } else {
    store.mutate('nodes', '', name, (n) => {
      const c = n.status.conditions.find((x) => x.type === 'Ready');
      Object.assign(c, { status: 'Unknown', reason: 'NodeStatusUnknown', message: 'Kubelet stopped posting node status.', lastTransitionTime: new Date().toISOString().replace(/\.\d+Z$/, 'Z') });
      n.spec.taints = [{ key: 'node.kubernetes.io/unreachable', effect: 'NoSchedule' }, { key: 'node.kubernetes.io/unreachable', effect: 'NoExecute', timeAdded: c.lastTransitionTime }];
    });
    for (const p of pods) {
      store.mutate('pods', p.metadata.namespace, p.metadata.name, (o) => {
        setCondition(o, { type: 'Ready', status: 'False', reason: 'NodeNotReady', message: undefined });
        setCondition(o, { type: 'DisruptionTarget', status: 'True', reason: 'DeletionByTaintManager', message: 'Taint manager: deleting due to NoExecute taint' });
      });
      recordEvent(store, p, 'Normal', 'TaintManagerEviction', `Marking for deletion Pod ${p.metadata.namespace}/${p.metadata.name}`, 'taint-eviction-controller');
      // The kubelet is gone, so nothing confirms termination: the pod stays Terminating
      // until the grace period ends, then the PodGC force-deletes it.
      try { store.delete('pods', p.metadata.namespace, p.metadata.name, {}); } catch (e) { /* already gone */ }
      const cur = store.get('pods', p.metadata.namespace, p.metadata.name);
      if (cur) setTimeout(() => { const c2 = store.get('pods', cur.metadata.namespace, cur.metadata.name); if (c2 && c2.metadata.uid === cur.metadata.uid) store.finishDelete('pods', c2); }, Math.min(cur.metadata.deletionGracePeriodSeconds ?? 0, 5) * 1000);
    }
  }
  return { node: name, mode, pods: pods.map((p) => `${p.metadata.namespace}/${p.metadata.name}`) };
}

async function main() {
  const opts = parseArgs(process.argv);
  const prefix = 'jk' + crypto.randomBytes(2).toString('hex');
  // Not under /tmp: pods commonly mount an emptyDir over /tmp, which would hide
  // the sources of their other mounts.
  const stateDir = path.join(opts.stateDir, prefix);
  const workDir = path.join(stateDir, 'work');
  let kubelet;
  let cleaned = false;
  const cleanup = () => {
    if (cleaned) return;
    cleaned = true;
    try { if (kubelet) kubelet.shutdown(); } catch (e) { console.error('kubelet cleanup:', e.message); }
    fs.rmSync(workDir, { recursive: true, force: true });
    fs.rmSync(stateDir, { recursive: true, force: true });
  };
  process.on('exit', cleanup);
  for (const sig of ['SIGTERM', 'SIGINT', 'SIGHUP']) process.on(sig, () => { cleanup(); process.exit(0); });
  process.on('uncaughtException', (e) => { console.error(e); cleanup(); process.exit(1); });

  const Kubelet = opts.kubelet ? require('./lib/kubelet').Kubelet : null;
  fs.mkdirSync(opts.stateDir, { recursive: true, mode: 0o700 });
  if (Kubelet) Kubelet.cleanStale(opts.stateDir);
  fs.mkdirSync(stateDir, { mode: 0o711 });
  fs.mkdirSync(workDir, { mode: 0o711 });
  fs.writeFileSync(path.join(stateDir, 'run.json'), JSON.stringify({ pid: process.pid, prefix, workDir }));

  const certs = makeCerts(workDir);
  const store = new Store(opts);
  if (!store.get('namespaces', '', opts.namespace)) store.createInternal('namespaces', { metadata: { name: opts.namespace }, spec: { finalizers: ['kubernetes'] }, status: { phase: 'Active' } });
  const nodes = opts.nodesFile ? JSON.parse(fs.readFileSync(opts.nodesFile, 'utf8')) : DEFAULT_NODES;
  for (const n of nodes) store.createInternal('nodes', nodeObject(n));
  const api = new Api(opts, store);
  const scheduler = new Scheduler(store);
  if (Kubelet) {
    kubelet = new Kubelet({ store, prefix, workDir, restartBackoffMs: opts.restartBackoffMs, stateFile: path.join(stateDir, 'run.json'), imageFiles: opts.imageFiles });
    kubelet.start();
    api.hooks.log = (req, res, pod, q) => kubelet.serveLog(req, res, pod, q);
    api.hooks.containerProcess = (ns, name, c) => kubelet.containerProcess(ns, name, c);
  } else {
    // Without a kubelet a pod's graceful deletion completes once its grace period ends.
    store.listeners.push((resource, type, obj) => {
      if (resource !== 'pods' || type !== 'MODIFIED' || !obj.metadata.deletionTimestamp) return;
      setTimeout(() => { const cur = store.get('pods', obj.metadata.namespace, obj.metadata.name); if (cur && cur.metadata.uid === obj.metadata.uid && !(cur.metadata.finalizers || []).length) store.finishDelete('pods', cur); }, (obj.metadata.deletionGracePeriodSeconds || 0) * 1000);
    });
  }
  api.hooks.killNode = (name, mode) => killNode(store, name, mode, kubelet);

  const server = https.createServer({ key: certs.key, cert: certs.cert }, (req, res) => api.handle(req, res));
  server.keepAliveTimeout = 60000;
  await new Promise((resolve, reject) => { server.once('error', reject); server.listen(opts.port, '127.0.0.1', resolve); });
  const port = server.address().port;
  if (opts.kubeconfigOut) fs.writeFileSync(opts.kubeconfigOut, kubeconfig(port, certs.ca, opts.token, opts.namespace), { mode: 0o600 });
  const shutdown = () => { api.close(); scheduler.close(); server.close(); };
  process.on('exit', shutdown);
  console.log(`READY port=${port} prefix=${prefix} dns=${kubelet ? kubelet.dnsIp : ''} pid=${process.pid}`);
}

main().catch((e) => { console.error(e); process.exit(1); });
