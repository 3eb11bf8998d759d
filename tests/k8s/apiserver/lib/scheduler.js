'use strict';
// A scheduler in the spirit of kube-scheduler's default profile, reduced to
// what the backend needs: NodeName, NodeSelector, taints (NoSchedule /
// NoExecute), NodeResourcesFit (requests vs allocatable minus the requests of
// the pods already bound).  Unschedulable pods get PodScheduled=False and a
// FailedScheduling event with kube-scheduler's message.
const u = require('./k8sutil');
const { setCondition } = require('./api');

function podRequests(pod) {
  const sum = {};
  const add = (into, reqs, max) => {
    for (const [k, v] of Object.entries(reqs || {})) {
      const q = u.parseQuantity(v);
      into[k] = max ? Math.max(into[k] || 0, q) : (into[k] || 0) + q;
    }
  };
  for (const c of pod.spec.containers || []) add(sum, (c.resources || {}).requests, false);
  for (const c of pod.spec.initContainers || []) add(sum, (c.resources || {}).requests, true);
  return sum;
}

const terminal = (p) => p.status && (p.status.phase === 'Succeeded' || p.status.phase === 'Failed');

class Scheduler {
  constructor(store) {
    this.store = store;
    this.lastMessage = new Map(); // pod uid -> last FailedScheduling message
    this.pending = false;
    store.listeners.push((resource, type) => {
      if (resource === 'pods' || resource === 'nodes' || resource === 'persistentvolumeclaims') this.kick();
    });
    this.timer = setInterval(() => this.kick(), 1000);
  }
  close() { clearInterval(this.timer); }
  kick() {
    if (this.pending) return;
    this.pending = true;
    setImmediate(() => { this.pending = false; this.run(); });
  }

  nodeFits(node, pod, used) {
    const reasons = [];
    if (node.spec && node.spec.unschedulable && !(pod.spec.tolerations || []).some((t) => t.key === 'node.kubernetes.io/unschedulable' || (t.operator === 'Exists' && !t.key))) return ['node(s) were unschedulable'];
    const sel = pod.spec.nodeSelector || {};
    if (Object.entries(sel).some(([k, v]) => (node.metadata.labels || {})[k] !== v)) reasons.push("node(s) didn't match Pod's node affinity/selector");
    for (const t of (node.spec && node.spec.taints) || []) {
      if (t.effect !== 'NoSchedule' && t.effect !== 'NoExecute') continue;
      const tolerated = (pod.spec.tolerations || []).some((tol) => (tol.operator === 'Exists' && (!tol.key || tol.key === t.key)) || (tol.key === t.key && (tol.value || '') === (t.value || '')));
      if (!tolerated) { reasons.push(`node(s) had untolerated taint {${t.key}: ${t.value || ''}}`); break; }
    }
    if (reasons.length) return reasons;
    const alloc = node.status.allocatable || {};
    const req = podRequests(pod);
    if ((used.pods || 0) + 1 > u.parseQuantity(alloc.pods || '110')) reasons.push('Too many pods');
    for (const [k, v] of Object.entries(req)) {
      if (k === 'pods' || v === 0) continue;
      const have = u.parseQuantity(alloc[k] ?? '0');
      if ((used[k] || 0) + v > have + 1e-9) reasons.push(`Insufficient ${k}`);
    }
    return reasons;
  }

  run() {
    const nodes = this.store.list('nodes');
    const pods = this.store.list('pods');
    const used = new Map(nodes.map((n) => [n.metadata.name, {}]));
    for (const p of pods) {
      if (!p.spec.nodeName || terminal(p) || !used.has(p.spec.nodeName)) continue;
      const acc = used.get(p.spec.nodeName);
      acc.pods = (acc.pods || 0) + 1;
      for (const [k, v] of Object.entries(podRequests(p))) acc[k] = (acc[k] || 0) + v;
    }
    const queue = pods.filter((p) => !p.spec.nodeName && !p.metadata.deletionTimestamp && (p.spec.schedulerName || 'default-scheduler') === 'default-scheduler')
      .sort((a, b) => a.metadata.creationTimestamp.localeCompare(b.metadata.creationTimestamp) || Number(a.metadata.resourceVersion) - Number(b.metadata.resourceVersion));
    for (const pod of queue) {
      const counts = new Map();
      let chosen;
      // VolumeBinding's PreFilter: a missing claim rejects the pod before
      // any node is looked at (kube-scheduler's message has no per-node count).
      const missing = this.missingClaim(pod);
      if (missing) { this.unschedulable(pod, `0/${nodes.length} nodes are available: persistentvolumeclaim "${missing}" not found.`); continue; }
      for (const node of nodes) {
        const reasons = this.nodeFits(node, pod, used.get(node.metadata.name));
        if (!reasons.length) { chosen = node; break; }
        for (const r of reasons) counts.set(r, (counts.get(r) || 0) + 1);
      }
      const ns = pod.metadata.namespace, name = pod.metadata.name;
      if (chosen) {
        const acc = used.get(chosen.metadata.name);
        acc.pods = (acc.pods || 0) + 1;
        for (const [k, v] of Object.entries(podRequests(pod))) acc[k] = (acc[k] || 0) + v;
        this.store.mutate('pods', ns, name, (p) => {
          p.spec.nodeName = chosen.metadata.name;
          setCondition(p, { type: 'PodScheduled', status: 'True', reason: undefined, message: undefined });
          const c = p.status.conditions.find((x) => x.type === 'PodScheduled'); delete c.reason; delete c.message;
        });
        this.lastMessage.delete(pod.metadata.uid);
        this.event(pod, 'Normal', 'Scheduled', `Successfully assigned ${ns}/${name} to ${chosen.metadata.name}`);
      } else {
        let msg = `0/${nodes.length} nodes are available`;
        if (counts.size) msg += ': ' + [...counts.entries()].map(([r, n]) => `${n} ${r}`).sort().join(', ');
        msg += '.';
        this.unschedulable(pod, msg);
      }
    }
  }

  missingClaim(pod) {
    for (const v of pod.spec.volumes || []) {
      const claim = v && v.persistentVolumeClaim && v.persistentVolumeClaim.claimName;
      if (claim && !this.store.get('persistentvolumeclaims', pod.metadata.namespace, claim)) return claim;
    }
    return undefined;
  }

  unschedulable(pod, msg) {
    if (this.lastMessage.get(pod.metadata.uid) === msg) return;
    this.lastMessage.set(pod.metadata.uid, msg);
    this.store.mutate('pods', pod.metadata.namespace, pod.metadata.name, (p) => setCondition(p, { type: 'PodScheduled', status: 'False', reason: 'Unschedulable', message: msg }));
    this.event(pod, 'Warning', 'FailedScheduling', msg);
  }

  event(pod, type, reason, message) {
    recordEvent(this.store, pod, type, reason, message, 'default-scheduler');
  }
}

function recordEvent(store, obj, type, reason, message, component) {
  const t = new Date().toISOString().replace(/\.\d+Z$/, 'Z');
  const name = `${obj.metadata.name}.${Date.now().toString(16)}${Math.floor(Math.random() * 0xffff).toString(16)}`;
  try {
    store.create('events', obj.metadata.namespace || 'default', {
      metadata: { name, namespace: obj.metadata.namespace || 'default' },
      involvedObject: { kind: obj.kind, namespace: obj.metadata.namespace, name: obj.metadata.name, uid: obj.metadata.uid, apiVersion: obj.apiVersion, resourceVersion: obj.metadata.resourceVersion },
      reason, message, type, source: { component }, firstTimestamp: t, lastTimestamp: t, count: 1, reportingComponent: component,
    });
  } catch (e) { if (!(e instanceof u.ApiError)) throw e; }
}

module.exports = { Scheduler, podRequests, recordEvent };
