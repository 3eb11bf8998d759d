'use strict';
// Cluster DNS for the pods (the part of CoreDNS's kubernetes plugin the
// backend relies on): A records for
//   <svc>.<ns>.svc.cluster.local            headless: ready (or publishNotReadyAddresses) pod IPs,
//                                           otherwise the (unrouted) clusterIP
//   <hostname>.<subdomain>.<ns>.svc.cluster.local   a pod with that hostname and subdomain
//                                           selected by the headless service <subdomain>
// NXDOMAIN for every other name (nothing is forwarded upstream).
const dgram = require('dgram');
const { selectorMatches } = require('./k8sutil');

const TTL = 5;

function podReady(p) {
  return ((p.status && p.status.conditions) || []).some((c) => c.type === 'Ready' && c.status === 'True');
}

// Returns the list of IPv4 addresses for name, or undefined (NXDOMAIN).
function resolve(store, name) {
  name = name.toLowerCase().replace(/\.$/, '');
  const m = /^(?:([a-z0-9-]+)\.)?([a-z0-9-]+)\.([a-z0-9-]+)\.svc\.cluster\.local$/.exec(name);
  if (!m) return undefined;
  const [, host, svcName, ns] = m;
  const svc = store.get('services', ns, svcName);
  if (!svc) return undefined;
  const headless = svc.spec.clusterIP === 'None';
  const pods = store.list('pods', ns).filter((p) => !p.metadata.deletionTimestamp && p.status && p.status.podIP &&
    selectorMatches(svc.spec.selector, p.metadata.labels) && (svc.spec.publishNotReadyAddresses || podReady(p)) &&
    !['Succeeded', 'Failed'].includes(p.status.phase));
  if (host) {
    if (!headless) return undefined;
    const ips = pods.filter((p) => p.spec.hostname === host && p.spec.subdomain === svcName).map((p) => p.status.podIP);
    return ips.length ? ips : undefined;
  }
  if (!headless) return [svc.spec.clusterIP];
  return pods.map((p) => p.status.podIP);
}

function parseQuestion(msg) {
  let off = 12;
  const labels = [];
  for (;;) {
    if (off >= msg.length) return undefined;
    const len = msg[off];
    if (len === 0) { off++; break; }
    if (len > 63 || off + 1 + len > msg.length) return undefined;
    labels.push(msg.slice(off + 1, off + 1 + len).toString('latin1'));
    off += 1 + len;
  }
  if (off + 4 > msg.length) return undefined;
  return { name: labels.join('.'), qtype: msg.readUInt16BE(off), qclass: msg.readUInt16BE(off + 2), end: off + 4 };
}

function answer(store, msg) {
  if (msg.length < 12 || msg.readUInt16BE(4) !== 1) return undefined;
  const q = parseQuestion(msg);
  const flagsIn = msg.readUInt16BE(2);
  const header = Buffer.alloc(12);
  header.writeUInt16BE(msg.readUInt16BE(0), 0);
  if (!q) { header.writeUInt16BE(0x8000 | (flagsIn & 0x0100) | 1, 2); return header; } // FORMERR
  const ips = resolve(store, q.name);
  const question = msg.slice(12, q.end);
  const rcode = ips === undefined ? 3 : 0;
  const answers = [];
  if (ips && q.qtype === 1 && q.qclass === 1) {
    for (const ip of ips) {
      const rr = Buffer.alloc(16);
      rr.writeUInt16BE(0xc00c, 0); rr.writeUInt16BE(1, 2); rr.writeUInt16BE(1, 4);
      rr.writeUInt32BE(TTL, 6); rr.writeUInt16BE(4, 10);
      ip.split('.').forEach((b, i) => { rr[12 + i] = Number(b); });
      answers.push(rr);
    }
  }
  header.writeUInt16BE(0x8000 | 0x0400 | (flagsIn & 0x0100) | 0x0080 | rcode, 2); // QR AA RD RA
  header.writeUInt16BE(1, 4);
  header.writeUInt16BE(answers.length, 6);
  return Buffer.concat([header, question, ...answers]);
}

function startDns(store, ip) {
  return new Promise((resolvePromise, reject) => {
    const sock = dgram.createSocket('udp4');
    sock.on('message', (msg, rinfo) => {
      const out = answer(store, msg);
      if (out) sock.send(out, rinfo.port, rinfo.address);
    });
    sock.once('error', reject);
    sock.bind(53, ip, () => resolvePromise(sock));
  });
}

module.exports = { startDns, resolve, answer };
