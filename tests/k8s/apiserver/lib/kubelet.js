'use strict';
// The kubelet of every simulated node: runs a bound pod's init containers,
// then its containers, as local processes (the image is ignored) in a network
// namespace per pod on a bridge this run owns, with the pod's hostname (UTS
// namespace), its volumes bind-mounted in a private mount namespace, and the
// /etc/hosts, /etc/hostname and /etc/resolv.conf a kubelet writes.
const fs = require('fs');
const path = require('path');
const { execFileSync } = require('child_process');
const { Spawner } = require('./spawner');
const { setCondition } = require('./api');
const { recordEvent } = require('./scheduler');
const { startDns } = require('./dns');
const u = require('./k8sutil');

const now = () => new Date().toISOString().replace(/\.\d+Z$/, 'Z');
const nanoNow = () => { const d = new Date(); return d.toISOString().replace(/Z$/, '') + String(process.hrtime.bigint() % 1000000n).padStart(6, '0') + 'Z'; };

// Runs inside the pod's namespaces: sets the hostname, bind-mounts the
// volumes and kubelet files, changes to workingDir and execs the command.
const WRAPPER = `set -e
jg_path=\${PATH-}; PATH=/usr/sbin:/usr/bin:/sbin:/bin
printf '%s' "$1" > /proc/sys/kernel/hostname; shift
while [ "$1" != "--" ]; do
  src=$1 dst=$2 ro=$3; shift 3
  if [ -d "$src" ]; then mkdir -p "$dst"; elif [ ! -e "$dst" ]; then mkdir -p "$(dirname "$dst")"; : > "$dst"; fi
  mount --bind "$src" "$dst"
  if [ "$ro" = ro ]; then mount -o remount,bind,ro "$dst"; fi
done
shift
if [ -n "$1" ]; then cd "$1"; fi
shift
PATH=$jg_path
exec "$@"`;

// Absolute paths: the container's own PATH (from its env) must not decide
// which tools set it up.
const which = (cmd) => execFileSync('/bin/sh', ['-c', `command -v ${cmd}`], { encoding: 'utf8' }).trim();
const TOOLS = {};
const tool = (cmd) => (TOOLS[cmd] ??= which(cmd));

const SIGNUM = { SIGHUP: 1, SIGINT: 2, SIGQUIT: 3, SIGABRT: 6, SIGKILL: 9, SIGSEGV: 11, SIGPIPE: 13, SIGALRM: 14, SIGTERM: 15 };

class ContainerRun {
  constructor() { this.lines = []; this.bytes = 0; this.followers = new Set(); this.done = false; }
  append(data) {
    const entry = { ts: nanoNow(), data };
    this.lines.push(entry);
    this.bytes += data.length;
    for (const f of this.followers) f(entry);
  }
  finish() { this.done = true; for (const f of this.followers) f(null); this.followers.clear(); }
}

class Kubelet {
  constructor({ store, prefix, workDir, restartBackoffMs, stateFile, imageFiles }) {
    this.imageFiles = imageFiles || {};
    this.stateFile = stateFile;
    this.store = store;
    this.prefix = prefix;
    this.workDir = workDir;
    this.restartBackoffMs = restartBackoffMs;
    this.pods = new Map(); // uid -> pod runtime state
    this.deadNodes = new Set();
    this.nextIp = 2;
    this.freeIps = []; // addresses of torn-down pods, reused oldest first
    this.nextIndex = 0;
    this.createdPaths = [];
    this.bridge = `${prefix}br`;
    this.spawner = new Spawner();
  }

  static cleanStale(stateDir) {
    for (const d of fs.readdirSync(stateDir)) {
      let info;
      try { info = JSON.parse(fs.readFileSync(path.join(stateDir, d, 'run.json'), 'utf8')); } catch (e) { continue; }
      let alive = false;
      try { alive = fs.readFileSync(`/proc/${info.pid}/cmdline`, 'utf8').includes('server.js'); } catch (e) { alive = false; }
      if (alive) continue;
      Kubelet.teardownRun(info);
      fs.rmSync(path.join(stateDir, d), { recursive: true, force: true });
      console.error(`cleaned stale run ${info.prefix} (pid ${info.pid})`);
    }
  }

  // Removes everything a run named with its prefix: processes in its network
  // namespaces, the namespaces, its bridge, created mount points, its files.
  static teardownRun(info) {
    let list = '';
    try { list = execFileSync('ip', ['netns', 'list'], { encoding: 'utf8' }); } catch (e) { list = ''; }
    for (const line of list.split('\n')) {
      const ns = line.split(' ')[0];
      if (!ns.startsWith(`${info.prefix}-`)) continue;
      Kubelet.killNetnsSync(ns);
      try { execFileSync('ip', ['netns', 'del', ns], { stdio: 'ignore' }); } catch (e) { /* gone */ }
    }
    // veth pairs whose pod end never reached its namespace, then the bridge
    let links = '';
    try { links = execFileSync('ip', ['-o', 'link', 'show'], { encoding: 'utf8' }); } catch (e) { links = ''; }
    for (const m of links.matchAll(/^\d+: ([^:@\s]+)/gm)) {
      if (m[1].startsWith(info.prefix)) { try { execFileSync('ip', ['link', 'del', m[1]], { stdio: 'ignore' }); } catch (e) { /* gone with its peer */ } }
    }
    for (const p of (info.createdPaths || []).slice().reverse()) { try { fs.rmdirSync(p); } catch (e) { try { fs.unlinkSync(p); } catch (e2) { /* not ours anymore */ } } }
    if (info.workDir && info.workDir.includes(`/${info.prefix}/`)) fs.rmSync(info.workDir, { recursive: true, force: true });
  }

  static killNetnsSync(ns) {
    for (let i = 0; i < 20; i++) {
      let pids = [];
      try { pids = execFileSync('ip', ['netns', 'pids', ns], { encoding: 'utf8' }).split('\n').filter(Boolean).map(Number); } catch (e) { return; }
      if (!pids.length) return;
      for (const pid of pids) { try { process.kill(pid, 'SIGKILL'); } catch (e) { /* gone */ } }
      execFileSync('sleep', ['0.05']);
    }
  }

  saveState() {
    const file = this.stateFile;
    try {
      const info = JSON.parse(fs.readFileSync(file, 'utf8'));
      info.createdPaths = this.createdPaths;
      fs.writeFileSync(file, JSON.stringify(info));
    } catch (e) { /* state dir gone: shutting down */ }
  }

  start() {
    const used = new Set();
    for (const line of execFileSync('ip', ['-4', 'route', 'show'], { encoding: 'utf8' }).split('\n')) {
      const m = /^100\.(6[4-9]|[7-9][0-9]|1[01][0-9]|12[0-7])\.(\d+)\./.exec(line);
      if (m) used.add(`${m[1]}.${m[2]}`);
    }
    let net;
    for (let i = 0; i < 200 && !net; i++) {
      const a = 64 + Math.floor(Math.random() * 64), b = Math.floor(Math.random() * 256);
      if (!used.has(`${a}.${b}`)) net = `100.${a}.${b}`;
    }
    this.net = net;
    this.dnsIp = `${net}.1`;
    execFileSync('ip', ['link', 'add', this.bridge, 'type', 'bridge']);
    execFileSync('ip', ['addr', 'add', `${this.dnsIp}/24`, 'dev', this.bridge]);
    execFileSync('ip', ['link', 'set', this.bridge, 'up']);
    this.dnsReady = startDns(this.store, this.dnsIp).then((s) => { this.dns = s; }, (e) => console.error('dns:', e.message));
    this.store.listeners.push((resource, type, obj) => { if (resource === 'pods') setImmediate(() => this.sync(type, obj)); });
    this.hostResolvConf = fs.readFileSync('/etc/resolv.conf', 'utf8');
  }

  shutdown() {
    if (this.dns) { try { this.dns.close(); } catch (e) { /* closed */ } }
    this.spawner.killAll();
    Kubelet.teardownRun({ prefix: this.prefix, workDir: this.workDir, createdPaths: this.createdPaths });
  }

  killNode(name) {
    this.deadNodes.add(name);
    for (const st of this.pods.values()) {
      if (st.node !== name) continue;
      st.dead = true;
      for (const proc of st.procs) proc.kill('SIGKILL');
    }
  }

  sync(type, obj) {
    const uid = obj.metadata.uid;
    let st = this.pods.get(uid);
    if (type === 'DELETED') {
      if (st && st.tornDown) { this.pods.delete(uid); fs.rmSync(st.dir, { recursive: true, force: true }); } else if (st) this.forceStop(st);
      return;
    }
    const cur = this.store.get('pods', obj.metadata.namespace, obj.metadata.name);
    if (!cur || cur.metadata.uid !== uid || !cur.spec.nodeName || this.deadNodes.has(cur.spec.nodeName) || !this.store.get('nodes', '', cur.spec.nodeName)) return;
    if (!st) {
      if (cur.metadata.deletionTimestamp) return; // bound but never started: the store deletes it at once
      st = { uid, ns: cur.metadata.namespace, name: cur.metadata.name, node: cur.spec.nodeName, procs: new Set(), runs: new Map(), terminating: false, dead: false, index: this.nextIndex++ };
      this.pods.set(uid, st);
      this.startPod(st, cur).catch((e) => this.failPod(st, e));
      return;
    }
    if (cur.metadata.deletionTimestamp && !st.terminating) this.terminate(st, cur);
  }

  update(st, fn) {
    if (st.dead) return undefined;
    const cur = this.store.get('pods', st.ns, st.name);
    if (!cur || cur.metadata.uid !== st.uid) return undefined;
    return this.store.mutate('pods', st.ns, st.name, fn);
  }

  event(st, type, reason, message) {
    const pod = this.store.get('pods', st.ns, st.name);
    if (pod) recordEvent(this.store, pod, type, reason, message, 'kubelet');
  }

  failPod(st, e) {
    console.error(`pod ${st.ns}/${st.name}: ${e.stack || e.message}`);
    this.event(st, 'Warning', 'FailedCreatePodSandBox', `Failed to create pod sandbox: ${e.message}`);
    this.update(st, (p) => { p.status.phase = 'Failed'; p.status.reason = 'FailedCreatePodSandBox'; p.status.message = e.message; });
  }

  async startPod(st, pod) {
    if (this.freeIps.length) st.ip = this.freeIps.shift();
    else if (this.nextIp > 254) throw new Error(`pod IP range ${this.net}.0/24 exhausted (253 pods with a sandbox at once)`);
    else st.ip = `${this.net}.${this.nextIp++}`;
    st.netns = `${this.prefix}-${st.index}`;
    st.dir = path.join(this.workDir, 'pods', st.uid);
    fs.mkdirSync(path.join(st.dir, 'volumes'), { recursive: true });
    const host = `${this.prefix}h${st.index}`, peer = `${this.prefix}p${st.index}`;
    const ip = tool('ip');
    await this.spawner.run('/bin/sh', ['-ec', [
      `${ip} netns add ${st.netns}`,
      `${ip} link add ${host} type veth peer name ${peer}`, `${ip} link set ${peer} netns ${st.netns}`,
      `${ip} link set ${host} master ${this.bridge}`, `${ip} link set ${host} up`,
      `${ip} -n ${st.netns} link set ${peer} name eth0`, `${ip} -n ${st.netns} addr add ${st.ip}/24 dev eth0`,
      `${ip} -n ${st.netns} link set eth0 up`, `${ip} -n ${st.netns} link set lo up`,
      `${ip} -n ${st.netns} route add default via ${this.dnsIp}`].join('\n')]);
    st.sandbox = true;
    if (st.terminating || st.dead) return this.teardownPod(st); // deleted while its sandbox was made
    await this.dnsReady;
    this.writeKubeletFiles(st, pod);
    // A Secret or ConfigMap a volume needs may be created after the pod: as
    // a real kubelet, retry (with a FailedMount event) until it exists or the
    // pod goes, the pod Pending meanwhile.
    for (let lastMessage = '';;) {
      try { this.prepareVolumes(st, pod); break; } catch (e) {
        if (!e.retry) throw e;
        if (e.message !== lastMessage) this.event(st, 'Warning', 'FailedMount', e.message);
        lastMessage = e.message;
        await new Promise((r) => { st.wake = r; setTimeout(r, 1000); });
        if (st.terminating || st.dead) return this.maybeFinish(st);
      }
    }
    const initNames = (pod.spec.initContainers || []).map((c) => c.name);
    this.update(st, (p) => {
      p.status.phase = 'Pending';
      p.status.hostIP = '127.0.0.1'; p.status.hostIPs = [{ ip: '127.0.0.1' }];
      p.status.podIP = st.ip; p.status.podIPs = [{ ip: st.ip }];
      p.status.startTime = now();
      if (initNames.length) setCondition(p, { type: 'Initialized', status: 'False', reason: 'ContainersNotInitialized', message: `containers with incomplete status: [${initNames.join(' ')}]` });
      else setCondition(p, { type: 'Initialized', status: 'True' });
      setCondition(p, { type: 'Ready', status: 'False', reason: 'ContainersNotReady', message: `containers with unready status: [${p.spec.containers.map((c) => c.name).join(' ')}]` });
      setCondition(p, { type: 'ContainersReady', status: 'False', reason: 'ContainersNotReady', message: `containers with unready status: [${p.spec.containers.map((c) => c.name).join(' ')}]` });
      if (initNames.length) p.status.initContainerStatuses = p.spec.initContainers.map((c) => ({ name: c.name, image: c.image, imageID: '', lastState: {}, ready: false, restartCount: 0, started: false, state: { waiting: { reason: 'PodInitializing' } } }));
      p.status.containerStatuses = p.spec.containers.map((c) => ({ name: c.name, image: c.image, imageID: '', lastState: {}, ready: false, restartCount: 0, started: false, state: { waiting: { reason: initNames.length ? 'PodInitializing' : 'ContainerCreating' } } }));
    });
    // Init containers, one after the other, each until it succeeds.
    for (const c of pod.spec.initContainers || []) {
      for (;;) {
        if (st.terminating || st.dead) return this.maybeFinish(st);
        const code = await this.runContainer(st, pod, c, true);
        if (code === 0) break;
        if (pod.spec.restartPolicy === 'Never' || st.terminating) {
          this.update(st, (p) => {
            p.status.phase = 'Failed';
            setCondition(p, { type: 'Initialized', status: 'False', reason: 'ContainersNotInitialized', message: `containers with incomplete status: [${c.name}]` });
          });
          return this.teardownPod(st);
        }
        await this.backoff(st, c, true);
      }
    }
    if (initNames.length) this.update(st, (p) => setCondition(p, { type: 'Initialized', status: 'True', reason: undefined, message: undefined }));
    await Promise.all(pod.spec.containers.map((c) => this.containerLoop(st, pod, c)));
    this.maybeFinish(st);
  }

  async containerLoop(st, pod, c) {
    for (;;) {
      if (st.terminating || st.dead) return;
      const code = await this.runContainer(st, pod, c, false);
      const policy = pod.spec.restartPolicy;
      const restart = !st.terminating && !st.dead && (policy === 'Always' || (policy === 'OnFailure' && code !== 0));
      if (!restart) { this.updatePhase(st); return; }
      await this.backoff(st, c, false);
    }
  }

  async backoff(st, c, init) {
    this.update(st, (p) => {
      const cs = (init ? p.status.initContainerStatuses : p.status.containerStatuses).find((x) => x.name === c.name);
      cs.lastState = { terminated: cs.state.terminated };
      cs.state = { waiting: { reason: 'CrashLoopBackOff', message: `back-off ${this.restartBackoffMs / 1000}s restarting failed container=${c.name} pod=${p.metadata.name}_${p.metadata.namespace}(${p.metadata.uid})` } };
      cs.restartCount++;
    });
    await new Promise((r) => { st.wake = r; setTimeout(r, this.restartBackoffMs); });
  }

  env(st, pod, c) {
    const env = { PATH: '/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin', HOSTNAME: pod.spec.hostname || pod.metadata.name, HOME: '/root' };
    const expand = (s) => String(s).replace(/\$\$|\$\(([A-Za-z_][A-Za-z0-9_.-]*)\)/g, (m, name) => (m === '$$' ? '$' : (name in env ? env[name] : m)));
    const field = (fp) => {
      const cur = this.store.get('pods', st.ns, st.name) || pod;
      const lm = /^metadata\.(labels|annotations)\['(.+)'\]$/.exec(fp);
      if (lm) return (cur.metadata[lm[1]] || {})[lm[2]] || '';
      return { 'metadata.name': cur.metadata.name, 'metadata.namespace': cur.metadata.namespace, 'metadata.uid': cur.metadata.uid,
        'spec.nodeName': cur.spec.nodeName, 'spec.serviceAccountName': cur.spec.serviceAccountName || 'default',
        'status.podIP': st.ip, 'status.podIPs': st.ip, 'status.hostIP': '127.0.0.1' }[fp] ?? '';
    };
    const keyRef = (res, ref) => {
      const o = this.store.get(res, st.ns, ref.name);
      if (!o) { if (ref.optional) return undefined; throw new Error(`${res === 'secrets' ? 'secret' : 'configmap'} "${ref.name}" not found`); }
      if (res === 'secrets') { const v = (o.data || {})[ref.key]; return v === undefined ? undefined : Buffer.from(v, 'base64').toString(); }
      return (o.data || {})[ref.key];
    };
    for (const src of c.envFrom || []) {
      const ref = src.configMapRef || src.secretRef;
      const o = this.store.get(src.configMapRef ? 'configmaps' : 'secrets', st.ns, ref.name);
      if (!o) { if (ref.optional) continue; throw new Error(`${src.configMapRef ? 'configmap' : 'secret'} "${ref.name}" not found`); }
      for (const [k, v] of Object.entries(o.data || {})) env[(src.prefix || '') + k] = src.secretRef ? Buffer.from(v, 'base64').toString() : v;
    }
    for (const e of c.env || []) {
      let v;
      if (e.valueFrom) {
        if (e.valueFrom.fieldRef) v = field(e.valueFrom.fieldRef.fieldPath);
        else if (e.valueFrom.secretKeyRef) v = keyRef('secrets', e.valueFrom.secretKeyRef);
        else if (e.valueFrom.configMapKeyRef) v = keyRef('configmaps', e.valueFrom.configMapKeyRef);
        else if (e.valueFrom.resourceFieldRef) v = String(((c.resources || {}).limits || {})[e.valueFrom.resourceFieldRef.resource.replace(/^limits\./, '')] ?? '');
      } else v = expand(e.value ?? '');
      if (v !== undefined) env[e.name] = v;
    }
    return { env, expand };
  }

  writeKubeletFiles(st, pod) {
    const hn = pod.spec.hostname || pod.metadata.name.slice(0, 63);
    st.hostname = hn;
    let hosts = '# Kubernetes-managed hosts file.\n127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost ip6-loopback\nfe00::0\tip6-localnet\nfe00::0\tip6-mcastprefix\nfe00::1\tip6-allnodes\nfe00::2\tip6-allrouters\n';
    if (pod.spec.subdomain) hosts += `${st.ip}\t${hn}.${pod.spec.subdomain}.${pod.metadata.namespace}.svc.cluster.local\t${hn}\n`;
    else hosts += `${st.ip}\t${hn}\n`;
    for (const ha of pod.spec.hostAliases || []) hosts += `\n# Entries added by HostAliases.\n${ha.ip}\t${(ha.hostnames || []).join('\t')}\n`;
    fs.writeFileSync(path.join(st.dir, 'etc-hosts'), hosts);
    fs.writeFileSync(path.join(st.dir, 'etc-hostname'), hn + '\n');
    let resolv;
    const dc = pod.spec.dnsConfig || {};
    if (pod.spec.dnsPolicy === 'Default') resolv = this.hostResolvConf;
    else {
      const ns = pod.spec.dnsPolicy === 'None' ? [] : [this.dnsIp];
      const search = pod.spec.dnsPolicy === 'None' ? [] : [`${pod.metadata.namespace}.svc.cluster.local`, 'svc.cluster.local', 'cluster.local'];
      const options = pod.spec.dnsPolicy === 'None' ? [] : ['ndots:5'];
      ns.push(...(dc.nameservers || [])); search.push(...(dc.searches || []));
      for (const o of dc.options || []) options.push(o.value !== undefined ? `${o.name}:${o.value}` : o.name);
      resolv = `search ${search.join(' ')}\n${ns.map((n) => `nameserver ${n}`).join('\n')}\n${options.length ? `options ${options.join(' ')}\n` : ''}`;
    }
    fs.writeFileSync(path.join(st.dir, 'etc-resolv.conf'), resolv);
  }

  prepareVolumes(st, pod) {
    st.volumes = {};
    for (const v of pod.spec.volumes || []) {
      if (v.persistentVolumeClaim) { st.volumes[v.name] = this.claimDir(st.ns, v.persistentVolumeClaim.claimName); continue; }
      const dir = path.join(st.dir, 'volumes', v.name);
      fs.mkdirSync(dir, { recursive: true, mode: 0o777 });
      fs.chmodSync(dir, 0o777);
      const put = (res, name, items, optional) => {
        const o = this.store.get(res, st.ns, name);
        if (!o) {
          if (optional) return;
          const e = new Error(`MountVolume.SetUp failed for volume "${v.name}" : ${res === 'secrets' ? 'secret' : 'configmap'} "${name}" not found`);
          e.retry = true;
          throw e;
        }
        const data = o.data || {};
        const keys = items ? items.map((i) => [i.key, i.path]) : Object.keys(data).map((k) => [k, k]);
        for (const [k, p] of keys) {
          if (data[k] === undefined) continue;
          const f = path.join(dir, p);
          fs.mkdirSync(path.dirname(f), { recursive: true });
          fs.writeFileSync(f, res === 'secrets' ? Buffer.from(data[k], 'base64') : data[k]);
        }
      };
      if (v.configMap) put('configmaps', v.configMap.name, v.configMap.items, v.configMap.optional);
      else if (v.secret) put('secrets', v.secret.secretName, v.secret.items, v.secret.optional);
      else if (v.projected) for (const s of v.projected.sources || []) {
        if (s.configMap) put('configmaps', s.configMap.name, s.configMap.items, s.configMap.optional);
        if (s.secret) put('secrets', s.secret.name, s.secret.items, s.secret.optional);
      }
      else if (!v.emptyDir) throw new Error(`volume "${v.name}": only emptyDir, configMap, secret, projected and persistentVolumeClaim volumes are supported by this test kubelet`);
      st.volumes[v.name] = dir;
    }
  }

  // A claim is one directory of the run, the same for every pod that mounts
  // it on any node: a ReadWriteMany volume (NFS-like).  It outlives its pods
  // (as a PV's data does) and goes with the run's directory.
  claimDir(ns, claim) {
    const pvc = this.store.get('persistentvolumeclaims', ns, claim);
    if (!pvc) throw new Error(`persistentvolumeclaim "${claim}" not found`);
    const dir = path.join(this.workDir, 'claims', ns, `${claim}-${pvc.metadata.uid}`);
    fs.mkdirSync(dir, { recursive: true, mode: 0o777 });
    fs.chmodSync(dir, 0o777);
    return dir;
  }

  // --image-files IMAGE=DIR: the entries of DIR stand in for the image's
  // files, bind-mounted read-only at /<entry> (the image is otherwise ignored).
  imageMounts(c) {
    const img = String(c.image || '');
    for (const [name, dir] of Object.entries(this.imageFiles)) {
      if (img === name || img.startsWith(name + ':') || img.startsWith(name + '@')) {
        return fs.readdirSync(dir).sort().map((e) => [path.join(dir, e), '/' + e, 'ro']);
      }
    }
    return [];
  }

  mounts(st, c) {
    const list = this.imageMounts(c);
    for (const vm of (c.volumeMounts || []).slice().sort((a, b) => a.mountPath.split('/').length - b.mountPath.split('/').length)) {
      let src = st.volumes[vm.name];
      if (vm.subPath) { src = path.join(src, vm.subPath); if (!fs.existsSync(src)) fs.mkdirSync(src, { recursive: true }); }
      list.push([src, vm.mountPath, vm.readOnly ? 'ro' : 'rw']);
    }
    const has = (p) => list.some((m) => m[1] === p);
    for (const [f, p] of [['etc-hosts', '/etc/hosts'], ['etc-hostname', '/etc/hostname'], ['etc-resolv.conf', '/etc/resolv.conf']]) {
      if (!has(p)) list.push([path.join(st.dir, f), p, 'rw']);
    }
    // Mount points missing on this host are created (and removed at exit)
    // unless an earlier mount in the list provides them.
    for (const [src, dst] of list) {
      if (list.some((m) => m[1] !== dst && dst.startsWith(m[1].replace(/\/$/, '') + '/'))) continue;
      if (fs.existsSync(dst)) continue;
      let top = dst;
      while (!fs.existsSync(path.dirname(top))) top = path.dirname(top);
      if (fs.statSync(src).isDirectory()) fs.mkdirSync(dst, { recursive: true });
      else { fs.mkdirSync(path.dirname(dst), { recursive: true }); fs.writeFileSync(dst, ''); }
      this.createdPaths.push(top);
      this.saveState();
    }
    return list;
  }

  statusOf(p, c, init) { return (init ? p.status.initContainerStatuses : p.status.containerStatuses).find((x) => x.name === c.name); }

  // Runs one container once; resolves with its exit code.
  runContainer(st, pod, c, init) {
    return new Promise((resolve) => {
      const key = c.name;
      const runs = st.runs.get(key) || [];
      st.runs.set(key, runs);
      const r = new ContainerRun();
      runs.push(r);
      const fail = (reason, message) => {
        r.finish();
        this.event(st, 'Warning', 'Failed', `Error: ${message}`);
        this.update(st, (p) => { const cs = this.statusOf(p, c, init); cs.state = { terminated: { exitCode: 128, reason, message, startedAt: now(), finishedAt: now(), containerID: '' } }; });
        resolve(128);
      };
      let argv, env, expand;
      try { ({ env, expand } = this.env(st, pod, c)); } catch (e) { return fail('CreateContainerConfigError', e.message); }
      argv = [...(c.command || []), ...(c.args || [])].map(expand);
      r.env = env;
      r.workingDir = c.workingDir || '';
      if (!argv.length) return fail('CreateContainerError', 'no command specified (this test kubelet ignores the image and its entrypoint)');
      let mounts;
      try { mounts = this.mounts(st, c); } catch (e) { return fail('CreateContainerError', e.message); }
      const wrapArgs = [st.hostname, ...mounts.flat(), '--', c.workingDir || '', ...argv];
      const proc = this.spawner.spawn(tool('ip'), ['netns', 'exec', st.netns, tool('unshare'), '--uts', '--mount', '--propagation', 'private', '--', '/bin/sh', '-c', WRAPPER, 'jg-container', ...wrapArgs],
        { env, detached: true });
      st.procs.add(proc);
      r.proc = proc;
      const startedAt = now();
      const containerID = `jgsched-test://${st.uid}-${c.name}-${runs.length}`;
      const partial = { 1: Buffer.alloc(0), 2: Buffer.alloc(0) };
      proc.on('out', (fd, d) => {
        let buf = Buffer.concat([partial[fd], d]);
        let i;
        while ((i = buf.indexOf(10)) >= 0) { r.append(buf.subarray(0, i + 1)); buf = buf.subarray(i + 1); }
        partial[fd] = buf;
      });
      this.event(st, 'Normal', 'Started', `Started container ${c.name}`);
      this.update(st, (p) => {
        const cs = this.statusOf(p, c, init);
        cs.state = { running: { startedAt } }; cs.started = true; cs.containerID = containerID;
        if (!init) cs.ready = true;
        if (!init) this.readiness(p);
        if (!init && p.status.phase === 'Pending') p.status.phase = 'Running';
      });
      proc.on('done', (code, signal, error) => {
        st.procs.delete(proc);
        if (error) { fail('StartError', error); return; }
        for (const fd of [1, 2]) if (partial[fd].length) r.append(partial[fd]);
        const exitCode = code ?? 128 + (SIGNUM[signal] || 0);
        r.finish();
        this.update(st, (p) => {
          const cs = this.statusOf(p, c, init);
          cs.state = { terminated: { exitCode, reason: exitCode === 0 ? 'Completed' : 'Error', startedAt, finishedAt: now(), containerID } };
          if (signal) cs.state.terminated.signal = SIGNUM[signal];
          cs.ready = false; cs.started = false;
          this.readiness(p);
        });
        resolve(exitCode);
      });
    });
  }

  readiness(p) {
    const cs = p.status.containerStatuses || [];
    const unready = cs.filter((x) => !x.ready).map((x) => x.name);
    const ok = unready.length === 0;
    const reason = ['Succeeded', 'Failed'].includes(p.status.phase) ? 'PodCompleted' : 'ContainersNotReady';
    for (const type of ['ContainersReady', 'Ready']) {
      setCondition(p, ok ? { type, status: 'True', reason: undefined, message: undefined } : { type, status: 'False', reason, message: reason === 'PodCompleted' ? undefined : `containers with unready status: [${unready.join(' ')}]` });
    }
    for (const c of p.status.conditions) { if (c.reason === undefined) delete c.reason; if (c.message === undefined) delete c.message; }
  }

  updatePhase(st) {
    this.update(st, (p) => {
      const cs = p.status.containerStatuses || [];
      if (!cs.every((x) => x.state.terminated)) return;
      const policy = p.spec.restartPolicy;
      const failed = cs.some((x) => x.state.terminated.exitCode !== 0);
      if (policy === 'Always' && !st.terminating) return;
      if (policy === 'OnFailure' && failed && !st.terminating) return;
      p.status.phase = failed ? 'Failed' : 'Succeeded';
      this.readiness(p);
    });
  }

  maybeFinish(st) {
    const cur = this.store.get('pods', st.ns, st.name);
    const terminal = cur && ['Succeeded', 'Failed'].includes(cur.status.phase);
    if (st.procs.size === 0 && (terminal || st.terminating || st.dead)) this.teardownPod(st);
  }

  terminate(st, pod) {
    st.terminating = true;
    if (st.wake) st.wake();
    const grace = pod.metadata.deletionGracePeriodSeconds ?? 30;
    this.event(st, 'Normal', 'Killing', `Stopping container ${pod.spec.containers.map((c) => c.name).join(', ')}`);
    for (const proc of st.procs) proc.kill('SIGTERM');
    const killTimer = setTimeout(() => { for (const proc of st.procs) proc.kill('SIGKILL'); }, grace * 1000);
    const waitGone = () => {
      if (st.procs.size) { setTimeout(waitGone, 50); return; }
      clearTimeout(killTimer);
      this.updatePhase(st);
      this.teardownPod(st);
      const cur = this.store.get('pods', st.ns, st.name);
      if (cur && cur.metadata.uid === st.uid && !(cur.metadata.finalizers || []).length) this.store.finishDelete('pods', cur);
    };
    waitGone();
  }

  // A pod deleted at once (gracePeriodSeconds=0, or its node gone): as a
  // real kubelet tears down the sandbox, every process of the pod is killed
  // now, also those that left the containers' process groups.
  forceStop(st) {
    st.terminating = true; st.dead = true;
    if (st.wake) st.wake();
    for (const proc of st.procs) proc.kill('SIGKILL');
    if (st.sandbox && st.netns) this.spawner.run(tool('ip'), ['netns', 'pids', st.netns]).then((out) => {
      for (const pid of out.split('\n').filter(Boolean)) { try { process.kill(Number(pid), 'SIGKILL'); } catch (e) { /* gone */ } }
    }).catch(() => {});
    const waitGone = () => { if (st.procs.size) { setTimeout(waitGone, 50); return; } this.teardownPod(st); };
    waitGone();
  }

  teardownPod(st) {
    if (!st.sandbox || st.tornDown) return;
    st.tornDown = true;
    this.spawner.run(tool('ip'), ['netns', 'pids', st.netns]).then((out) => {
      for (const pid of out.split('\n').filter(Boolean)) { try { process.kill(Number(pid), 'SIGKILL'); } catch (e) { /* gone */ } }
    }).catch(() => {}).then(() => this.spawner.run(tool('ip'), ['netns', 'del', st.netns])).then(() => this.freeIps.push(st.ip), (e) => console.error(e.message)).then(() => {
      fs.rmSync(path.join(st.dir, 'volumes'), { recursive: true, force: true });
      if (!this.store.get('pods', st.ns, st.name)) { this.pods.delete(st.uid); fs.rmSync(st.dir, { recursive: true, force: true }); }
    });
  }

  // For GET /admin/pods/NS/NAME/containers/C/pid: the process of a running
  // container (what a test enters with nsenter, in place of pods/exec), with
  // the environment and working directory the container was started with.
  // 409 while the container is not running yet (or any more), or while its
  // process is still setting up the namespaces (before the container's own
  // command was exec'ed: entering it then would see neither its hostname nor
  // its mounts).
  containerProcess(ns, name, cname) {
    const pod = this.store.get('pods', ns, name);
    if (!pod) throw new u.ApiError(404, 'NotFound', `pods "${name}" not found`);
    const all = [...(pod.spec.initContainers || []), ...pod.spec.containers].map((c) => c.name);
    if (!all.includes(cname)) throw u.badRequest(`container ${cname} is not valid for pod ${name}`);
    const st = this.pods.get(pod.metadata.uid);
    const runs = (st && st.runs.get(cname)) || [];
    const r = runs[runs.length - 1];
    const notRunning = (why) => new u.ApiError(409, 'Conflict', `container ${cname} of pod ${ns}/${name} is not running: ${why}`);
    if (!r || !r.proc) throw notRunning('not started');
    if (r.done || r.proc.done) throw notRunning('exited');
    if (!r.proc.pid) throw notRunning('starting');
    let argv;
    try { argv = fs.readFileSync(`/proc/${r.proc.pid}/cmdline`, 'utf8').split('\0'); } catch (e) { throw notRunning('exited'); }
    const base = path.basename(argv[0] || '');
    if (base === 'ip' || base === 'unshare' || argv[2] === WRAPPER) throw notRunning('starting');
    return { pid: r.proc.pid, env: r.env, workingDir: r.workingDir };
  }

  // GET .../pods/NAME/log
  serveLog(req, res, pod, q) {
    const names = pod.spec.containers.map((c) => c.name);
    const all = [...(pod.spec.initContainers || []).map((c) => c.name), ...names];
    let cname = q.get('container');
    const bad = (msg) => { const s = u.status(400, 'BadRequest', msg); res.writeHead(400, { 'Content-Type': 'application/json' }); res.end(JSON.stringify(s)); };
    if (!cname) { if (names.length !== 1) return bad(`a container name must be specified for pod ${pod.metadata.name}, choose one of: [${names.join(' ')}]`); cname = names[0]; }
    if (!all.includes(cname)) return bad(`container ${cname} is not valid for pod ${pod.metadata.name}`);
    const st = this.pods.get(pod.metadata.uid);
    const runs = (st && st.runs.get(cname)) || [];
    const previous = /^(1|true)$/.test(q.get('previous') || '');
    const r = previous ? runs[runs.length - 2] : runs[runs.length - 1];
    if (!r) {
      if (previous) return bad(`previous terminated container "${cname}" in pod "${pod.metadata.name}" not found`);
      return bad(`container "${cname}" in pod "${pod.metadata.name}" is waiting to start: ${pod.spec.initContainers && !(pod.spec.initContainers || []).some((c) => c.name === cname) ? 'PodInitializing' : 'ContainerCreating'}`);
    }
    const timestamps = /^(1|true)$/.test(q.get('timestamps') || '');
    const follow = /^(1|true)$/.test(q.get('follow') || '') && !previous;
    let since = q.get('sinceTime') ? new Date(q.get('sinceTime')).getTime() : (q.get('sinceSeconds') ? Date.now() - Number(q.get('sinceSeconds')) * 1000 : 0);
    let limit = q.has('limitBytes') ? Number(q.get('limitBytes')) : Infinity;
    let lines = r.lines.filter((e) => !since || Date.parse(e.ts.replace(/(\.\d{3})\d+Z$/, '$1Z')) >= since);
    if (q.has('tailLines')) { const n = Number(q.get('tailLines')); lines = n > 0 ? lines.slice(-n) : []; }
    res.writeHead(200, { 'Content-Type': 'text/plain', 'Transfer-Encoding': 'chunked' });
    const emit = (e) => {
      if (limit <= 0) return false;
      let buf = timestamps ? Buffer.concat([Buffer.from(e.ts + ' '), e.data]) : e.data;
      if (buf.length > limit) buf = buf.subarray(0, limit);
      limit -= buf.length;
      res.write(buf);
      return limit > 0;
    };
    for (const e of lines) if (!emit(e)) return res.end();
    if (!follow || r.done) return res.end();
    const f = (e) => { if (e === null || !emit(e)) { r.followers.delete(f); res.end(); } };
    r.followers.add(f);
    req.on('close', () => r.followers.delete(f));
  }
}

module.exports = { Kubelet };
