'use strict';
// Pieces of Kubernetes API machinery the test server shares: Status objects,
// quantities, label/field selectors, and the name/label rules that the
// OpenAPI schema does not express (they live in Go code in a real apiserver).

function status(code, reason, message, details) {
  const s = { kind: 'Status', apiVersion: 'v1', metadata: {}, status: 'Failure', message, reason, code };
  if (details) s.details = details;
  return s;
}

class ApiError extends Error {
  constructor(code, reason, message, details, headers) {
    super(message);
    this.status = status(code, reason, message, details);
    this.headers = headers || {};
  }
}

const notFound = (resource, name) =>
  new ApiError(404, 'NotFound', `${resource} "${name}" not found`, { name, kind: resource });
const alreadyExists = (resource, name) =>
  new ApiError(409, 'AlreadyExists', `${resource} "${name}" already exists`, { name, kind: resource });
const conflict = (resource, name) =>
  new ApiError(409, 'Conflict', `Operation cannot be fulfilled on ${resource} "${name}": the object has been modified; please apply your changes to the latest version and try again`, { name, kind: resource });
const badRequest = (message) => new ApiError(400, 'BadRequest', message);

// causes: [{field, reason, message}] as a real apiserver reports them.
function invalid(kind, name, causes) {
  const msg = `${kind} "${name}" is invalid: ` +
    (causes.length === 1 ? causes[0].message : '[' + causes.map((c) => c.message).join(', ') + ']');
  return new ApiError(422, 'Invalid', msg, { name, kind: kind.toLowerCase() + 's', causes: causes.map((c) => ({ reason: c.reason, message: c.message, field: c.field })) });
}

function cause(field, reason, detail, value) {
  const kindText = { FieldValueInvalid: 'Invalid value', FieldValueRequired: 'Required value',
    FieldValueForbidden: 'Forbidden', FieldValueTypeInvalid: 'Invalid value', FieldValueDuplicate: 'Duplicate value' }[reason] || reason;
  let message = `${field}: ${kindText}`;
  if (value !== undefined) message += `: ${JSON.stringify(value)}`;
  if (detail) message += `: ${detail}`;
  return { field, reason, message };
}

// ---- quantities -----------------------------------------------------------
const SUFFIX = { '': 1, m: 1e-3, k: 1e3, M: 1e6, G: 1e9, T: 1e12, P: 1e15, E: 1e18,
  Ki: 1024, Mi: 1024 ** 2, Gi: 1024 ** 3, Ti: 1024 ** 4, Pi: 1024 ** 5, Ei: 1024 ** 6 };
// Returns the quantity as a Number in base units, or NaN when malformed.
function parseQuantity(q) {
  if (typeof q === 'number') return q;
  if (typeof q !== 'string') return NaN;
  const m = /^([+-]?[0-9.]+(?:[eE][+-]?[0-9]+)?)(m|k|M|G|T|P|E|Ki|Mi|Gi|Ti|Pi|Ei)?$/.exec(q.trim());
  if (!m) return NaN;
  if (/[eE]/.test(m[1]) && m[2]) return NaN;
  return Number(m[1]) * SUFFIX[m[2] || ''];
}

// ---- name and label rules (k8s.io/apimachinery/pkg/util/validation) --------
const DNS1123_LABEL = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?$/;
const DNS1123_SUBDOMAIN = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$/;
const DNS1035_LABEL = /^[a-z]([-a-z0-9]*[a-z0-9])?$/;
const QUALIFIED_NAME = /^([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]$/;
const LABEL_VALUE = /^(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?$/;

function dns1123Subdomain(v) {
  const e = [];
  if (v.length > 253) e.push('must be no more than 253 characters');
  if (!DNS1123_SUBDOMAIN.test(v)) e.push("a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' or '.', and must start and end with an alphanumeric character (e.g. 'example.com', regex used for validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*')");
  return e;
}
function dns1123Label(v) {
  const e = [];
  if (v.length > 63) e.push('must be no more than 63 characters');
  if (!DNS1123_LABEL.test(v)) e.push("a lowercase RFC 1123 label must consist of lower case alphanumeric characters or '-', and must start and end with an alphanumeric character (e.g. 'my-name',  or '123-abc', regex used for validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?')");
  return e;
}
function dns1035Label(v) {
  const e = [];
  if (v.length > 63) e.push('must be no more than 63 characters');
  if (!DNS1035_LABEL.test(v)) e.push("a DNS-1035 label must consist of lower case alphanumeric characters or '-', start with an alphabetic character, and end with an alphanumeric character (e.g. 'my-name',  or 'abc-123', regex used for validation is '[a-z]([-a-z0-9]*[a-z0-9])?')");
  return e;
}
function qualifiedName(v) {
  const e = [];
  const parts = v.split('/');
  let name = v;
  if (parts.length > 2) return ["a qualified name must consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character (e.g. 'MyName',  or 'my.name',  or '123-abc', regex used for validation is '([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]') with an optional DNS subdomain prefix and '/' (e.g. 'example.com/MyName')"];
  if (parts.length === 2) {
    name = parts[1];
    if (parts[0].length === 0) e.push('prefix part must be non-empty');
    else for (const m of dns1123Subdomain(parts[0])) e.push('prefix part ' + m);
  }
  if (name.length === 0) e.push('name part must be non-empty');
  else if (name.length > 63) e.push('name part must be no more than 63 characters');
  else if (!QUALIFIED_NAME.test(name)) e.push("name part must consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character (e.g. 'MyName',  or 'my.name',  or '123-abc', regex used for validation is '([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]')");
  return e;
}
function labelValue(v) {
  const e = [];
  if (v.length > 63) e.push('must be no more than 63 characters');
  if (!LABEL_VALUE.test(v)) e.push("a valid label must be an empty string or consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character (e.g. 'MyValue',  or 'my_value',  or '12345', regex used for validation is '(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?')");
  return e;
}

// ---- label selectors ---------------------------------------------------------
// Grammar of k8s.io/apimachinery/pkg/labels: comma-separated requirements;
// key, !key, key=v, key==v, key!=v, key in (a,b), key notin (a,b).
function parseLabelSelector(text) {
  const reqs = [];
  if (!text) return reqs;
  const parts = [];
  let depth = 0, cur = '';
  for (const ch of text) {
    if (ch === '(') depth++;
    if (ch === ')') depth--;
    if (ch === ',' && depth === 0) { parts.push(cur); cur = ''; } else cur += ch;
  }
  parts.push(cur);
  for (let p of parts) {
    p = p.trim();
    let m;
    if ((m = /^!\s*([^\s=!(),]+)$/.exec(p))) reqs.push({ key: m[1], op: '!exists' });
    else if ((m = /^([^\s=!(),]+)\s+(in|notin)\s+\(([^()]*)\)$/.exec(p)))
      reqs.push({ key: m[1], op: m[2], values: m[3].split(',').map((s) => s.trim()).filter((s) => s !== '' || m[3].trim() === '') });
    else if ((m = /^([^\s=!(),]+)\s*(==|=|!=)\s*([^\s=!(),]*)$/.exec(p)))
      reqs.push({ key: m[1], op: m[2] === '!=' ? '!=' : '=', values: [m[3]] });
    else if ((m = /^([^\s=!(),]+)$/.exec(p))) reqs.push({ key: m[1], op: 'exists' });
    else throw badRequest(`unable to parse requirement: ${JSON.stringify(p)}`);
  }
  for (const r of reqs) {
    const e = qualifiedName(r.key);
    if (e.length) throw badRequest(`unable to parse requirement: invalid label key "${r.key}": ${e.join('; ')}`);
    for (const v of r.values || []) if (labelValue(v).length) throw badRequest(`unable to parse requirement: invalid label value: "${v}"`);
  }
  return reqs;
}
function matchLabels(reqs, labels) {
  labels = labels || {};
  return reqs.every((r) => {
    const has = Object.prototype.hasOwnProperty.call(labels, r.key);
    switch (r.op) {
      case 'exists': return has;
      case '!exists': return !has;
      case '=': return has && labels[r.key] === r.values[0];
      case '!=': return !has || labels[r.key] !== r.values[0];
      case 'in': return has && r.values.includes(labels[r.key]);
      case 'notin': return !has || !r.values.includes(labels[r.key]);
    }
    return false;
  });
}
// A Service's spec.selector: map equality.
function selectorMatches(selector, labels) {
  if (!selector || Object.keys(selector).length === 0) return false;
  labels = labels || {};
  return Object.entries(selector).every(([k, v]) => labels[k] === v);
}

// Field selectors: metadata.name, metadata.namespace and a few pod fields.
const FIELDS = {
  'metadata.name': (o) => o.metadata.name,
  'metadata.namespace': (o) => o.metadata.namespace || '',
  'spec.nodeName': (o) => (o.spec && o.spec.nodeName) || '',
  'status.phase': (o) => (o.status && o.status.phase) || '',
  'involvedObject.name': (o) => (o.involvedObject && o.involvedObject.name) || '',
  'involvedObject.uid': (o) => (o.involvedObject && o.involvedObject.uid) || '',
};
function parseFieldSelector(text) {
  if (!text) return [];
  return text.split(',').map((p) => {
    const m = /^([^=!]+?)\s*(==|=|!=)\s*(.*)$/.exec(p.trim());
    if (!m) throw badRequest(`invalid selector: '${text}'; can't understand '${p}'`);
    if (!FIELDS[m[1]]) throw badRequest(`"${m[1]}" is not a known field selector: only "${Object.keys(FIELDS).join('", "')}"`);
    return { get: FIELDS[m[1]], neg: m[2] === '!=', value: m[3] };
  });
}
const matchFields = (reqs, obj) => reqs.every((r) => (r.get(obj) === r.value) !== r.neg);

// RFC 7386 JSON merge patch.
function mergePatch(target, patch) {
  if (patch === null || typeof patch !== 'object' || Array.isArray(patch)) return patch;
  const out = target && typeof target === 'object' && !Array.isArray(target) ? { ...target } : {};
  for (const [k, v] of Object.entries(patch)) {
    if (v === null) delete out[k];
    else out[k] = mergePatch(out[k], v);
  }
  return out;
}

// RFC 6902 JSON patch (add, remove, replace, move, copy, test).
function jsonPatch(doc, ops) {
  if (!Array.isArray(ops)) throw badRequest('json patch must be an array of operations');
  doc = JSON.parse(JSON.stringify(doc));
  const ptr = (p) => p.split('/').slice(1).map((s) => s.replace(/~1/g, '/').replace(/~0/g, '~'));
  const walk = (path) => {
    const keys = ptr(path);
    const last = keys.pop();
    let parent = doc;
    for (const k of keys) {
      if (parent == null || typeof parent !== 'object' || !(k in parent)) throw new ApiError(422, 'Invalid', `the server rejected our request due to an error in our request: path ${path} does not exist`);
      parent = parent[k];
    }
    return [parent, last];
  };
  const get = (path) => { const [p, k] = walk(path); if (p == null || !(k in p)) throw new ApiError(422, 'Invalid', `path ${path} does not exist`); return p[k]; };
  const remove = (path) => { const [p, k] = walk(path); const v = get(path); if (Array.isArray(p)) p.splice(Number(k), 1); else delete p[k]; return v; };
  const add = (path, value) => {
    if (path === '') { doc = value; return; }
    const [p, k] = walk(path);
    if (Array.isArray(p)) p.splice(k === '-' ? p.length : Number(k), 0, value); else p[k] = value;
  };
  for (const op of ops) {
    switch (op.op) {
      case 'add': add(op.path, op.value); break;
      case 'remove': remove(op.path); break;
      case 'replace': remove(op.path); add(op.path, op.value); break;
      case 'move': add(op.path, remove(op.from)); break;
      case 'copy': add(op.path, JSON.parse(JSON.stringify(get(op.from)))); break;
      case 'test': if (JSON.stringify(get(op.path)) !== JSON.stringify(op.value)) throw new ApiError(422, 'Invalid', `the server rejected our request due to an error in our request: testing value ${op.path} failed`); break;
      default: throw badRequest(`Unexpected kind: ${op.op}`);
    }
  }
  return doc;
}

module.exports = {
  status, ApiError, notFound, alreadyExists, conflict, badRequest, invalid, cause,
  parseQuantity, dns1123Subdomain, dns1123Label, dns1035Label, qualifiedName, labelValue,
  parseLabelSelector, matchLabels, selectorMatches, parseFieldSelector, matchFields,
  mergePatch, jsonPatch,
};
