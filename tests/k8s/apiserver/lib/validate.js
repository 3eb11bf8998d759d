'use strict';
// Validation of objects: the official OpenAPI schema (through the
// kubernetes-models package, which validates with the schemas generated from
// Kubernetes' swagger.json) plus the rules a real apiserver enforces in Go
// code that the schema cannot express.
const u = require('./k8sutil');

const MODELS = {
  Pod: () => require('kubernetes-models/v1').Pod,
  Service: () => require('kubernetes-models/v1').Service,
  ConfigMap: () => require('kubernetes-models/v1').ConfigMap,
  Secret: () => require('kubernetes-models/v1').Secret,
  Node: () => require('kubernetes-models/v1').Node,
  Event: () => require('kubernetes-models/v1').Event,
  PersistentVolumeClaim: () => require('kubernetes-models/v1').PersistentVolumeClaim,
  Namespace: () => require('kubernetes-models/v1').Namespace,
  ServiceAccount: () => require('kubernetes-models/v1').ServiceAccount,
  Role: () => require('kubernetes-models/rbac.authorization.k8s.io/v1').Role,
  RoleBinding: () => require('kubernetes-models/rbac.authorization.k8s.io/v1').RoleBinding,
};

// "/spec/containers/0/name" -> "spec.containers[0].name"
function fieldPath(instancePath, extra) {
  const parts = instancePath.split('/').filter((p) => p !== '').map((p) => p.replace(/~1/g, '/').replace(/~0/g, '~'));
  if (extra !== undefined) parts.push(extra);
  let out = '';
  for (const p of parts) out += /^[0-9]+$/.test(p) ? `[${p}]` : (out ? '.' : '') + p;
  return out;
}

function valueAt(obj, instancePath) {
  let v = obj;
  for (const p of instancePath.split('/').filter((x) => x !== '')) { if (v == null) return undefined; v = v[p]; }
  return v;
}

function schemaCauses(obj) {
  const Model = MODELS[obj.kind] && MODELS[obj.kind]();
  if (!Model) return [];
  try {
    // The model copies the plain object; validate() throws with ajv's errors.
    new Model(JSON.parse(JSON.stringify(obj))).validate();
    return [];
  } catch (e) {
    const errs = e.errors || [{ instancePath: '', message: e.message, keyword: 'unknown', params: {} }];
    const seen = new Set();
    const causes = [];
    for (const er of errs) {
      let c;
      if (er.keyword === 'required') c = u.cause(fieldPath(er.instancePath, er.params.missingProperty), 'FieldValueRequired');
      else if (er.keyword === 'type') c = u.cause(fieldPath(er.instancePath), 'FieldValueTypeInvalid', er.message, valueAt(obj, er.instancePath));
      else c = u.cause(fieldPath(er.instancePath), 'FieldValueInvalid', er.message, valueAt(obj, er.instancePath));
      if (!seen.has(c.message)) { seen.add(c.message); causes.push(c); }
    }
    return causes;
  }
}

function metaCauses(obj, nameRule) {
  const causes = [];
  const md = obj.metadata || {};
  if (!md.name) causes.push(u.cause('metadata.name', 'FieldValueRequired', 'name or generateName is required'));
  else for (const m of nameRule(md.name)) causes.push(u.cause('metadata.name', 'FieldValueInvalid', m, md.name));
  for (const [field, map, valueRule] of [['metadata.labels', md.labels, u.labelValue], ['metadata.annotations', md.annotations, null]]) {
    if (map == null) continue;
    if (typeof map !== 'object' || Array.isArray(map)) continue; // the schema reports it
    let size = 0;
    for (const [k, v] of Object.entries(map)) {
      for (const m of u.qualifiedName(k)) causes.push(u.cause(field, 'FieldValueInvalid', m, k));
      if (typeof v !== 'string') continue;
      if (valueRule) for (const m of valueRule(v)) causes.push(u.cause(`${field}`, 'FieldValueInvalid', m, v));
      size += k.length + v.length;
    }
    if (!valueRule && size > 256 * 1024) causes.push(u.cause(field, 'FieldValueTooLong', 'must have at most 262144 bytes'));
  }
  const refs = md.ownerReferences;
  if (Array.isArray(refs)) {
    let controllers = 0;
    refs.forEach((r, i) => {
      const f = `metadata.ownerReferences[${i}]`;
      if (!r || typeof r !== 'object') return;
      if (r.controller === true) controllers++;
      if (typeof r.apiVersion === 'string' && r.apiVersion === '') causes.push(u.cause(`${f}.apiVersion`, 'FieldValueInvalid', 'version must not be empty', r.apiVersion));
      if (typeof r.kind === 'string' && r.kind === '') causes.push(u.cause(`${f}.kind`, 'FieldValueInvalid', 'kind must not be empty', r.kind));
      if (typeof r.name === 'string' && r.name === '') causes.push(u.cause(`${f}.name`, 'FieldValueInvalid', 'name must not be empty', r.name));
      if (typeof r.uid === 'string' && r.uid === '') causes.push(u.cause(`${f}.uid`, 'FieldValueInvalid', 'uid must not be empty', r.uid));
      if (r.uid && r.uid === md.uid) causes.push(u.cause(`${f}.uid`, 'FieldValueInvalid', 'cannot be the same as the uid of the object', r.uid));
    });
    if (controllers > 1) causes.push(u.cause('metadata.ownerReferences', 'FieldValueInvalid', 'Only one reference can have Controller set to true', refs));
  }
  return causes;
}

function podCauses(pod) {
  const causes = [];
  const spec = pod.spec || {};
  const names = new Set();
  for (const [list, field] of [[spec.initContainers, 'spec.initContainers'], [spec.containers, 'spec.containers']]) {
    (list || []).forEach((c, i) => {
      if (!c || typeof c.name !== 'string') return;
      for (const m of u.dns1123Label(c.name)) causes.push(u.cause(`${field}[${i}].name`, 'FieldValueInvalid', m, c.name));
      if (names.has(c.name)) causes.push(u.cause(`${field}[${i}].name`, 'FieldValueDuplicate', undefined, c.name));
      names.add(c.name);
      if (!c.image) causes.push(u.cause(`${field}[${i}].image`, 'FieldValueRequired'));
      const res = c.resources || {};
      for (const part of ['requests', 'limits']) {
        for (const [k, v] of Object.entries(res[part] || {})) {
          if (Number.isNaN(u.parseQuantity(v))) causes.push(u.cause(`${field}[${i}].resources.${part}[${k}]`, 'FieldValueInvalid', 'must be a valid quantity', v));
        }
      }
      for (const [k, v] of Object.entries(res.requests || {})) {
        const lim = (res.limits || {})[k];
        if (lim !== undefined && u.parseQuantity(v) > u.parseQuantity(lim)) causes.push(u.cause(`${field}[${i}].resources.requests`, 'FieldValueInvalid', `must be less than or equal to ${k} limit of ${lim}`, v));
      }
      const volNames = new Set((spec.volumes || []).map((v) => v && v.name));
      const mountPaths = new Set();
      (c.volumeMounts || []).forEach((vm, j) => {
        if (vm && vm.name && !volNames.has(vm.name)) causes.push(u.cause(`${field}[${i}].volumeMounts[${j}].name`, 'FieldValueNotFound', undefined, vm.name));
        if (vm && typeof vm.mountPath === 'string') {
          if (mountPaths.has(vm.mountPath)) causes.push(u.cause(`${field}[${i}].volumeMounts[${j}].mountPath`, 'FieldValueInvalid', 'must be unique', vm.mountPath));
          mountPaths.add(vm.mountPath);
        }
      });
    });
  }
  if (!Array.isArray(spec.containers) || spec.containers.length === 0) causes.push(u.cause('spec.containers', 'FieldValueRequired'));
  if (spec.hostname) for (const m of u.dns1123Label(spec.hostname)) causes.push(u.cause('spec.hostname', 'FieldValueInvalid', m, spec.hostname));
  if (spec.subdomain) for (const m of u.dns1123Label(spec.subdomain)) causes.push(u.cause('spec.subdomain', 'FieldValueInvalid', m, spec.subdomain));
  if (spec.restartPolicy && !['Always', 'OnFailure', 'Never'].includes(spec.restartPolicy)) causes.push(u.cause('spec.restartPolicy', 'FieldValueNotSupported', 'supported values: "Always", "OnFailure", "Never"', spec.restartPolicy));
  const vols = new Set();
  (spec.volumes || []).forEach((v, i) => {
    if (!v || !v.name) return;
    if (vols.has(v.name)) causes.push(u.cause(`spec.volumes[${i}].name`, 'FieldValueDuplicate', undefined, v.name));
    vols.add(v.name);
    for (const m of u.dns1123Label(v.name)) causes.push(u.cause(`spec.volumes[${i}].name`, 'FieldValueInvalid', m, v.name));
  });
  return causes;
}

// As the apiserver's ValidatePersistentVolumeClaimSpec: access modes and a
// storage request are required, modes from the known set.
function pvcCauses(pvc) {
  const causes = [];
  const spec = pvc.spec || {};
  const modes = spec.accessModes;
  if (!Array.isArray(modes) || modes.length === 0) causes.push(u.cause('spec.accessModes', 'FieldValueRequired', 'at least 1 access mode is required'));
  const known = ['ReadWriteOnce', 'ReadOnlyMany', 'ReadWriteMany', 'ReadWriteOncePod'];
  (Array.isArray(modes) ? modes : []).forEach((m) => {
    if (!known.includes(m)) causes.push(u.cause('spec.accessModes', 'FieldValueNotSupported', `supported values: ${known.map((k) => `"${k}"`).join(', ')}`, m));
  });
  const storage = ((spec.resources || {}).requests || {}).storage;
  if (storage === undefined) causes.push(u.cause('spec.resources[storage]', 'FieldValueRequired'));
  else if (Number.isNaN(u.parseQuantity(storage)) || u.parseQuantity(storage) <= 0) causes.push(u.cause('spec.resources[storage]', 'FieldValueInvalid', 'must be greater than zero', storage));
  return causes;
}

function serviceCauses(svc) {
  const causes = [];
  const spec = svc.spec || {};
  const ports = spec.ports || [];
  if (ports.length === 0 && spec.clusterIP !== 'None' && spec.type !== 'ExternalName') causes.push(u.cause('spec.ports', 'FieldValueRequired'));
  ports.forEach((p, i) => {
    if (ports.length > 1 && !p.name) causes.push(u.cause(`spec.ports[${i}].name`, 'FieldValueRequired'));
    if (p.name) for (const m of u.dns1123Label(p.name)) causes.push(u.cause(`spec.ports[${i}].name`, 'FieldValueInvalid', m, p.name));
    if (typeof p.port === 'number' && (p.port < 1 || p.port > 65535)) causes.push(u.cause(`spec.ports[${i}].port`, 'FieldValueInvalid', 'must be between 1 and 65535, inclusive', p.port));
  });
  for (const [k, v] of Object.entries(spec.selector || {})) {
    for (const m of u.qualifiedName(k)) causes.push(u.cause('spec.selector', 'FieldValueInvalid', m, k));
    if (typeof v === 'string') for (const m of u.labelValue(v)) causes.push(u.cause('spec.selector', 'FieldValueInvalid', m, v));
  }
  return causes;
}

function dataKeyCauses(obj) {
  const causes = [];
  for (const field of ['data', 'binaryData', 'stringData']) {
    for (const k of Object.keys(obj[field] || {})) {
      if (k.length > 253 || !/^[-._a-zA-Z0-9]+$/.test(k)) causes.push(u.cause(`${field}[${k}]`, 'FieldValueInvalid', "a valid config key must consist of alphanumeric characters, '-', '_' or '.' (e.g. 'key.name',  or 'KEY_NAME',  or 'key-name', regex used for validation is '[-._a-zA-Z0-9]+')", k));
    }
  }
  return causes;
}

// Returns the list of causes; empty when the object is valid.
function validate(obj, nameRule) {
  const causes = schemaCauses(obj);
  causes.push(...metaCauses(obj, nameRule));
  if (obj.kind === 'Pod') causes.push(...podCauses(obj));
  if (obj.kind === 'Service') causes.push(...serviceCauses(obj));
  if (obj.kind === 'PersistentVolumeClaim') causes.push(...pvcCauses(obj));
  if (obj.kind === 'ConfigMap' || obj.kind === 'Secret') causes.push(...dataKeyCauses(obj));
  return causes;
}

module.exports = { validate, fieldPath };
