'use strict';
// The object store: one global resourceVersion counter, a bounded event
// history for watches, graceful deletion, finalizers and ownerReference
// garbage collection (background, foreground, orphan).
const crypto = require('crypto');
const u = require('./k8sutil');
const { validate } = require('./validate');

const RESOURCES = {
  pods: { kind: 'Pod', group: '', namespaced: true, nameRule: u.dns1123Subdomain },
  services: { kind: 'Service', group: '', namespaced: true, nameRule: u.dns1035Label },
  configmaps: { kind: 'ConfigMap', group: '', namespaced: true, nameRule: u.dns1123Subdomain },
  secrets: { kind: 'Secret', group: '', namespaced: true, nameRule: u.dns1123Subdomain },
  persistentvolumeclaims: { kind: 'PersistentVolumeClaim', group: '', namespaced: true, nameRule: u.dns1123Subdomain },
  events: { kind: 'Event', group: '', namespaced: true, nameRule: u.dns1123Subdomain },
  serviceaccounts: { kind: 'ServiceAccount', group: '', namespaced: true, nameRule: u.dns1123Subdomain },
  nodes: { kind: 'Node', group: '', namespaced: false, nameRule: u.dns1123Subdomain },
  namespaces: { kind: 'Namespace', group: '', namespaced: false, nameRule: u.dns1123Label },
  roles: { kind: 'Role', group: 'rbac.authorization.k8s.io', namespaced: true, nameRule: () => [] },
  rolebindings: { kind: 'RoleBinding', group: 'rbac.authorization.k8s.io', namespaced: true, nameRule: () => [] },
};
for (const r of Object.values(RESOURCES)) r.apiVersion = r.group ? `${r.group}/v1` : 'v1';

const clone = (o) => JSON.parse(JSON.stringify(o));
const now = () => new Date().toISOString().replace(/\.\d+Z$/, 'Z');

class Store {
  constructor(opts) {
    this.rv = 1;
    this.objects = new Map(); // "resource/ns/name" -> object
    this.history = [];        // {rv, resource, type, obj, prev}
    this.historyMax = opts.historyMax || 1000;
    this.compactedRv = 0;     // watches from a resourceVersion below this get 410
    this.listeners = [];      // fn(resource, type, obj, prev)
    this.serviceIpNext = 10;
    this.serviceNet = opts.serviceNet || '10.96.0';
    for (const ns of ['default', 'kube-system']) this.createInternal('namespaces', { metadata: { name: ns }, spec: { finalizers: ['kubernetes'] }, status: { phase: 'Active' } });
  }

  key(resource, ns, name) { return `${resource}/${RESOURCES[resource].namespaced ? ns : ''}/${name}`; }
  get(resource, ns, name) { return this.objects.get(this.key(resource, ns, name)); }
  list(resource, ns) {
    const out = [];
    for (const [k, o] of this.objects) {
      if (!k.startsWith(resource + '/')) continue;
      if (ns && RESOURCES[resource].namespaced && o.metadata.namespace !== ns) continue;
      out.push(o);
    }
    return out.sort((a, b) => (a.metadata.namespace || '').localeCompare(b.metadata.namespace || '') || a.metadata.name.localeCompare(b.metadata.name));
  }
  byUid(uid) { for (const o of this.objects.values()) if (o.metadata.uid === uid) return o; return undefined; }
  resourceOf(obj) { return Object.keys(RESOURCES).find((r) => RESOURCES[r].kind === obj.kind); }

  commit(resource, type, obj, prev) {
    this.rv++;
    // kind and apiVersion first, as a real server writes them.
    if (Object.keys(obj)[0] !== 'kind') { const rest = { ...obj }; for (const k of Object.keys(obj)) delete obj[k]; Object.assign(obj, { kind: rest.kind, apiVersion: rest.apiVersion }, rest); }
    obj.metadata.resourceVersion = String(this.rv);
    const k = this.key(resource, obj.metadata.namespace, obj.metadata.name);
    if (type === 'DELETED') this.objects.delete(k); else this.objects.set(k, obj);
    this.history.push({ rv: this.rv, resource, type, obj, prev });
    if (this.history.length > this.historyMax) {
      const dropped = this.history.splice(0, this.history.length - this.historyMax);
      this.compactedRv = dropped[dropped.length - 1].rv;
    }
    for (const l of this.listeners) {
      try { l(resource, type, obj, prev); } catch (e) { console.error('listener failed:', e); }
    }
    return obj;
  }

  // Drops the whole event history: every watch from an older
  // resourceVersion then gets 410 Gone (test hook, like etcd compaction).
  compact() { this.compactedRv = this.rv; this.history = []; }

  defaults(resource, obj) {
    const spec = obj.spec;
    if (resource === 'pods' && spec && typeof spec === 'object') {
      spec.restartPolicy ??= 'Always';
      spec.terminationGracePeriodSeconds ??= 30;
      spec.dnsPolicy ??= 'ClusterFirst';
      spec.schedulerName ??= 'default-scheduler';
      spec.enableServiceLinks ??= true;
      spec.securityContext ??= {};
      for (const c of [...(spec.initContainers || []), ...(spec.containers || [])]) {
        if (!c || typeof c !== 'object') continue;
        c.terminationMessagePath ??= '/dev/termination-log';
        c.terminationMessagePolicy ??= 'File';
        c.imagePullPolicy ??= (typeof c.image === 'string' && (c.image.endsWith(':latest') || !c.image.includes(':')) ? 'Always' : 'IfNotPresent');
        if (c.resources && c.resources.limits && !c.resources.requests) c.resources.requests = { ...c.resources.limits };
        c.resources ??= {};
      }
      obj.status = { phase: 'Pending', qosClass: 'BestEffort' };
    }
    if (resource === 'services' && spec && typeof spec === 'object') {
      spec.type ??= 'ClusterIP';
      spec.sessionAffinity ??= 'None';
      for (const p of spec.ports || []) { if (p && typeof p === 'object') { p.protocol ??= 'TCP'; p.targetPort ??= p.port; } }
      if (!spec.clusterIP) spec.clusterIP = `${this.serviceNet}.${this.serviceIpNext++ % 250 + 2}`;
      spec.clusterIPs = [spec.clusterIP];
      obj.status ??= { loadBalancer: {} };
    }
    if (resource === 'secrets') {
      obj.type ??= 'Opaque';
      if (obj.stringData && typeof obj.stringData === 'object') {
        obj.data = { ...(obj.data || {}) };
        for (const [k, v] of Object.entries(obj.stringData)) obj.data[k] = Buffer.from(String(v)).toString('base64');
        delete obj.stringData;
      }
    }
    // No PV objects and no provisioner: a claim is Bound at once, as if a
    // dynamic provisioner had made its volume (the kubelet's is a directory).
    if (resource === 'persistentvolumeclaims' && spec && typeof spec === 'object') {
      spec.volumeMode ??= 'Filesystem';
      if (Array.isArray(spec.accessModes) && spec.accessModes.length) {
        obj.status = { phase: 'Bound', accessModes: [...spec.accessModes], capacity: { ...((spec.resources || {}).requests || {}) } };
      } else obj.status = { phase: 'Pending' };
    }
    if (resource === 'events') { obj.firstTimestamp ??= now(); obj.lastTimestamp ??= obj.firstTimestamp; obj.count ??= 1; obj.type ??= 'Normal'; }
  }

  // Creates an object as a client would (validated, defaulted).  Throws ApiError.
  create(resource, ns, body) {
    const R = RESOURCES[resource];
    if (body == null || typeof body !== 'object' || Array.isArray(body)) throw u.badRequest('the body of the request was in an unknown format');
    const obj = clone(body);
    if (obj.kind && obj.kind !== R.kind) throw u.badRequest(`the kind in the data (${obj.kind}) does not match the expected kind (${R.kind})`);
    if (obj.apiVersion && obj.apiVersion !== R.apiVersion) throw u.badRequest(`the API version in the data (${obj.apiVersion}) does not match the expected API version (${R.apiVersion})`);
    obj.kind = R.kind; obj.apiVersion = R.apiVersion;
    obj.metadata ??= {};
    if (typeof obj.metadata !== 'object') throw u.badRequest('metadata must be an object');
    const md = obj.metadata;
    if (R.namespaced) {
      if (md.namespace && md.namespace !== ns) throw u.badRequest('the namespace of the provided object does not match the namespace sent on the request');
      md.namespace = ns;
      const nsObj = this.get('namespaces', '', ns);
      if (!nsObj) throw u.notFound('namespaces', ns);
      if (nsObj.metadata.deletionTimestamp) throw new u.ApiError(403, 'Forbidden', `${resource} "${md.name || md.generateName}" is forbidden: unable to create new content in namespace ${ns} because it is being terminated`);
    } else delete md.namespace;
    if (!md.name && md.generateName) {
      const chars = 'bcdfghjklmnpqrstvwxz2456789';
      md.name = md.generateName + Array.from(crypto.randomBytes(5), (b) => chars[b % chars.length]).join('');
    }
    for (const f of ['uid', 'resourceVersion', 'creationTimestamp', 'deletionTimestamp', 'deletionGracePeriodSeconds', 'generation']) delete md[f];
    this.defaults(resource, obj);
    md.uid = crypto.randomUUID();
    const causes = validate(obj, R.nameRule);
    if (causes.length) throw u.invalid(R.kind, md.name || md.generateName || '', causes);
    if (this.get(resource, ns, md.name)) throw u.alreadyExists(resource, md.name);
    md.creationTimestamp = now();
    md.generation = 1;
    this.commit(resource, 'ADDED', obj);
    if (md.ownerReferences && md.ownerReferences.length) setImmediate(() => this.collectOrphan(resource, obj));
    return obj;
  }

  createInternal(resource, obj) {
    const R = RESOURCES[resource];
    obj.kind = R.kind; obj.apiVersion = R.apiVersion;
    // What the server makes itself must pass the validation clients' updates get.
    const causes = validate(obj, R.nameRule);
    if (causes.length) throw u.invalid(R.kind, obj.metadata.name, causes);
    obj.metadata.uid ??= crypto.randomUUID();
    obj.metadata.creationTimestamp ??= now();
    return this.commit(resource, 'ADDED', obj);
  }

  // PUT (and the result of a PATCH).  sub: '' or 'status'.
  update(resource, ns, name, body, sub) {
    const R = RESOURCES[resource];
    const old = this.get(resource, ns, name);
    if (!old) throw u.notFound(resource, name);
    if (body == null || typeof body !== 'object' || Array.isArray(body)) throw u.badRequest('the body of the request was in an unknown format');
    const obj = clone(body);
    obj.metadata ??= {};
    if (obj.metadata.name && obj.metadata.name !== name) throw u.badRequest(`the name of the object (${obj.metadata.name}) does not match the name on the URL (${name})`);
    if (R.namespaced && obj.metadata.namespace && obj.metadata.namespace !== ns) throw u.badRequest('the namespace of the provided object does not match the namespace sent on the request');
    if (obj.metadata.resourceVersion && obj.metadata.resourceVersion !== old.metadata.resourceVersion) throw u.conflict(resource, name);
    if (obj.metadata.uid && obj.metadata.uid !== old.metadata.uid) throw u.conflict(resource, name);
    obj.kind = R.kind; obj.apiVersion = R.apiVersion;
    const md = obj.metadata;
    md.name = name;
    if (R.namespaced) md.namespace = ns;
    for (const f of ['uid', 'creationTimestamp', 'deletionTimestamp', 'deletionGracePeriodSeconds', 'generation', 'generateName']) {
      if (old.metadata[f] !== undefined) md[f] = old.metadata[f]; else delete md[f];
    }
    let result;
    if (sub === 'status') {
      result = clone(old);
      result.status = obj.status;
    } else {
      result = obj;
      if (old.status !== undefined && resource !== 'namespaces') result.status = old.status;
      if (resource === 'secrets' && result.stringData) this.defaults('secrets', result);
      if (resource === 'pods') this.checkPodUpdate(old, result);
      if (resource === 'services' && result.spec && old.spec.clusterIP !== (result.spec.clusterIP ?? old.spec.clusterIP)) {
        throw u.invalid('Service', name, [u.cause('spec.clusterIP', 'FieldValueInvalid', 'field is immutable', result.spec.clusterIP)]);
      }
      if (resource === 'services' && result.spec) { result.spec.clusterIP ??= old.spec.clusterIP; result.spec.clusterIPs ??= old.spec.clusterIPs; }
      if (JSON.stringify(old.spec) !== JSON.stringify(result.spec)) md.generation = (old.metadata.generation || 1) + 1;
    }
    const causes = validate(result, R.nameRule);
    if (causes.length) throw u.invalid(R.kind, name, causes);
    if (old.metadata.deletionTimestamp && (result.metadata.finalizers || []).length === 0 && old.metadata.finalizers && old.metadata.finalizers.length) {
      this.commit(resource, 'MODIFIED', result, old);
      return this.finishDelete(resource, result);
    }
    return this.commit(resource, 'MODIFIED', result, old);
  }

  checkPodUpdate(old, neu) {
    const strip = (spec) => {
      const s = clone(spec || {});
      for (const c of [...(s.initContainers || []), ...(s.containers || [])]) delete c.image;
      delete s.activeDeadlineSeconds; delete s.tolerations; delete s.terminationGracePeriodSeconds;
      return JSON.stringify(s);
    };
    if (neu.spec && strip(old.spec) !== strip(neu.spec)) {
      throw u.invalid('Pod', old.metadata.name, [u.cause('spec', 'FieldValueForbidden', 'pod updates may not change fields other than `spec.containers[*].image`,`spec.initContainers[*].image`,`spec.activeDeadlineSeconds`,`spec.tolerations` (only additions to existing tolerations),`spec.terminationGracePeriodSeconds` (allow it to be set to 1 if it was previously negative)')]);
    }
  }

  // Internal status/field change (scheduler, kubelet).  Returns the new object or undefined.
  mutate(resource, ns, name, fn) {
    const old = this.get(resource, ns, name);
    if (!old) return undefined;
    const obj = clone(old);
    if (fn(obj) === false) return old;
    if (JSON.stringify(obj) === JSON.stringify(old)) return old;
    return this.commit(resource, 'MODIFIED', obj, old);
  }

  // DELETE.  opts: {gracePeriodSeconds, propagationPolicy, preconditions}.
  // Returns the object as it stands afterwards and whether it is gone.
  delete(resource, ns, name, opts = {}) {
    const old = this.get(resource, ns, name);
    if (!old) throw u.notFound(resource, name);
    const pre = opts.preconditions || {};
    if (pre.uid && pre.uid !== old.metadata.uid) throw new u.ApiError(409, 'Conflict', `Precondition failed: UID in precondition: ${pre.uid}, UID in object meta: ${old.metadata.uid}`);
    if (pre.resourceVersion && pre.resourceVersion !== old.metadata.resourceVersion) throw new u.ApiError(409, 'Conflict', `Precondition failed: ResourceVersion in precondition: ${pre.resourceVersion}, ResourceVersion in object meta: ${old.metadata.resourceVersion}`);
    const policy = opts.propagationPolicy || 'Background';
    if (!['Background', 'Foreground', 'Orphan'].includes(policy)) throw u.badRequest(`propagationPolicy: Unsupported value: "${policy}": supported values: "Foreground", "Background", "Orphan"`);
    if (policy === 'Orphan') {
      for (const dep of this.dependents(old.metadata.uid)) {
        this.mutate(this.resourceOf(dep), dep.metadata.namespace, dep.metadata.name, (o) => {
          o.metadata.ownerReferences = o.metadata.ownerReferences.filter((r) => r.uid !== old.metadata.uid);
          if (!o.metadata.ownerReferences.length) delete o.metadata.ownerReferences;
        });
      }
    }
    let grace = 0;
    if (resource === 'pods') {
      grace = opts.gracePeriodSeconds ?? old.spec.terminationGracePeriodSeconds ?? 30;
      const phase = old.status && old.status.phase;
      if (!old.spec.nodeName || phase === 'Succeeded' || phase === 'Failed') grace = 0;
      if (opts.gracePeriodSeconds === 0) grace = 0;
    }
    const finalizers = [...(old.metadata.finalizers || [])];
    if (policy === 'Foreground' && this.dependents(old.metadata.uid).length && !finalizers.includes('foregroundDeletion')) finalizers.push('foregroundDeletion');
    if (old.metadata.deletionTimestamp) {
      // Already terminating: only a shorter grace period (or 0) changes anything.
      if (resource === 'pods' && grace < (old.metadata.deletionGracePeriodSeconds ?? Infinity)) {
        if (grace === 0 && finalizers.length === 0) return { obj: this.finishDelete(resource, old), gone: true };
        const obj = this.mutate(resource, ns, name, (o) => { o.metadata.deletionGracePeriodSeconds = grace; o.metadata.deletionTimestamp = new Date(Date.now() + grace * 1000).toISOString().replace(/\.\d+Z$/, 'Z'); });
        return { obj, gone: false };
      }
      return { obj: old, gone: false };
    }
    if (finalizers.length === 0 && grace === 0) return { obj: this.finishDelete(resource, old), gone: true };
    const obj = this.mutate(resource, ns, name, (o) => {
      o.metadata.deletionTimestamp = new Date(Date.now() + grace * 1000).toISOString().replace(/\.\d+Z$/, 'Z');
      o.metadata.deletionGracePeriodSeconds = grace;
      if (finalizers.length) o.metadata.finalizers = finalizers;
    });
    if (finalizers.includes('foregroundDeletion')) {
      for (const dep of this.dependents(old.metadata.uid)) this.deleteQuiet(dep, { propagationPolicy: 'Foreground' });
      this.checkForeground(obj);
    }
    return { obj, gone: false };
  }

  // Removes an object for good (grace and finalizers done) and collects its dependents.
  finishDelete(resource, obj) {
    const cur = this.get(resource, obj.metadata.namespace, obj.metadata.name);
    if (!cur || cur.metadata.uid !== obj.metadata.uid) return obj;
    const gone = clone(cur);
    this.commit(resource, 'DELETED', gone, cur);
    for (const dep of this.dependents(gone.metadata.uid)) this.collectOrphan(this.resourceOf(dep), dep);
    for (const owner of this.objects.values()) {
      if ((owner.metadata.finalizers || []).includes('foregroundDeletion')) this.checkForeground(owner);
    }
    if (resource === 'namespaces') {
      for (const o of [...this.objects.values()]) if (o.metadata.namespace === gone.metadata.name) this.commit(this.resourceOf(o), 'DELETED', clone(o), o);
    }
    return gone;
  }

  dependents(uid) {
    const out = [];
    for (const o of this.objects.values()) if ((o.metadata.ownerReferences || []).some((r) => r.uid === uid)) out.push(o);
    return out;
  }

  ownerExists(dep, ref) {
    const o = this.byUid(ref.uid);
    if (!o || o.kind !== ref.kind || o.metadata.name !== ref.name) return false;
    const R = RESOURCES[this.resourceOf(o)];
    return !R.namespaced || o.metadata.namespace === dep.metadata.namespace;
  }

  // The garbage collector's rule: a dependent none of whose owners exists is deleted.
  collectOrphan(resource, dep) {
    const cur = this.get(resource, dep.metadata.namespace, dep.metadata.name);
    if (!cur || cur.metadata.uid !== dep.metadata.uid || cur.metadata.deletionTimestamp) return;
    const refs = cur.metadata.ownerReferences || [];
    if (refs.length && !refs.some((r) => this.ownerExists(cur, r))) this.deleteQuiet(cur, { propagationPolicy: 'Background' });
  }

  deleteQuiet(obj, opts) {
    try { this.delete(this.resourceOf(obj), obj.metadata.namespace, obj.metadata.name, opts); } catch (e) { if (!(e instanceof u.ApiError)) throw e; }
  }

  checkForeground(owner) {
    const cur = this.byUid(owner.metadata.uid);
    if (!cur || !(cur.metadata.finalizers || []).includes('foregroundDeletion')) return;
    const blocking = this.dependents(cur.metadata.uid).filter((d) => d.metadata.ownerReferences.some((r) => r.uid === cur.metadata.uid && r.blockOwnerDeletion));
    if (blocking.length) return;
    const resource = this.resourceOf(cur);
    const upd = this.mutate(resource, cur.metadata.namespace, cur.metadata.name, (o) => {
      o.metadata.finalizers = o.metadata.finalizers.filter((f) => f !== 'foregroundDeletion');
      if (!o.metadata.finalizers.length) delete o.metadata.finalizers;
    });
    if (!(upd.metadata.finalizers || []).length) {
      const grace = upd.metadata.deletionGracePeriodSeconds || 0;
      if (grace === 0 || resource !== 'pods') this.finishDelete(resource, upd);
    }
  }
}

module.exports = { Store, RESOURCES, clone, now };
