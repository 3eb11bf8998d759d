'use strict';
// The API machinery without a kubelet (no root needed).
const test = require('node:test');
const assert = require('node:assert');
const { startServer, until, pod } = require('../testlib/helpers');

const NS = '/api/v1/namespaces/default';

test('API server without kubelet', async (t) => {
  const s = await startServer(['--no-kubelet', '--history', '50', '--bookmark-interval-ms', '200', '--readonly-token', 'ro']);
  t.after(() => s.stop());

  await t.test('TLS with its own CA and bearer token: 401 without, 403 for read-only writes', async () => {
    assert.match(s.ready, /^READY port=\d+/);
    const r = await s.request('GET', `${NS}/pods`, undefined, { auth: false });
    assert.strictEqual(r.code, 401);
    assert.strictEqual(r.body.kind, 'Status');
    assert.strictEqual(r.body.reason, 'Unauthorized');
    assert.strictEqual((await s.request('GET', `${NS}/pods`, undefined, { auth: 'wrong' })).code, 401);
    assert.strictEqual((await s.request('GET', `${NS}/pods`, undefined, { auth: 'ro' })).code, 200);
    const f = await s.request('POST', `${NS}/configmaps`, { metadata: { name: 'x' } }, { auth: 'ro' });
    assert.strictEqual(f.code, 403);
    assert.strictEqual(f.body.reason, 'Forbidden');
  });

  await t.test('create/get/list/update/patch/delete with real Status errors', async () => {
    const c = await s.request('POST', `${NS}/configmaps`, { metadata: { name: 'cm1', labels: { app: 'a', tier: 'x' } }, data: { k: 'v' } });
    assert.strictEqual(c.code, 201);
    assert.ok(c.body.metadata.uid);
    const rv1 = c.body.metadata.resourceVersion;
    const dup = await s.request('POST', `${NS}/configmaps`, { metadata: { name: 'cm1' } });
    assert.strictEqual(dup.code, 409);
    assert.strictEqual(dup.body.reason, 'AlreadyExists');
    const nf = await s.request('GET', `${NS}/configmaps/nope`);
    assert.strictEqual(nf.code, 404);
    assert.strictEqual(nf.body.reason, 'NotFound');
    assert.strictEqual(nf.body.message, 'configmaps "nope" not found');
    const upd = await s.request('PUT', `${NS}/configmaps/cm1`, { ...c.body, data: { k: 'v2' } });
    assert.strictEqual(upd.code, 200);
    assert.ok(Number(upd.body.metadata.resourceVersion) > Number(rv1));
    const stale = await s.request('PUT', `${NS}/configmaps/cm1`, { ...c.body, data: { k: 'v3' } });
    assert.strictEqual(stale.code, 409);
    assert.strictEqual(stale.body.reason, 'Conflict');
    const p = await s.request('PATCH', `${NS}/configmaps/cm1`, { data: { k2: 'w' } }, { headers: { 'Content-Type': 'application/merge-patch+json' } });
    assert.strictEqual(p.code, 200);
    assert.deepStrictEqual(p.body.data, { k: 'v2', k2: 'w' });
    const sp = await s.request('PATCH', `${NS}/configmaps/cm1`, { data: {} }, { headers: { 'Content-Type': 'application/strategic-merge-patch+json' } });
    assert.strictEqual(sp.code, 415);
    // one global resourceVersion across kinds
    const sec = await s.request('POST', `${NS}/secrets`, { metadata: { name: 's1' }, stringData: { token: 'abc' } });
    assert.strictEqual(sec.code, 201);
    assert.strictEqual(sec.body.data.token, Buffer.from('abc').toString('base64'));
    assert.ok(Number(sec.body.metadata.resourceVersion) > Number(p.body.metadata.resourceVersion));
    const d = await s.request('DELETE', `${NS}/configmaps/cm1`);
    assert.strictEqual(d.code, 200);
    assert.strictEqual(d.body.status, 'Success');
    assert.strictEqual((await s.request('GET', `${NS}/configmaps/cm1`)).code, 404);
  });

  await t.test('label and field selectors', async () => {
    for (const [n, l] of [['a1', { app: 'a', tier: 'web' }], ['a2', { app: 'a', tier: 'db' }], ['b1', { app: 'b' }]]) {
      assert.strictEqual((await s.request('POST', `${NS}/configmaps`, { metadata: { name: n, labels: l } })).code, 201);
    }
    const names = async (q) => (await s.request('GET', `${NS}/configmaps?${q}`)).body.items.map((i) => i.metadata.name).sort();
    assert.deepStrictEqual(await names('labelSelector=app%3Da'), ['a1', 'a2']);
    assert.deepStrictEqual(await names('labelSelector=app%3Da,tier!%3Ddb'), ['a1']);
    assert.deepStrictEqual(await names('labelSelector=tier%20in%20(web,db)'), ['a1', 'a2']);
    assert.deepStrictEqual(await names('labelSelector=tier%20notin%20(web),app'), ['a2', 'b1']);
    assert.deepStrictEqual(await names('labelSelector=!tier'), ['b1']);
    assert.deepStrictEqual(await names('labelSelector=tier'), ['a1', 'a2']);
    assert.deepStrictEqual(await names('fieldSelector=metadata.name%3Da2'), ['a2']);
    assert.strictEqual((await s.request('GET', `${NS}/configmaps?labelSelector=a%20b%20c`)).code, 400);
  });

  await t.test('422 Invalid with causes naming the field', async () => {
    const bad = pod('Bad_Name', { spec: { containers: [{ name: 'main', ports: [{ containerPort: 'eighty' }] }] } });
    const r = await s.request('POST', `${NS}/pods`, bad);
    assert.strictEqual(r.code, 422);
    assert.strictEqual(r.body.reason, 'Invalid');
    const fields = r.body.details.causes.map((c) => c.field);
    assert.ok(fields.includes('metadata.name'), fields);
    assert.ok(fields.includes('spec.containers[0].ports[0].containerPort'), fields);
    assert.ok(fields.includes('spec.containers[0].image'), fields);
    const svc = await s.request('POST', `${NS}/services`, { metadata: { name: '1svc' }, spec: { clusterIP: 'None', selector: { a: 'b' } } });
    assert.strictEqual(svc.code, 422);
    assert.ok(svc.body.details.causes.some((c) => c.field === 'metadata.name'));
    const lbl = await s.request('POST', `${NS}/configmaps`, { metadata: { name: 'l', labels: { 'bad key': 'x', ok: 'bad value!' } } });
    assert.strictEqual(lbl.code, 422);
    assert.strictEqual(lbl.body.details.causes.filter((c) => c.field === 'metadata.labels').length, 2);
    const own = await s.request('POST', `${NS}/configmaps`, { metadata: { name: 'o', ownerReferences: [{ apiVersion: 'v1', kind: 'ConfigMap', name: 'a1', uid: 'u1', controller: true }, { apiVersion: 'v1', kind: 'ConfigMap', name: 'a2', uid: 'u2', controller: true }] } });
    assert.strictEqual(own.code, 422);
    assert.ok(own.body.details.causes.some((c) => c.field === 'metadata.ownerReferences'));
    const noUid = await s.request('POST', `${NS}/configmaps`, { metadata: { name: 'o', ownerReferences: [{ apiVersion: 'v1', kind: 'ConfigMap', name: 'a1' }] } });
    assert.strictEqual(noUid.code, 422);
    assert.ok(noUid.body.details.causes.some((c) => c.field === 'metadata.ownerReferences[0].uid'));
    const immut = await s.request('POST', `${NS}/pods`, pod('imm'));
    assert.strictEqual(immut.code, 201);
    const ch = await s.request('PATCH', `${NS}/pods/imm`, { spec: { hostname: 'other' } }, { headers: { 'Content-Type': 'application/merge-patch+json' } });
    assert.strictEqual(ch.code, 422);
  });

  await t.test('watch: events, bookmarks, timeoutSeconds, 410 Expired', async () => {
    const list = await s.request('GET', `${NS}/configmaps`);
    const rv = list.body.metadata.resourceVersion;
    const w = s.watch(`${NS}/configmaps?watch=1&resourceVersion=${rv}&allowWatchBookmarks=true&labelSelector=w%3D1`);
    await s.request('POST', `${NS}/configmaps`, { metadata: { name: 'w1', labels: { w: '1' } } });
    await s.request('POST', `${NS}/configmaps`, { metadata: { name: 'other' } });
    await s.request('PATCH', `${NS}/configmaps/w1`, { data: { a: 'b' } }, { headers: { 'Content-Type': 'application/merge-patch+json' } });
    await s.request('DELETE', `${NS}/configmaps/w1`);
    await w.next((e) => e.type === 'DELETED');
    const bm = await w.next((e) => e.type === 'BOOKMARK');
    assert.ok(Number(bm.object.metadata.resourceVersion) >= Number(rv));
    assert.deepStrictEqual(w.events.filter((e) => e.type !== 'BOOKMARK').map((e) => `${e.type} ${e.object.metadata.name}`), ['ADDED w1', 'MODIFIED w1', 'DELETED w1']);
    w.close();
    // resume from an rv in the middle replays what followed it
    const w2 = s.watch(`${NS}/configmaps?watch=true&resourceVersion=${rv}&timeoutSeconds=1`);
    await w2.next((e) => e.type === 'DELETED' && e.object.metadata.name === 'w1');
    await until(() => w2.ended(), 30000, 'watch timeout');
    // history of 50: push the old rv out of it
    for (let i = 0; i < 60; i++) await s.request('POST', `${NS}/configmaps`, { metadata: { generateName: 'fill-' } });
    const w3 = s.watch(`${NS}/configmaps?watch=1&resourceVersion=${rv}`);
    const err = await w3.next((e) => e.type === 'ERROR');
    assert.strictEqual(err.object.code, 410);
    assert.strictEqual(err.object.reason, 'Expired');
    await until(() => w3.ended(), 30000, 'watch end after 410');
  });

  await t.test('garbage collection by ownerReferences', async () => {
    const owner = (await s.request('POST', `${NS}/configmaps`, { metadata: { name: 'owner' } })).body;
    const ref = { apiVersion: 'v1', kind: 'ConfigMap', name: 'owner', uid: owner.metadata.uid, controller: true, blockOwnerDeletion: true };
    for (const [res, body] of [['configmaps', { metadata: { name: 'dep-cm', ownerReferences: [ref] } }], ['secrets', { metadata: { name: 'dep-sec', ownerReferences: [ref] } }],
      ['services', { metadata: { name: 'dep-svc', ownerReferences: [ref] }, spec: { clusterIP: 'None', selector: { a: 'b' } } }], ['pods', pod('dep-pod', { metadata: { ownerReferences: [ref] }, spec: { terminationGracePeriodSeconds: 1 } })]]) {
      assert.strictEqual((await s.request('POST', `${NS}/${res}`, body)).code, 201, res);
    }
    const del = await s.request('DELETE', `${NS}/configmaps/owner`);
    assert.strictEqual(del.code, 200);
    for (const p of ['configmaps/dep-cm', 'secrets/dep-sec', 'services/dep-svc', 'pods/dep-pod']) {
      await until(async () => (await s.request('GET', `${NS}/${p}`)).code === 404, 30000, `${p} collected`);
    }
    // foreground: the owner stays (deletionTimestamp + finalizer) until its dependents are gone
    const o2 = (await s.request('POST', `${NS}/configmaps`, { metadata: { name: 'owner2' } })).body;
    await s.request('POST', `${NS}/configmaps`, { metadata: { name: 'dep2', finalizers: ['test/hold'], ownerReferences: [{ ...ref, name: 'owner2', uid: o2.metadata.uid }] } });
    const fg = await s.request('DELETE', `${NS}/configmaps/owner2`, { propagationPolicy: 'Foreground' });
    assert.strictEqual(fg.code, 200);
    assert.ok(fg.body.metadata.deletionTimestamp);
    assert.ok(fg.body.metadata.finalizers.includes('foregroundDeletion'));
    const dep2 = (await s.request('GET', `${NS}/configmaps/dep2`)).body;
    assert.ok(dep2.metadata.deletionTimestamp);
    assert.strictEqual((await s.request('GET', `${NS}/configmaps/owner2`)).code, 200);
    await s.request('PATCH', `${NS}/configmaps/dep2`, { metadata: { finalizers: null } }, { headers: { 'Content-Type': 'application/merge-patch+json' } });
    await until(async () => (await s.request('GET', `${NS}/configmaps/owner2`)).code === 404, 30000, 'owner2 gone');
    // orphan: dependents stay, without the reference
    const o3 = (await s.request('POST', `${NS}/configmaps`, { metadata: { name: 'owner3' } })).body;
    await s.request('POST', `${NS}/configmaps`, { metadata: { name: 'dep3', ownerReferences: [{ ...ref, name: 'owner3', uid: o3.metadata.uid }] } });
    await s.request('DELETE', `${NS}/configmaps/owner3?propagationPolicy=Orphan`);
    const dep3 = await s.request('GET', `${NS}/configmaps/dep3`);
    assert.strictEqual(dep3.code, 200);
    assert.strictEqual(dep3.body.metadata.ownerReferences, undefined);
  });

  await t.test('scheduler: binds by allocatable, else Unschedulable + FailedScheduling', async () => {
    const big = pod('big', { spec: { containers: [{ name: 'main', image: 'x', resources: { requests: { cpu: '3' } } }] } });
    assert.strictEqual((await s.request('POST', `${NS}/pods`, big)).code, 201);
    await s.request('POST', `${NS}/pods`, { ...big, metadata: { name: 'big2' } });
    await s.request('POST', `${NS}/pods`, { ...big, metadata: { name: 'big3' } });
    const bound = await until(async () => { const p = (await s.request('GET', `${NS}/pods/big`)).body; return p.spec.nodeName && p; }, 30000, 'big bound');
    assert.match(bound.spec.nodeName, /^node-[12]$/);
    const b3 = await until(async () => { const p = (await s.request('GET', `${NS}/pods/big3`)).body; return (p.status.conditions || []).find((c) => c.type === 'PodScheduled' && c.status === 'False') && p; }, 30000, 'big3 unschedulable');
    assert.strictEqual(b3.spec.nodeName, undefined);
    const cond = b3.status.conditions.find((c) => c.type === 'PodScheduled');
    assert.strictEqual(cond.reason, 'Unschedulable');
    assert.strictEqual(cond.message, '0/2 nodes are available: 2 Insufficient cpu.');
    const ev = await until(async () => (await s.request('GET', `${NS}/events?fieldSelector=involvedObject.name%3Dbig3`)).body.items.find((e) => e.reason === 'FailedScheduling'), 30000, 'FailedScheduling event');
    assert.strictEqual(ev.type, 'Warning');
    assert.strictEqual(ev.message, '0/2 nodes are available: 2 Insufficient cpu.');
    // a cordoned node takes nothing
    for (const n of ['node-1', 'node-2']) await s.request('PATCH', `/api/v1/nodes/${n}`, { spec: { unschedulable: true } }, { headers: { 'Content-Type': 'application/merge-patch+json' } });
    await s.request('POST', `${NS}/pods`, pod('tiny'));
    await until(async () => ((await s.request('GET', `${NS}/pods/tiny`)).body.status.conditions || []).some((c) => c.message === '0/2 nodes are available: 2 node(s) were unschedulable.'), 30000, 'tiny unschedulable');
    for (const n of ['node-1', 'node-2']) await s.request('PATCH', `/api/v1/nodes/${n}`, { spec: { unschedulable: null } }, { headers: { 'Content-Type': 'application/merge-patch+json' } });
    await until(async () => (await s.request('GET', `${NS}/pods/tiny`)).body.spec.nodeName, 30000, 'tiny bound after uncordon');
    // freeing a node lets it bind
    await s.request('DELETE', `${NS}/pods/big?gracePeriodSeconds=0`);
    await until(async () => (await s.request('GET', `${NS}/pods/big3`)).body.spec.nodeName, 30000, 'big3 bound after big left');
  });

  await t.test('persistentvolumeclaims: validated, Bound at create; a pod of a missing claim is Unschedulable until it exists', async () => {
    const bad = await s.request('POST', `${NS}/persistentvolumeclaims`, { metadata: { name: 'nomodes' }, spec: { resources: { requests: { storage: '1Gi' } } } });
    assert.strictEqual(bad.code, 422, JSON.stringify(bad.body));
    assert.ok(bad.body.details.causes.some((c) => c.field === 'spec.accessModes'), JSON.stringify(bad.body));
    const badMode = await s.request('POST', `${NS}/persistentvolumeclaims`, { metadata: { name: 'badmode' }, spec: { accessModes: ['ReadWriteSometimes'], resources: { requests: { storage: '1Gi' } } } });
    assert.strictEqual(badMode.code, 422, JSON.stringify(badMode.body));
    const wrongType = await s.request('POST', `${NS}/persistentvolumeclaims`, { metadata: { name: 'wrongtype' }, spec: { accessModes: 'ReadWriteMany', resources: { requests: { storage: '1Gi' } } } });
    assert.strictEqual(wrongType.code, 422, JSON.stringify(wrongType.body));

    const claimed = pod('claimer', { spec: { volumes: [{ name: 'data', persistentVolumeClaim: { claimName: 'shared' } }],
      containers: [{ name: 'main', image: 'x', volumeMounts: [{ name: 'data', mountPath: '/data' }] }] } });
    assert.strictEqual((await s.request('POST', `${NS}/pods`, claimed)).code, 201);
    const want = '0/2 nodes are available: persistentvolumeclaim "shared" not found.';
    const p = await until(async () => { const x = (await s.request('GET', `${NS}/pods/claimer`)).body; return (x.status.conditions || []).some((c) => c.type === 'PodScheduled' && c.reason === 'Unschedulable') && x; }, 30000, 'claimer unschedulable');
    assert.strictEqual(p.status.conditions.find((c) => c.type === 'PodScheduled').message, want);
    assert.strictEqual(p.spec.nodeName, undefined);
    const ev = await until(async () => (await s.request('GET', `${NS}/events?fieldSelector=involvedObject.name%3Dclaimer`)).body.items.find((e) => e.reason === 'FailedScheduling'), 30000, 'FailedScheduling event');
    assert.strictEqual(ev.message, want);

    const r = await s.request('POST', `${NS}/persistentvolumeclaims`, { metadata: { name: 'shared' }, spec: { accessModes: ['ReadWriteMany'], resources: { requests: { storage: '1Gi' } } } });
    assert.strictEqual(r.code, 201, JSON.stringify(r.body));
    assert.strictEqual(r.body.status.phase, 'Bound');
    assert.deepStrictEqual(r.body.status.accessModes, ['ReadWriteMany']);
    assert.strictEqual((await s.request('GET', `${NS}/persistentvolumeclaims/shared`)).body.status.phase, 'Bound');
    assert.deepStrictEqual((await s.request('GET', `${NS}/persistentvolumeclaims`)).body.items.map((x) => x.metadata.name), ['shared']);
    await until(async () => (await s.request('GET', `${NS}/pods/claimer`)).body.spec.nodeName, 30000, 'claimer bound once its claim exists');

    // two mounts at one path are refused, as a real apiserver does
    const twice = pod('twice', { spec: { volumes: [{ name: 'a', emptyDir: {} }, { name: 'b', emptyDir: {} }],
      containers: [{ name: 'main', image: 'x', volumeMounts: [{ name: 'a', mountPath: '/tmp' }, { name: 'b', mountPath: '/tmp' }] }] } });
    const tw = await s.request('POST', `${NS}/pods`, twice);
    assert.strictEqual(tw.code, 422, JSON.stringify(tw.body));
    assert.ok(tw.body.details.causes.some((c) => c.field === 'spec.containers[0].volumeMounts[1].mountPath'), JSON.stringify(tw.body));

    await s.request('DELETE', `${NS}/pods/claimer?gracePeriodSeconds=0`);
    assert.strictEqual((await s.request('DELETE', `${NS}/persistentvolumeclaims/shared`)).code, 200);
    assert.strictEqual((await s.request('GET', `${NS}/persistentvolumeclaims/shared`)).code, 404);
  });

  await t.test('fault injection switches: 429 with Retry-After, 500', async () => {
    const set = (b) => s.request('POST', '/admin/faults', b);
    await set({ fail429: 1 });
    const r = await s.request('GET', `${NS}/pods`);
    assert.strictEqual(r.code, 429);
    assert.strictEqual(r.headers['retry-after'], '1');
    assert.strictEqual(r.body.reason, 'TooManyRequests');
    await set({ fail429: 0, fail500: 1 });
    assert.strictEqual((await s.request('GET', `${NS}/pods`)).code, 500);
    await set({ fail500: 0, latencyMs: 200 });
    const t0 = Date.now();
    assert.strictEqual((await s.request('GET', `${NS}/pods`)).code, 200);
    assert.ok(Date.now() - t0 >= 190);
    await set({ latencyMs: 0 });
  });
});

test('--cut-watches-every ends watches', async (t) => {
  const s = await startServer(['--no-kubelet', '--cut-watches-every', '1']);
  t.after(() => s.stop());
  const w = s.watch(`${NS}/pods?watch=1`);
  await until(() => w.ended(), 30000, 'watch cut');
});

test('--fail-429, --fail-500 and --latency-ms from the command line', async (t) => {
  const s = await startServer(['--no-kubelet', '--fail-429', '0.3', '--fail-500', '0.2', '--latency-ms', '20']);
  t.after(() => s.stop());
  const codes = { 200: 0, 429: 0, 500: 0 };
  const t0 = Date.now();
  for (let i = 0; i < 100; i++) codes[(await s.request('GET', `${NS}/configmaps`)).code]++;
  assert.ok(Date.now() - t0 >= 100 * 20, 'latency applied');
  // binomial(100, 0.3) and (100, 0.2): these bounds fail with odds below 1e-6
  assert.ok(codes[429] >= 10 && codes[429] <= 55, JSON.stringify(codes));
  assert.ok(codes[500] >= 3 && codes[500] <= 45, JSON.stringify(codes));
  assert.strictEqual(codes[200] + codes[429] + codes[500], 100);
});

test('--nodes: GPUs and labels; node loss with mode=delete', async (t) => {
  const fs = require('fs');
  const os = require('os');
  const path = require('path');
  const file = path.join(fs.mkdtempSync(path.join(os.tmpdir(), 'jk-nodes-')), 'nodes.json');
  fs.writeFileSync(file, JSON.stringify([
    { name: 'gpu-1', allocatable: { cpu: '8', memory: '16Gi', 'nvidia.com/gpu': '2' }, labels: { accel: 'h100' } },
    { name: 'cpu-1', allocatable: { cpu: '8', memory: '16Gi' }, labels: { accel: 'none' } },
  ]));
  const s = await startServer(['--no-kubelet', '--nodes', file]);
  t.after(async () => { await s.stop(); fs.rmSync(path.dirname(file), { recursive: true, force: true }); });
  const gpuPod = (name, n, sel) => pod(name, { spec: { nodeSelector: sel, terminationGracePeriodSeconds: 30, containers: [{ name: 'main', image: 'x', resources: { limits: { 'nvidia.com/gpu': String(n) } } }] } });
  await s.request('POST', `${NS}/pods`, gpuPod('g2', 2));
  const g2 = await until(async () => (await s.request('GET', `${NS}/pods/g2`)).body.spec.nodeName, 30000, 'g2 bound');
  assert.strictEqual(g2, 'gpu-1');
  await s.request('POST', `${NS}/pods`, gpuPod('g1', 1, { accel: 'h100' }));
  const msg = '0/2 nodes are available: 1 Insufficient nvidia.com/gpu, 1 node(s) didn\'t match Pod\'s node affinity/selector.';
  await until(async () => ((await s.request('GET', `${NS}/pods/g1`)).body.status.conditions || []).some((c) => c.reason === 'Unschedulable' && c.message === msg), 30000, 'g1 unschedulable');
  const node = (await s.request('GET', '/api/v1/nodes/gpu-1')).body;
  assert.strictEqual(node.status.allocatable['nvidia.com/gpu'], '2');
  assert.strictEqual(node.metadata.labels.accel, 'h100');
  const w = s.watch(`${NS}/pods?watch=1&fieldSelector=metadata.name%3Dg2&resourceVersion=${node.metadata.resourceVersion}`);
  assert.strictEqual((await s.request('POST', '/admin/nodes/gpu-1/kill?mode=delete')).code, 200);
  const del = await w.next((e) => e.type === 'DELETED');
  const dt = del.object.status.conditions.find((c) => c.type === 'DisruptionTarget');
  assert.strictEqual(dt.reason, 'DeletionByPodGC');
  assert.strictEqual((await s.request('GET', '/api/v1/nodes/gpu-1')).code, 404);
  w.close();
});
