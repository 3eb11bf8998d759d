'use strict';
// Cluster DNS answers, on a store without a server (no root needed).
const test = require('node:test');
const assert = require('node:assert');
const { Store } = require('../lib/store');
const { answer, resolve } = require('../lib/dns');

function query(name, qtype = 1) {
  const labels = name.split('.').map((l) => Buffer.concat([Buffer.from([l.length]), Buffer.from(l)]));
  const q = Buffer.concat([...labels, Buffer.from([0, 0, qtype, 0, 1])]);
  const h = Buffer.from([0x12, 0x34, 0x01, 0x00, 0, 1, 0, 0, 0, 0, 0, 0]);
  return Buffer.concat([h, q]);
}
const rcode = (r) => r.readUInt16BE(2) & 0xf;
const ancount = (r) => r.readUInt16BE(6);

test('cluster DNS', () => {
  const store = new Store({});
  const mk = (svc, pubNotReady) => store.create('services', 'default', { metadata: { name: svc }, spec: { clusterIP: 'None', selector: { g: svc }, publishNotReadyAddresses: pubNotReady, ports: [{ port: 1 }] } });
  mk('grp', true);
  mk('ready-only', false);
  const pod = (name, g, host, sub, ip, ready) => {
    store.create('pods', 'default', { metadata: { name, labels: { g } }, spec: { hostname: host, subdomain: sub, containers: [{ name: 'm', image: 'x' }] } });
    store.mutate('pods', 'default', name, (p) => { p.status.podIP = ip; p.status.phase = 'Running'; p.status.conditions = [{ type: 'Ready', status: ready ? 'True' : 'False' }]; });
  };
  pod('a', 'grp', 'w-0', 'grp', '10.0.0.2', false);
  pod('b', 'grp', 'w-1', 'grp', '10.0.0.3', true);
  pod('c', 'ready-only', 'r-0', 'ready-only', '10.0.0.4', false);
  pod('d', 'ready-only', 'r-1', 'ready-only', '10.0.0.5', true);
  assert.deepStrictEqual(resolve(store, 'w-0.grp.default.svc.cluster.local'), ['10.0.0.2']);
  assert.deepStrictEqual(resolve(store, 'W-1.GRP.default.svc.cluster.local.'), ['10.0.0.3']);
  assert.deepStrictEqual(resolve(store, 'grp.default.svc.cluster.local').sort(), ['10.0.0.2', '10.0.0.3']);
  assert.deepStrictEqual(resolve(store, 'ready-only.default.svc.cluster.local'), ['10.0.0.5']);
  assert.strictEqual(resolve(store, 'r-0.ready-only.default.svc.cluster.local'), undefined);
  assert.strictEqual(resolve(store, 'w-0.grp.other.svc.cluster.local'), undefined);
  assert.strictEqual(resolve(store, 'w-0.grp'), undefined);
  assert.strictEqual(resolve(store, 'example.com'), undefined);

  const r = answer(store, query('w-1.grp.default.svc.cluster.local'));
  assert.strictEqual(r.readUInt16BE(0), 0x1234);
  assert.strictEqual(rcode(r), 0);
  assert.strictEqual(ancount(r), 1);
  assert.deepStrictEqual([...r.subarray(r.length - 4)], [10, 0, 0, 3]);
  const aaaa = answer(store, query('w-1.grp.default.svc.cluster.local', 28));
  assert.strictEqual(rcode(aaaa), 0);
  assert.strictEqual(ancount(aaaa), 0);
  const nx = answer(store, query('nothere.grp.default.svc.cluster.local'));
  assert.strictEqual(rcode(nx), 3);
  assert.strictEqual(rcode(answer(store, Buffer.from([1, 2, 1, 0, 0, 1, 0, 0, 0, 0, 0, 0, 63]))), 1);
});
