// The e2e harness: a fresh mock upstream and a fresh gateway (own temp cache dir), both on
// port 0, their addresses read from the "... listening on http://..." line they print, both
// stopped when the test ends (passed, failed or timed out), and killed if this process exits.
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync, existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

import OpenAI from 'openai';
import Anthropic from '@anthropic-ai/sdk';

const here = path.dirname(fileURLToPath(import.meta.url));
export const BIN = process.env.LLMCACHE_BIN || path.resolve(here, '../../build/llmcache');

const STARTUP_TIMEOUT_MS = 10_000;
const STOP_TIMEOUT_MS = 5_000;

// Every child still running; killed synchronously if the test process exits abruptly.
const live = new Set();
process.on('exit', () => {
  for (const child of live) {
    try { child.kill('SIGKILL'); } catch { /* already gone */ }
  }
});

// The environment without any CACHE_* setting of the caller's, so the gateway runs on its
// defaults plus what the test passes on the command line.
function cleanEnv() {
  const env = {};
  for (const [k, v] of Object.entries(process.env)) if (!k.startsWith('CACHE_')) env[k] = v;
  return env;
}

// Starts `llmcache <args>` and resolves with { child, url, stderr() } once it printed where
// it listens. Rejects (and kills the child) if it exits or stays silent first.
function startProcess(what, args) {
  if (!existsSync(BIN)) throw new Error(`llmcache binary not found at ${BIN} (set LLMCACHE_BIN)`);
  const child = spawn(BIN, args, { env: cleanEnv(), stdio: ['ignore', 'pipe', 'pipe'] });
  live.add(child);
  let stdout = '';
  let stderr = '';
  child.stderr.setEncoding('utf8');
  child.stderr.on('data', (d) => { stderr += d; });
  child.stdout.setEncoding('utf8');
  const exited = new Promise((resolve) => child.once('exit', (code, signal) => {
    live.delete(child);
    resolve({ code, signal });
  }));
  const ready = new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new Error(`${what} did not report its port within ${STARTUP_TIMEOUT_MS} ms\nstdout: ${stdout}\nstderr: ${stderr}`));
    }, STARTUP_TIMEOUT_MS);
    child.stdout.on('data', (d) => {
      stdout += d;
      const m = stdout.match(new RegExp(`${what} listening on (http://[^\\s]+)`));
      if (m) {
        clearTimeout(timer);
        resolve(m[1]);
      }
    });
    child.once('error', (err) => { clearTimeout(timer); reject(err); });
    exited.then(({ code, signal }) => {
      clearTimeout(timer);
      reject(new Error(`${what} exited (code ${code}, signal ${signal}) before listening\nstderr: ${stderr}`));
    });
  });
  return ready.then((url) => ({
    child,
    url,
    exited,
    stderr: () => stderr,
    async stop() {
      if (child.exitCode !== null || child.signalCode !== null) return exited;
      child.kill('SIGTERM');
      const timer = setTimeout(() => child.kill('SIGKILL'), STOP_TIMEOUT_MS);
      const r = await exited;
      clearTimeout(timer);
      return r;
    },
  }));
}

export const startMock = () => startProcess('mock-upstream', ['mock-upstream', '--listen', '127.0.0.1:0']);

export function startGateway(mockUrl, cacheDir, extraArgs = []) {
  return startProcess('llmcache', [
    'serve', '--listen', '127.0.0.1:0', '--upstream', `${mockUrl}/v1`, '--cache-dir', cacheDir,
    ...extraArgs,
  ]);
}

// A mock upstream and a gateway in front of it, for one test: `t` is the node:test context,
// whose after-hook stops both and removes the cache dir whatever the test's outcome.
export async function startStack(t, { gatewayArgs = [] } = {}) {
  const cacheDir = mkdtempSync(path.join(tmpdir(), 'llmcache-e2e-'));
  const stack = { cacheDir, mock: null, gateway: null };
  t.after(async () => {
    if (stack.gateway) await stack.gateway.stop();
    if (stack.mock) await stack.mock.stop();
    rmSync(cacheDir, { recursive: true, force: true });
  });
  stack.mock = await startMock();
  stack.gateway = await startGateway(stack.mock.url, cacheDir, gatewayArgs);
  stack.gatewayArgs = gatewayArgs;

  // Stops the gateway (gracefully: background disk writes are flushed) and starts a new one
  // on the same cache dir and mock.
  stack.restartGateway = async () => {
    const { code, signal } = await stack.gateway.stop();
    if (code !== 0) throw new Error(`gateway stopped with code ${code}, signal ${signal}\n${stack.gateway.stderr()}`);
    stack.gateway = await startGateway(stack.mock.url, cacheDir, gatewayArgs);
  };
  stack.mockStats = async () => {
    const r = await fetch(`${stack.mock.url}/mock/stats`);
    if (!r.ok) throw new Error(`mock stats: HTTP ${r.status}`);
    return r.json();
  };
  stack.upstreamCalls = async () => (await stack.mockStats()).calls;
  stack.openai = (opts = {}) => new OpenAI({
    baseURL: `${stack.gateway.url}/v1`, apiKey: 'sk-test', maxRetries: 0, timeout: 20_000, ...opts,
  });
  stack.anthropic = (opts = {}) => new Anthropic({
    baseURL: stack.gateway.url, apiKey: 'sk-test', maxRetries: 0, timeout: 20_000, ...opts,
  });
  return stack;
}

// The cache headers of a fetch Response (or a Headers object).
export function cacheHeaders(responseOrHeaders) {
  const h = responseOrHeaders.headers ?? responseOrHeaders;
  return {
    status: h.get('x-llmcache-status'),
    layer: h.get('x-llmcache-layer'),
    key: h.get('x-llmcache-key'),
    age: h.get('age'),
  };
}

export const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

// Reads an OpenAI chat stream to its end: its chunks and the text they carry.
export async function collectChat(stream) {
  const chunks = [];
  let text = '';
  for await (const chunk of stream) {
    chunks.push(chunk);
    text += chunk.choices?.[0]?.delta?.content ?? '';
  }
  return { chunks, text };
}

// A fetch for a client's `fetch` option that notes, for every answer, its path and its
// x-llmcache-status (the AI SDK and LangChain hide the HTTP response of a stream).
export function recordingFetch() {
  const seen = [];
  const wrapped = async (input, init) => {
    const r = await fetch(input, init);
    const url = typeof input === 'string' || input instanceof URL ? String(input) : input.url;
    seen.push({ path: new URL(url).pathname, status: r.headers.get('x-llmcache-status') });
    return r;
  };
  return { fetch: wrapped, seen, statuses: () => seen.map((x) => x.status), paths: () => seen.map((x) => x.path) };
}

// A copy of `value` without the members named in `drop` (at any depth): what differs between
// two answers by design (response headers, a client-side timestamp) before a deep-equal.
export function without(value, drop) {
  return JSON.parse(JSON.stringify(value, (k, v) => (drop.includes(k) ? undefined : v)));
}

// Sets environment variables for one test; its after-hook restores them (unset ones unset).
export function setEnv(t, vars) {
  const saved = Object.fromEntries(Object.keys(vars).map((k) => [k, process.env[k]]));
  t.after(() => {
    for (const [k, v] of Object.entries(saved)) {
      if (v === undefined) delete process.env[k]; else process.env[k] = v;
    }
  });
  Object.assign(process.env, vars);
}
