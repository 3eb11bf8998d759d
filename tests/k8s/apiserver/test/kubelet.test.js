'use strict';
// The kubelet, cluster DNS and node loss: needs root (network namespaces).
const test = require('node:test');
const assert = require('node:assert');
const { execFileSync } = require('child_process');
const fs = require('fs');
const { startServer, until } = require('../testlib/helpers');

const NS = '/api/v1/namespaces/default';
const skip = process.getuid() !== 0 ? 'needs root (network namespaces)' : false;
const getPod = async (s, name) => (await s.request('GET', `${NS}/pods/${name}`)).body;
const phase = (s, name, want) => until(async () => { const p = await getPod(s, name); return p.status && p.status.phase === want && p; }, 60000, `${name} ${want}`);
const log = async (s, name, q = '') => (await s.request('GET', `${NS}/pods/${name}/log?${q}`, undefined, { raw: true })).text;

test('kubelet', { skip }, async (t) => {
  // an "image" whose only file is a tool, as the agent's install image is
  const imageDir = fs.mkdtempSync('/tmp/jk-image-');
  const tool = `jk-test-tool-${process.pid}`;
  fs.writeFileSync(`${imageDir}/${tool}`, '#!/bin/sh\necho tool ran as $(hostname)\n', { mode: 0o755 });
  const s = await startServer(['--restart-backoff-ms', '200', '--image-files', `example.com/tools=${imageDir}`]);
  const prefix = /prefix=(\S+)/.exec(s.ready)[1];
  t.after(async () => {
    await s.stop();
    // everything the run created is gone
    assert.ok(!execFileSync('ip', ['netns', 'list'], { encoding: 'utf8' }).includes(prefix), 'netns left');
    assert.ok(!execFileSync('ip', ['link'], { encoding: 'utf8' }).includes(prefix), 'links left');
    assert.ok(!fs.existsSync(`/run/jg-test-apiserver/${prefix}`), 'state left');
    assert.ok(!fs.existsSync(`/${tool}`), 'image mount point left');
    fs.rmSync(imageDir, { recursive: true, force: true });
  });

  await t.test('--image-files: an init container installs a file of its image into an emptyDir', async () => {
    await s.request('POST', `${NS}/pods`, { metadata: { name: 'agent' }, spec: { hostname: 'ag', restartPolicy: 'Never', volumes: [{ name: 'jg-agent', emptyDir: {} }],
      initContainers: [{ name: 'install', image: 'example.com/tools:1.0', command: ['cp', `/${tool}`, '/.jgtest/tool'], volumeMounts: [{ name: 'jg-agent', mountPath: '/.jgtest' }] }],
      containers: [{ name: 'main', image: 'busybox', command: ['/.jgtest/tool'], volumeMounts: [{ name: 'jg-agent', mountPath: '/.jgtest' }] }] } });
    await phase(s, 'agent', 'Succeeded');
    assert.strictEqual(await log(s, 'agent', 'container=main'), 'tool ran as ag\n');
  });

  await t.test('a secret volume created after its pod: FailedMount, Pending, then the pod runs', async () => {
    await s.request('POST', `${NS}/pods`, { metadata: { name: 'early' }, spec: { restartPolicy: 'Never', volumes: [{ name: 'tok', secret: { secretName: 'late' } }],
      containers: [{ name: 'main', image: 'x', command: ['cat', '/var/tok/token'], volumeMounts: [{ name: 'tok', mountPath: '/var/tok' }] }] } });
    await until(async () => (await s.request('GET', `${NS}/events?fieldSelector=involvedObject.name%3Dearly`)).body.items.some((e) => e.reason === 'FailedMount'
      && e.message === 'MountVolume.SetUp failed for volume "tok" : secret "late" not found'), 30000, 'FailedMount event');
    assert.strictEqual((await getPod(s, 'early')).status.phase, 'Pending');
    await s.request('POST', `${NS}/secrets`, { metadata: { name: 'late' }, stringData: { token: 'sesame' } });
    await phase(s, 'early', 'Succeeded');
    assert.strictEqual(await log(s, 'early'), 'sesame');
  });

  await t.test('a pod deleted at once takes every process with it, also those in a session of their own', async () => {
    const mark = String(3000 + (process.pid % 1000));
    const alive = () => fs.readdirSync('/proc').filter((d) => /^\d+$/.test(d)).some((d) => {
      try { return fs.readFileSync(`/proc/${d}/cmdline`, 'utf8') === `sleep\0${mark}\0`; } catch (e) { return false; }
    });
    await s.request('POST', `${NS}/pods`, { metadata: { name: 'escaper' }, spec: { restartPolicy: 'Never',
      containers: [{ name: 'main', image: 'x', command: ['sh', '-c', `setsid sleep ${mark} & echo up; exec sleep 600`] }] } });
    await until(async () => (await log(s, 'escaper')) === 'up\n' && alive(), 30000, 'escaper up');
    await s.request('DELETE', `${NS}/pods/escaper?gracePeriodSeconds=0`);
    await until(async () => !alive(), 10000, 'the setsid child killed with its pod');
  });

  await t.test('persistentVolumeClaim: every pod of a claim sees one directory (ReadWriteMany)', async () => {
    const c = await s.request('POST', `${NS}/persistentvolumeclaims`, { metadata: { name: 'shared-data' }, spec: { accessModes: ['ReadWriteMany'], resources: { requests: { storage: '1Gi' } } } });
    assert.strictEqual(c.code, 201, JSON.stringify(c.body));
    const claimPod = (name, cmd) => ({ metadata: { name }, spec: { restartPolicy: 'Never', volumes: [{ name: 'jg-vol-0', persistentVolumeClaim: { claimName: 'shared-data' } }],
      containers: [{ name: 'main', image: 'x', command: ['sh', '-c', cmd], volumeMounts: [{ name: 'jg-vol-0', mountPath: '/mnt/shared' }] }] } });
    assert.strictEqual((await s.request('POST', `${NS}/pods`, claimPod('pvc-writer', 'echo written-by-$(hostname) > /mnt/shared/f'))).code, 201);
    await phase(s, 'pvc-writer', 'Succeeded');
    assert.strictEqual((await s.request('POST', `${NS}/pods`, claimPod('pvc-reader', 'cat /mnt/shared/f'))).code, 201);
    await phase(s, 'pvc-reader', 'Succeeded');
    assert.strictEqual(await log(s, 'pvc-reader'), 'written-by-pvc-writer\n');
    for (const p of ['pvc-writer', 'pvc-reader']) await s.request('DELETE', `${NS}/pods/${p}?gracePeriodSeconds=0`);
    await s.request('DELETE', `${NS}/persistentvolumeclaims/shared-data`);
  });

  await t.test('a group of pods: hostname, /etc/hosts, DNS, emptyDir, init containers, env, logs', async () => {
    await s.request('POST', `${NS}/services`, { metadata: { name: 'grp' }, spec: { clusterIP: 'None', selector: { g: 'one' }, publishNotReadyAddresses: true, ports: [{ name: 'agent', port: 7411 }] } });
    for (const h of ['w-0', 'w-1']) {
      const r = await s.request('POST', `${NS}/pods`, {
        metadata: { name: `grp-${h}`, labels: { g: 'one' } },
        spec: {
          hostname: h, subdomain: 'grp', restartPolicy: 'Never', volumes: [{ name: 'tmp', emptyDir: {} }],
          initContainers: [{ name: 'init', image: 'x', command: ['sh', '-c', 'echo from-init > /tmp/mark'], volumeMounts: [{ name: 'tmp', mountPath: '/tmp' }] }],
          containers: [{ name: 'main', image: 'x', workingDir: '/tmp', env: [{ name: 'A', value: 'b' }, { name: 'C', value: '$(A)-c' }, { name: 'MYIP', valueFrom: { fieldRef: { fieldPath: 'status.podIP' } } }],
            volumeMounts: [{ name: 'tmp', mountPath: '/tmp' }],
            command: ['sh', '-c', 'echo host=$(hostname) pwd=$(pwd) mark=$(cat mark) C=$C ip=$MYIP; grep -c "$(hostname).grp.default.svc.cluster.local" /etc/hosts; for i in $(seq 100); do getent hosts w-0.grp.default.svc.cluster.local && getent hosts w-1.grp >/dev/null && break; sleep 0.1; done; getent hosts w-1.grp | cut -d" " -f1; getent hosts nothere.grp || echo nxdomain; echo done; exec sleep 1000']}],
        },
      });
      assert.strictEqual(r.code, 201, JSON.stringify(r.body));
    }
    // each pod resolves the other before it says done (and then stays up)
    await until(async () => (await log(s, 'grp-w-0', 'container=main')).endsWith('done\n') && (await log(s, 'grp-w-1', 'container=main')).endsWith('done\n'), 60000, 'both resolved');
    const p0 = await getPod(s, 'grp-w-0');
    const p1 = await getPod(s, 'grp-w-1');
    const out = await log(s, 'grp-w-0', 'container=main');
    assert.match(out, new RegExp(`host=w-0 pwd=/tmp mark=from-init C=b-c ip=${p0.status.podIP.replace(/\./g, '\\.')}\n1\n`));
    assert.match(out, new RegExp(`\n${p1.status.podIP.replace(/\./g, '\\.')}\nnxdomain\ndone\n$`));
    assert.strictEqual(p0.status.phase, 'Running');
    // what the kubelet wrote passes the validation a client's write gets
    const back = await s.request('PUT', `${NS}/pods/grp-w-0/status`, p0);
    assert.strictEqual(back.code, 200, JSON.stringify(back.body));
    assert.ok(p0.status.containerStatuses[0].state.running.startedAt);
    assert.strictEqual(p0.status.initContainerStatuses[0].state.terminated.exitCode, 0);
    assert.strictEqual(p0.status.initContainerStatuses[0].state.terminated.reason, 'Completed');
    for (const type of ['PodScheduled', 'Initialized', 'ContainersReady', 'Ready']) assert.strictEqual(p0.status.conditions.find((c) => c.type === type).status, 'True', type);
    assert.notStrictEqual(p0.status.podIP, p1.status.podIP);
    assert.deepStrictEqual(p0.status.podIPs, [{ ip: p0.status.podIP }]);
    // log options
    const ts = await log(s, 'grp-w-0', 'container=main&timestamps=true&tailLines=1');
    assert.match(ts, /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{9}Z done\n$/);
    assert.strictEqual(await log(s, 'grp-w-0', 'container=main&limitBytes=5'), 'host=');
    assert.strictEqual(await log(s, 'grp-w-0', 'container=main&sinceTime=2999-01-01T00:00:00Z'), '');
    const nc = await s.request('GET', `${NS}/pods/grp-w-0/log?container=nope`);
    assert.strictEqual(nc.code, 400);
    // the container's process, for tests that need what `kubectl exec` gives (admin only)
    const cp = await s.request('GET', '/admin/pods/default/grp-w-0/containers/main/pid');
    assert.strictEqual(cp.code, 200, JSON.stringify(cp.body));
    assert.strictEqual(cp.body.workingDir, '/tmp');
    assert.strictEqual(cp.body.env.C, 'b-c');
    assert.strictEqual(cp.body.env.MYIP, p0.status.podIP);
    const inPod = (...cmd) => execFileSync('nsenter', ['-t', String(cp.body.pid), '-n', '-u', '-m', '--', ...cmd], { encoding: 'utf8' });
    assert.strictEqual(inPod('hostname').trim(), 'w-0');
    assert.strictEqual(inPod('cat', '/tmp/mark').trim(), 'from-init');
    assert.match(inPod('ip', '-4', '-o', 'addr', 'show', 'eth0'), new RegExp(`inet ${p0.status.podIP.replace(/\./g, '\\.')}/`));
    assert.strictEqual((await s.request('GET', '/admin/pods/default/grp-w-0/containers/init/pid')).code, 409, 'an init container that has ended');
    assert.strictEqual((await s.request('GET', '/admin/pods/default/grp-w-0/containers/nope/pid')).code, 400);
    assert.strictEqual((await s.request('GET', '/admin/pods/default/nope/containers/main/pid')).code, 404);
    for (const n of ['grp-w-0', 'grp-w-1']) await s.request('DELETE', `${NS}/pods/${n}?gracePeriodSeconds=0`);
  });

  await t.test('restartPolicy OnFailure: restarts, previous log, exit code and reason', async () => {
    await s.request('POST', `${NS}/pods`, { metadata: { name: 'flaky' }, spec: { restartPolicy: 'OnFailure', volumes: [{ name: 't', emptyDir: {} }],
      containers: [{ name: 'main', image: 'x', volumeMounts: [{ name: 't', mountPath: '/tmp' }], command: ['sh', '-c', 'n=$(cat /tmp/n 2>/dev/null || echo 0); n=$((n+1)); echo $n > /tmp/n; echo attempt $n; [ $n -ge 3 ] || exit 7'] }] } });
    const p = await phase(s, 'flaky', 'Succeeded');
    const cs = p.status.containerStatuses[0];
    assert.strictEqual(cs.restartCount, 2);
    assert.strictEqual(cs.lastState.terminated.exitCode, 7);
    assert.strictEqual(cs.lastState.terminated.reason, 'Error');
    assert.strictEqual(await log(s, 'flaky'), 'attempt 3\n');
    assert.strictEqual(await log(s, 'flaky', 'previous=true'), 'attempt 2\n');
    await s.request('POST', `${NS}/pods`, { metadata: { name: 'fails' }, spec: { restartPolicy: 'Never', containers: [{ name: 'main', image: 'x', command: ['sh', '-c', 'exit 3'] }] } });
    const f = await phase(s, 'fails', 'Failed');
    // Always restarts even a clean exit, and the pod stays Running
    await s.request('POST', `${NS}/pods`, { metadata: { name: 'looper' }, spec: { restartPolicy: 'Always', containers: [{ name: 'main', image: 'x', command: ['sh', '-c', 'echo once'] }] } });
    const lp = await until(async () => { const x = await getPod(s, 'looper'); return x.status.containerStatuses && x.status.containerStatuses[0].restartCount >= 2 && x; }, 30000, 'looper restarted twice');
    assert.strictEqual(lp.status.phase, 'Running');
    assert.strictEqual((lp.status.containerStatuses[0].lastState.terminated || {}).reason, 'Completed');
    await s.request('DELETE', `${NS}/pods/looper?gracePeriodSeconds=0`);
    const back = await s.request('PUT', `${NS}/pods/flaky/status`, p);
    assert.strictEqual(back.code, 200, JSON.stringify(back.body));
    assert.strictEqual(f.status.containerStatuses[0].state.terminated.exitCode, 3);
  });

  await t.test('log follow streams until the container ends', async () => {
    await s.request('POST', `${NS}/pods`, { metadata: { name: 'talker' }, spec: { restartPolicy: 'Never', containers: [{ name: 'main', image: 'x', command: ['sh', '-c', 'for i in 1 2 3; do echo line $i; sleep 0.3; done'] }] } });
    await phase(s, 'talker', 'Running');
    const out = await log(s, 'talker', 'follow=true');
    assert.strictEqual(out, 'line 1\nline 2\nline 3\n');
  });

  await t.test('graceful deletion: SIGTERM, then SIGKILL after the grace period, then the object goes', async () => {
    await s.request('POST', `${NS}/pods`, { metadata: { name: 'polite' }, spec: { terminationGracePeriodSeconds: 30, containers: [{ name: 'main', image: 'x', command: ['sh', '-c', 'trap "echo got-term; exit 0" TERM; echo up; while :; do sleep 0.1; done'] }] } });
    await s.request('POST', `${NS}/pods`, { metadata: { name: 'stubborn' }, spec: { terminationGracePeriodSeconds: 1, containers: [{ name: 'main', image: 'x', command: ['sh', '-c', 'trap "" TERM; echo up; while :; do sleep 0.1; done'] }] } });
    await until(async () => (await log(s, 'polite')) === 'up\n' && (await log(s, 'stubborn')) === 'up\n', 60000, 'both up');
    const w = s.watch(`${NS}/pods?watch=1&fieldSelector=metadata.name%3Dstubborn&resourceVersion=${(await getPod(s, 'stubborn')).metadata.resourceVersion}`);
    const d = await s.request('DELETE', `${NS}/pods/polite`);
    assert.strictEqual(d.code, 200);
    assert.ok(d.body.metadata.deletionTimestamp);
    assert.strictEqual(d.body.metadata.deletionGracePeriodSeconds, 30);
    await until(async () => (await s.request('GET', `${NS}/pods/polite`)).code === 404, 30000, 'polite gone');
    const t0 = Date.now();
    await s.request('DELETE', `${NS}/pods/stubborn`);
    const gone = await w.next((e) => e.type === 'DELETED');
    assert.ok(Date.now() - t0 >= 900, 'SIGKILL waited for the grace period');
    assert.strictEqual(gone.object.status.containerStatuses[0].state.terminated.exitCode, 137);
    w.close();
  });

  await t.test('pods/proxy reaches the pod IP inside its namespace', async () => {
    await s.request('POST', `${NS}/pods`, { metadata: { name: 'web' }, spec: { containers: [{ name: 'main', image: 'x', command: ['python3', '-c', 'import http.server as h\nclass H(h.BaseHTTPRequestHandler):\n  def do_POST(self):\n    n=int(self.headers["Content-Length"]); b=self.rfile.read(n); self.send_response(200); self.end_headers(); self.wfile.write(b"echo:"+b+self.path.encode())\nh.HTTPServer(("0.0.0.0",7411),H).serve_forever()'] }] } });
    await phase(s, 'web', 'Running');
    const r = await until(async () => { const r = await s.request('POST', `${NS}/pods/web:7411/proxy/release?x=1`, 'hello', { raw: true, headers: { 'Content-Type': 'text/plain' } }); return r.code === 200 && r; }, 30000, 'proxy');
    assert.strictEqual(r.text, 'echo:hello/release?x=1');
  });

  await t.test('node loss: pods get DisruptionTarget and are deleted', async () => {
    const pods = (await s.request('GET', `${NS}/pods?fieldSelector=status.phase%3DRunning`)).body.items;
    const victim = pods.find((p) => p.metadata.name === 'web');
    const w = s.watch(`${NS}/pods?watch=1&fieldSelector=metadata.name%3Dweb&resourceVersion=${victim.metadata.resourceVersion}`);
    const k = await s.request('POST', `/admin/nodes/${victim.spec.nodeName}/kill`);
    assert.strictEqual(k.code, 200);
    const del = await w.next((e) => e.type === 'DELETED');
    const dt = del.object.status.conditions.find((c) => c.type === 'DisruptionTarget');
    assert.strictEqual(dt.reason, 'DeletionByTaintManager');
    const node = (await s.request('GET', `/api/v1/nodes/${victim.spec.nodeName}`)).body;
    assert.strictEqual(node.status.conditions.find((c) => c.type === 'Ready').status, 'Unknown');
    // new pods avoid the lost node
    await s.request('POST', `${NS}/pods`, { metadata: { name: 'after' }, spec: { containers: [{ name: 'main', image: 'x', command: ['sleep', '30'] }] } });
    const a = await until(async () => (await getPod(s, 'after')).spec.nodeName, 30000, 'after bound');
    assert.notStrictEqual(a, victim.spec.nodeName);
    w.close();
  });
});

test('a stale run is cleaned at the next start', { skip }, async () => {
  const s1 = await startServer([]);
  const prefix = /prefix=(\S+)/.exec(s1.ready)[1];
  await s1.request('POST', `${NS}/pods`, { metadata: { name: 'x' }, spec: { containers: [{ name: 'main', image: 'x', command: ['sleep', '300'] }] } });
  await phase(s1, 'x', 'Running');
  s1.child.kill('SIGKILL');
  await new Promise((r) => s1.child.once('exit', r));
  assert.ok(execFileSync('ip', ['netns', 'list'], { encoding: 'utf8' }).includes(prefix));
  const s2 = await startServer([]);
  try {
    assert.match(s2.stderr(), new RegExp(`cleaned stale run ${prefix}`));
    assert.ok(!execFileSync('ip', ['netns', 'list'], { encoding: 'utf8' }).includes(prefix));
    assert.ok(!execFileSync('ip', ['link'], { encoding: 'utf8' }).includes(prefix));
    assert.ok(!fs.existsSync(`/run/jg-test-apiserver/${prefix}`));
  } finally { await s2.stop(); await s1.stop(); }
});
