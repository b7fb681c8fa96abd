// The /dashboard page in headless Chromium against a real gateway: scripted traffic (hits and
// misses, two models on two platforms), then the page must render its charts without a console
// error and show the same figures as GET /cache/analytics, refresh itself, and keep the admin
// token out of the HTML and the address bar. A screenshot goes to $LLMCACHE_BINARY_DIR/dashboard.png.
//
// DASHBOARD_FROM_SOURCE=1 serves the page's files from src/admin/dashboard/ instead of the
// gateway (for editing the page without rebuilding; the data still comes from the gateway).
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync, readFileSync, existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

import { chromium } from 'playwright-core';

const here = path.dirname(fileURLToPath(import.meta.url));
const BIN = process.env.LLMCACHE_BIN || path.resolve(here, '../../build/llmcache');
const OUT_DIR = process.env.LLMCACHE_BINARY_DIR || path.resolve(here, '../../build');
const CHROMIUM = process.env.CHROMIUM || '/usr/bin/chromium';
const TOKEN = 'dashboard-test-token-7f3a';

// --- processes ---------------------------------------------------------------------------------
const live = new Set();
const killLive = () => { for (const c of live) { try { c.kill('SIGKILL'); } catch { /* gone */ } } };
process.on('exit', killLive);
// A child still running once every test is done (a cleanup step failed) would keep this file's
// process alive, with its pipes, until --test-timeout: kill it, so the failure shows at once.
after(killLive);

// Cleanup in the reverse order of setup, every step even when one before it throws. node:test
// runs a test's t.after hooks in the order they were added and skips the rest once one throws:
// the test S3 server's data dir, added first, was removed while both gateways (publishing every
// second) and the S3 server still wrote there (ENOTEMPTY under load), and the processes after it
// were never stopped, so the file hung until its 90 s timeout.
const cleanups = new WeakMap();
function defer(t, step) {
  let steps = cleanups.get(t);
  if (!steps) {
    steps = [];
    cleanups.set(t, steps);
    t.after(async () => {
      const errors = [];
      while (steps.length > 0) {
        try { await steps.pop()(); } catch (e) { errors.push(e); }
      }
      if (errors.length === 1) throw errors[0];
      if (errors.length > 1) throw new AggregateError(errors, 'cleanup failed');
    });
  }
  steps.push(step);
}

function cleanEnv() {
  const env = {};
  for (const [k, v] of Object.entries(process.env)) if (!k.startsWith('CACHE_')) env[k] = v;
  return env;
}

// Starts `llmcache <args>`; resolves with { url, stop() } once it printed where it listens.
function start(what, args) {
  if (!existsSync(BIN)) throw new Error(`llmcache binary not found at ${BIN} (set LLMCACHE_BIN)`);
  const child = spawn(BIN, args, { env: cleanEnv(), stdio: ['ignore', 'pipe', 'pipe'] });
  live.add(child);
  let stdout = '';
  let stderr = '';
  child.stdout.setEncoding('utf8');
  child.stderr.setEncoding('utf8');
  child.stderr.on('data', (d) => { stderr += d; });
  const exited = new Promise((resolve) => child.once('exit', (code, signal) => { live.delete(child); resolve({ code, signal }); }));
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => { child.kill('SIGKILL'); reject(new Error(`${what} did not start: ${stderr}`)); }, 10_000);
    child.stdout.on('data', (d) => {
      stdout += d;
      const m = stdout.match(new RegExp(`${what} listening on (http://[^\\s]+)`));
      if (m) { clearTimeout(timer); resolve({ url: m[1], stderr: () => stderr, stop }); }
    });
    exited.then(({ code, signal }) => { clearTimeout(timer); reject(new Error(`${what} exited (${code}, ${signal}): ${stderr}`)); });
    async function stop() {
      if (child.exitCode === null && child.signalCode === null) {
        child.kill('SIGTERM');
        const t = setTimeout(() => child.kill('SIGKILL'), 5_000);
        await exited;
        clearTimeout(t);
      }
    }
  });
}

async function startStack(t, extraSets = {}) {
  const dir = mkdtempSync(path.join(tmpdir(), 'llmcache-dashboard-'));
  const stack = {};
  defer(t, async () => {
    if (stack.gateway) await stack.gateway.stop();
    if (stack.mock) await stack.mock.stop();
    rmSync(dir, { recursive: true, force: true });
  });
  stack.mock = await start('mock-upstream', ['mock-upstream', '--listen', '127.0.0.1:0']);
  // Another host name for the same mock, so that the default upstream is not taken for "mockb".
  const mockb = stack.mock.url.replace('127.0.0.1', 'localhost');
  const sets = { CACHE_PLATFORMS: `mockb=${mockb}/v1`, ...extraSets };
  const args = ['serve', '--listen', '127.0.0.1:0', '--upstream', `${stack.mock.url}/v1`, '--cache-dir', path.join(dir, 'cache')];
  for (const [k, v] of Object.entries(sets)) args.push('--set', `${k}=${v}`);
  stack.gateway = await start('llmcache', args);
  return stack;
}

// --- traffic -----------------------------------------------------------------------------------
async function chat(base, route, model, prompt) {
  const res = await fetch(`${base}${route}/chat/completions`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', authorization: 'Bearer sk-test' },
    body: JSON.stringify({ model, messages: [{ role: 'user', content: prompt }] }),
  });
  await res.arrayBuffer();
  assert.equal(res.status, 200, `${model} ${prompt}`);
  return res.headers.get('x-llmcache-status');
}

// 7 cacheable requests: gpt-4o-mini on the default platform (openai) 2 misses + 2 hits,
// gpt-4o on the platform "mockb" 1 miss + 1 hit, and one more gpt-4o-mini miss.
async function scriptedTraffic(base) {
  const seen = [];
  seen.push(await chat(base, '/v1', 'gpt-4o-mini', 'Explain what a hash table is.'));
  seen.push(await chat(base, '/v1', 'gpt-4o-mini', 'Explain what a hash table is.'));
  seen.push(await chat(base, '/v1', 'gpt-4o-mini', 'Explain what a hash table is.'));
  seen.push(await chat(base, '/v1', 'gpt-4o-mini', 'Write a haiku about caching.'));
  seen.push(await chat(base, '/mockb/v1', 'gpt-4o', 'Translate "good morning" into French.'));
  seen.push(await chat(base, '/mockb/v1', 'gpt-4o', 'Translate "good morning" into French.'));
  seen.push(await chat(base, '/v1', 'gpt-4o-mini', 'What is 17 * 23?'));
  assert.deepEqual(seen, ['MISS', 'HIT', 'HIT', 'MISS', 'MISS', 'HIT', 'MISS']);
}

async function admin(base, pathAndQuery) {
  const res = await fetch(`${base}${pathAndQuery}`, { headers: { authorization: `Bearer ${TOKEN}` } });
  assert.equal(res.status, 200, `${pathAndQuery}: ${res.status}`);
  return res.json();
}

// Events reach the index in the background: wait until the analytics count them all.
async function analyticsWith(base, requests, ready = () => true) {
  const deadline = Date.now() + 15_000;
  for (;;) {
    const a = await admin(base, '/cache/analytics');
    if (a.total_requests === requests && ready(a)) return a;
    if (Date.now() > deadline) assert.fail(`analytics counted ${a.total_requests} requests, expected ${requests}`);
    await new Promise((r) => setTimeout(r, 200));
  }
}

// --- browser -----------------------------------------------------------------------------------
async function openBrowser(t) {
  const profile = mkdtempSync(path.join(tmpdir(), 'llmcache-chromium-'));
  const context = await chromium.launchPersistentContext(profile, {
    executablePath: CHROMIUM,
    headless: true,
    args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
      '--disable-background-networking', '--disable-component-update', '--disable-sync'],
    viewport: { width: 1400, height: 1000 },
    deviceScaleFactor: 1,
  });
  defer(t, async () => {
    await context.close();
    rmSync(profile, { recursive: true, force: true });
  });
  if (process.env.DASHBOARD_FROM_SOURCE === '1') {
    const src = path.resolve(here, '../../src/admin/dashboard');
    const files = {
      '/dashboard': ['index.html', 'text/html'], '/dashboard/app.js': ['app.js', 'text/javascript'],
      '/dashboard/app.css': ['app.css', 'text/css'], '/dashboard/chart.js': ['vendor/chart.umd.min.js', 'text/javascript'],
    };
    await context.route(/\/dashboard(\/.*)?(\?.*)?$/, (route) => {
      const f = files[new URL(route.request().url()).pathname];
      return f ? route.fulfill({ body: readFileSync(path.join(src, f[0])), contentType: f[1] }) : route.continue();
    });
  }
  const page = context.pages()[0] ?? await context.newPage();
  const problems = [];
  page.on('console', (m) => { if (m.type() === 'error' || m.type() === 'warning') problems.push(`console ${m.type()}: ${m.text()}`); });
  page.on('pageerror', (e) => problems.push(`page error: ${e.message}`));
  page.on('requestfailed', (r) => problems.push(`request failed: ${r.url()} ${r.failure()?.errorText}`));
  page.on('response', (r) => { if (r.status() >= 400) problems.push(`HTTP ${r.status()} for ${r.url()}`); });
  return { page, problems };
}

const text = (page, figure) => page.locator(`[data-figure="${figure}"]`).first().textContent();
const intText = (v) => Math.round(v).toLocaleString('en-US');
const pctText = (v) => `${(v * 100).toFixed(1)}%`;
const usdText = (v) => {
  const a = Math.abs(v);
  return `$${a === 0 || a >= 1 ? v.toFixed(2) : v.toFixed(Math.min(8, 2 - Math.floor(Math.log10(a))))}`;
};

test('The dashboard shows the figures of /cache/analytics in rendered charts and refreshes itself', async (t) => {
  const stack = await startStack(t, { CACHE_ADMIN_TOKEN: TOKEN });
  const base = stack.gateway.url;
  await scriptedTraffic(base);
  // Hit counts land on entry rows that the gateway writes in the background: wait for both.
  const a = await analyticsWith(base, 7, (x) => x.hot_keys.length >= 2);
  assert.equal(a.hits, 3);
  const p = await admin(base, '/cache/patterns');

  // The page itself carries no token and no data.
  if (process.env.DASHBOARD_FROM_SOURCE !== '1') {
    const html = await fetch(`${base}/dashboard`);
    assert.equal(html.status, 200, 'GET /dashboard (is it routed to AdminApi::dashboard?)');
    assert.match(html.headers.get('content-type'), /^text\/html/);
    assert.match(html.headers.get('content-security-policy'), /script-src 'self'/);
    assert.ok(!(await html.text()).includes(TOKEN));
  }

  const { page, problems } = await openBrowser(t);
  await page.goto(`${base}/dashboard?window=all&refresh=5#token=${TOKEN}`);
  await page.waitForSelector('body[data-state="ready"]', { timeout: 20_000 });
  assert.ok(!page.url().includes(TOKEN), `the token stays in the address bar: ${page.url()}`);

  // Figures as text, equal to what the API says.
  assert.equal(await text(page, 'total_requests'), intText(a.total_requests));
  assert.equal(await text(page, 'hits'), intText(a.hits));
  assert.equal(await text(page, 'misses'), intText(a.misses));
  assert.equal(await text(page, 'hit_rate'), pctText(a.hit_rate));
  assert.equal(await text(page, 'hit_rate'), '42.9%');
  assert.equal(await text(page, 'cost_saved'), usdText(a.cost_saved.total));
  assert.equal(await text(page, 'tokens_saved'), intText(a.tokens_saved));
  assert.equal(Number(await page.locator('[data-figure="hit_rate"]').getAttribute('data-value')), a.hit_rate);

  // Charts: drawn (canvas not blank) and fed with the API's series.
  const charts = await page.evaluate(() => {
    const out = {};
    for (const id of ['chart-hit-rate', 'chart-cost-saved', 'chart-models', 'chart-platforms', 'chart-sizing']) {
      const canvas = document.getElementById(id);
      const chart = Chart.getChart(canvas);
      const blank = document.createElement('canvas');
      blank.width = canvas.width;
      blank.height = canvas.height;
      out[id] = {
        labels: chart.data.labels,
        data: chart.data.datasets.map((d) => d.data),
        width: canvas.width,
        drawn: canvas.toDataURL() !== blank.toDataURL(),
      };
    }
    return out;
  });
  for (const [id, c] of Object.entries(charts)) {
    assert.ok(c.width > 100 && c.drawn, `${id} is not drawn: ${JSON.stringify(c)}`);
  }
  const hourly = a.trends.hourly;
  assert.ok(hourly.length >= 1);
  assert.deepEqual(charts['chart-hit-rate'].data[0].filter((v) => v !== null), hourly.map((h) => h.hit_rate));
  assert.deepEqual(charts['chart-cost-saved'].data[0].filter((v, i) => charts['chart-hit-rate'].data[0][i] !== null),
    hourly.map((h) => h.cost_saved));
  assert.deepEqual(charts['chart-models'].labels, Object.keys(a.by_model));
  assert.deepEqual(charts['chart-models'].data[0], Object.values(a.by_model).map((m) => m.hits));
  assert.deepEqual(charts['chart-platforms'].labels, Object.keys(a.by_platform));
  assert.equal(charts['chart-platforms'].labels.length, 2);
  assert.ok(charts['chart-platforms'].labels.includes('mockb'));
  assert.deepEqual(charts['chart-platforms'].data[0], Object.values(a.by_platform).map((m) => m.requests));

  // Hot keys and the heat map.
  const hotRows = await page.locator('#hot-keys tbody tr').count();
  assert.equal(hotRows, a.hot_keys.length);
  assert.ok(a.hot_keys.length >= 2);
  assert.equal(await page.locator('#hot-keys tbody tr').first().locator('td').nth(2).textContent(), String(a.hot_keys[0].hits));
  const heat = await page.$$eval('#heatmap .cell[data-requests]', (cells) => cells.map((c) => Number(c.dataset.requests)));
  assert.equal(heat.length, p.temporal.heatmap.length);
  assert.equal(heat.reduce((x, y) => x + y, 0), a.total_requests);
  assert.ok((await page.locator('#suggestions li').count()) >= 1);
  // A lone gateway (no S3): no fleet view, and the page never asks for one.
  assert.equal(a.fleet_scope, false);
  assert.ok(!(await page.locator('#fleet').isVisible()));

  // The miss-ratio curves (docs/sizing.md): the chart holds /cache/sizing's hit rates, and a row
  // per tier and size says what that size would change against today's: "+256.0 MB of memory
  // (+100 entries): +0.0% hits, +$0.00/day".
  assert.equal(a.sizing, true);
  const sz = await admin(base, '/cache/sizing');
  assert.ok(await page.locator('#sizing-panel').isVisible());
  assert.deepEqual(charts['chart-sizing'].labels, sz.tiers.memory.points.map((q) => `${q.scale}×`));
  assert.deepEqual(charts['chart-sizing'].data, [sz.tiers.memory.points.map((q) => q.hit_rate),
    sz.tiers.disk.points.map((q) => q.hit_rate)]);
  assert.equal(await page.locator('#sizing tbody tr').count(), 12);
  for (const tier of ['memory', 'disk']) {
    const today = sz.tiers[tier].points[2];
    assert.equal(today.scale, 1);
    assert.equal(await page.locator(`#sizing tr[data-tier="${tier}"][data-scale="1"] td.change`).textContent(), 'today');
    const twice = sz.tiers[tier].points[3];
    const dHit = twice.hit_rate - today.hit_rate;
    const mb = ((twice.bytes - today.bytes) / 1048576).toFixed(1);
    const change = await page.locator(`#sizing tr[data-tier="${tier}"][data-scale="2"] td.change`).textContent();
    const sizePart = tier === 'memory' ? `+${mb} MB of memory (+${intText(today.entries)} entries): `
      : `+${((twice.bytes - today.bytes) / 1073741824).toFixed(1)} GB of disk (+${intText(today.entries)} entries): `;
    assert.ok(change.startsWith(`${sizePart}${dHit < 0 ? '-' : '+'}${(Math.abs(dHit) * 100).toFixed(1)}% hits, `), change);
    assert.match(change, /[+-]\$[0-9.]+(\/day| over the window)$/);
    const half = await page.locator(`#sizing tr[data-tier="${tier}"][data-scale="0.5"] td.change`).textContent();
    assert.match(half, new RegExp(`^-[0-9.]+ [MG]B of ${tier} \\(-[0-9,]+ entries\\): [+-]`));
  }

  await page.screenshot({ path: path.join(OUT_DIR, 'dashboard.png'), fullPage: true });

  // It refreshes itself: one more hit shows up without a reload.
  const renders = Number(await page.getAttribute('body', 'data-renders'));
  assert.equal(await chat(base, '/mockb/v1', 'gpt-4o', 'Translate "good morning" into French.'), 'HIT');
  await analyticsWith(base, 8);
  await page.waitForFunction(() => document.querySelector('[data-figure="total_requests"]').textContent === '8',
    null, { timeout: 20_000 });
  assert.ok(Number(await page.getAttribute('body', 'data-renders')) > renders);
  assert.equal(await text(page, 'hit_rate'), pctText(4 / 8));

  assert.deepEqual(problems, [], 'the page logged errors or failed requests');
});

test('With CACHE_SIZING=off the sizing panel stays hidden and /cache/sizing is never asked', async (t) => {
  const stack = await startStack(t, { CACHE_ADMIN_TOKEN: TOKEN, CACHE_SIZING: 'off' });
  const base = stack.gateway.url;
  assert.equal(await chat(base, '/v1', 'gpt-4o-mini', 'Hello there'), 'MISS');
  const a = await analyticsWith(base, 1);
  assert.equal(a.sizing, false);
  const { page, problems } = await openBrowser(t);
  const asked = [];
  page.on('request', (r) => { if (r.url().includes('/cache/sizing')) asked.push(r.url()); });
  await page.goto(`${base}/dashboard?window=all&refresh=0#token=${TOKEN}`);
  await page.waitForSelector('body[data-state="ready"]', { timeout: 20_000 });
  assert.ok(!(await page.locator('#sizing-panel').isVisible()));
  assert.deepEqual(asked, []);
  assert.deepEqual(problems, [], 'the page logged errors or failed requests');
});

test('Without a token the dashboard asks for one and then shows the figures', async (t) => {
  const stack = await startStack(t, { CACHE_ADMIN_TOKEN: TOKEN });
  const base = stack.gateway.url;
  assert.equal(await chat(base, '/v1', 'gpt-4o-mini', 'Hello there'), 'MISS');
  assert.equal(await chat(base, '/v1', 'gpt-4o-mini', 'Hello there'), 'HIT');
  await analyticsWith(base, 2);

  const { page, problems } = await openBrowser(t);
  await page.goto(`${base}/dashboard?window=all&refresh=0`);
  await page.waitForSelector('body[data-state="auth"]', { timeout: 20_000 });
  assert.ok(await page.locator('#auth').isVisible());
  assert.ok(!(await page.locator('#main').isVisible()));
  // The only failures are the refused analytics calls (no token yet).
  assert.ok(problems.length > 0 && problems.every((x) => /401|status of 401/.test(x)), problems.join('\n'));

  await page.fill('#token', TOKEN);
  await page.click('#token-form button[type="submit"]');
  await page.waitForSelector('body[data-state="ready"]', { timeout: 20_000 });
  assert.equal(await text(page, 'total_requests'), '2');
  assert.equal(await text(page, 'hit_rate'), '50.0%');
  // Kept for this tab only.
  assert.equal(await page.evaluate(() => sessionStorage.getItem('llmcache.adminToken')), TOKEN);
  assert.equal(await page.evaluate(() => localStorage.length), 0);
});

// Near misses (issue 19, item 3): misses that differ from a stored request in one field, explained
// in the background and tallied by /cache/patterns as near_misses; the page lists them per model
// and field with their share of the misses and their estimated cost.
async function chatBody(base, body) {
  const res = await fetch(`${base}/v1/chat/completions`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', authorization: 'Bearer sk-test' },
    body: JSON.stringify(body),
  });
  await res.arrayBuffer();
  assert.equal(res.status, 200, JSON.stringify(body));
  return res.headers.get('x-llmcache-status');
}

test('The dashboard lists the fields that break near-hits, as /cache/patterns reports them', async (t) => {
  // Every miss explained (the default samples 2 a second, which a fast test could exceed).
  const stack = await startStack(t, { CACHE_ADMIN_TOKEN: TOKEN, CACHE_NEAR_MISS_SAMPLE: '100' });
  const base = stack.gateway.url;
  // Per model: a miss and a hit, then (once both entries are on disk and in the index, where the
  // explainer looks for the nearest stored request) a miss that differs in one field only.
  const mini = { model: 'gpt-4o-mini', temperature: 0.7, messages: [{ role: 'user', content: 'Summarize the plot of Hamlet.' }] };
  const stamped = (time) => ({ model: 'gpt-4o', messages: [
    { role: 'system', content: `You are a helpful assistant. Current time: 2026-12-06 ${time} UTC.` },
    { role: 'user', content: 'What is a monad?' }] });
  assert.equal(await chatBody(base, mini), 'MISS');
  assert.equal(await chatBody(base, mini), 'HIT');
  assert.equal(await chatBody(base, stamped('17:20:01')), 'MISS');
  assert.equal(await chatBody(base, stamped('17:20:01')), 'HIT');
  await analyticsWith(base, 4, (a) => a.storage_efficiency.entries === 2);
  assert.equal(await chatBody(base, { ...mini, temperature: 0.2 }), 'MISS');
  assert.equal(await chatBody(base, stamped('17:21:09')), 'MISS');

  // Explained in the background: wait until all four misses are.
  const row = (p, model, field, kind) =>
    p.near_misses.fields.find((r) => r.model === model && r.field === field && r.kind === kind);
  let p;
  const deadline = Date.now() + 20_000;
  for (;;) {
    p = await admin(base, '/cache/patterns');
    assert.ok(p.near_misses, '/cache/patterns has no near_misses');
    if (p.near_misses.explained === 4 && row(p, 'gpt-4o-mini', 'temperature', 'changed') &&
        row(p, 'gpt-4o', 'messages[0].content', 'digits')) break;
    if (Date.now() > deadline) assert.fail(`near_misses: ${JSON.stringify(p.near_misses)}`);
    await new Promise((r) => setTimeout(r, 250));
  }
  const temperature = row(p, 'gpt-4o-mini', 'temperature', 'changed');
  assert.equal(temperature.misses, 1);
  assert.ok(temperature.share > 0 && temperature.cost_usd > 0, JSON.stringify(temperature));

  const { page, problems } = await openBrowser(t);
  await page.goto(`${base}/dashboard?window=all&refresh=0#token=${TOKEN}`);
  await page.waitForSelector('body[data-state="ready"]', { timeout: 20_000 });
  assert.ok(await page.locator('#near-misses').isVisible());
  const shown = await page.$$eval('#near-misses tbody tr', (trs) => trs.map((tr) => ({
    model: tr.dataset.model, field: tr.dataset.field, kind: tr.dataset.kind,
    cells: [...tr.querySelectorAll('td')].map((td) => td.textContent) })));
  // The same rows, in the same order, with the same figures.
  assert.deepEqual(shown.map((r) => [r.model, r.field, r.kind]), p.near_misses.fields.map((r) => [r.model, r.field, r.kind]));
  p.near_misses.fields.forEach((r, i) => {
    assert.deepEqual(shown[i].cells.slice(2), [pctText(r.share), intText(r.misses), usdText(r.cost_usd)], `${r.model} ${r.field}`);
    assert.equal(shown[i].cells[0], r.model);
  });
  // By kind too: a field can have several rows (a temperature changed, and one added).
  const shownRow = (model, field, kind) =>
    shown.find((r) => r.model === model && r.field === field && r.kind === kind);
  assert.equal(shownRow('gpt-4o-mini', 'temperature', 'changed').cells[1], 'a different temperature');
  assert.equal(shownRow('gpt-4o', 'messages[0].content', 'digits').cells[1],
    'a varying number, date or time in the text of message 1 (messages[0].content)');
  assert.match(await page.locator('#near-misses-unit').textContent(), /^\(4 misses explained since/);
  await page.locator('#near-misses-panel').screenshot({ path: path.join(OUT_DIR, 'dashboard-near-misses.png') });
  assert.deepEqual(problems, [], 'the page logged errors or failed requests');
});

// Semantic hits (issue 20): a gateway in shadow mode, one paraphrase pair and one near miss (the
// mock answers by topic: the paraphrase's answers agree, the near miss's do not); the page's
// panel must show /cache/semantic's figures, one row per threshold, the suggestion marked.
test('The dashboard shows the semantic shadow figures of /cache/semantic', async (t) => {
  const stack = await startStack(t, { CACHE_ADMIN_TOKEN: TOKEN, CACHE_SEMANTIC_SHADOW: 'true' });
  const base = stack.gateway.url;
  const ask = async (system, content) => {
    const res = await fetch(`${base}/v1/chat/completions`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', authorization: 'Bearer sk-test', 'x-mock-answer': 'topic' },
      body: JSON.stringify({ model: 'gpt-4o-mini', messages: [{ role: 'system', content: system }, { role: 'user', content }] }),
    });
    await res.arrayBuffer();
    assert.equal(res.headers.get('x-llmcache-status'), 'MISS');
  };
  const vectors = async (n) => {
    const deadline = Date.now() + 15_000;
    for (;;) {
      const s = await admin(base, '/cache/semantic');
      if (s.index.vectors >= n) return s;
      if (Date.now() > deadline) assert.fail(`${n} vectors not indexed: ${JSON.stringify(s.index)}`);
      await new Promise((r) => setTimeout(r, 100));
    }
  };
  await ask('pair 1', 'what is the boiling point of water at sea level in celsius');
  await vectors(1);
  await ask('pair 1', 'what is the boiling point of water at the sea level in celsius');
  await ask('pair 2', 'what is the capital of france and how many people live there');
  await vectors(3);
  await ask('pair 2', 'what is the capital of spain and how many people live there');
  let s;
  const deadline = Date.now() + 15_000;
  for (;;) {
    s = await admin(base, '/cache/semantic');
    if (s.shadow.all.pairs === 2) break;
    if (Date.now() > deadline) assert.fail(`shadow pairs: ${JSON.stringify(s.shadow.all)}`);
    await new Promise((r) => setTimeout(r, 100));
  }
  assert.ok(s.shadow.suggested_threshold != null, JSON.stringify(s.shadow));

  const { page, problems } = await openBrowser(t);
  await page.goto(`${base}/dashboard?window=all&refresh=0#token=${TOKEN}`);
  await page.waitForSelector('body[data-state="ready"]', { timeout: 20_000 });
  assert.ok(await page.locator('#semantic').isVisible());
  assert.equal(await text(page, 'semantic_misses'), intText(s.shadow.all.misses));
  assert.equal(await text(page, 'semantic_pairs'), intText(2));
  assert.equal(await text(page, 'semantic_served'), '0');
  // The window's semantic hits come from /cache/analytics (shadow mode serves none).
  assert.equal(await text(page, 'semantic_window'), intText((await admin(base, '/cache/analytics')).semantic_hits));
  assert.equal(await text(page, 'semantic_suggested'), s.shadow.suggested_threshold.toFixed(2));
  const rows = await page.$$eval('#semantic-thresholds tbody tr', (trs) => trs.map((tr) => ({
    threshold: tr.dataset.threshold, suggested: tr.className === 'suggested',
    cells: [...tr.querySelectorAll('td')].map((td) => td.textContent) })));
  assert.equal(rows.length, 20);
  s.shadow.all.thresholds.forEach((r, i) => {
    assert.equal(rows[i].threshold, r.threshold.toFixed(2));
    assert.deepEqual(rows[i].cells.slice(1), [intText(r.extra_hits), pctText(r.extra_hit_rate), usdText(r.cost_saved),
      r.agreement == null ? '–' : pctText(r.agreement)]);
    assert.equal(rows[i].suggested, Math.abs(r.threshold - s.shadow.suggested_threshold) < 1e-9);
  });
  await page.locator('#semantic').screenshot({ path: path.join(OUT_DIR, 'dashboard-semantic.png') });
  assert.deepEqual(problems, [], 'the page logged errors or failed requests');
});

// The fleet view (issue 16): two gateways on one S3 bucket (the test S3 server, tests/s3); the
// page of either shows every gateway's figures merged, one row per gateway with its age.
function startS3(t, dir) {
  const child = spawn('bash', [path.resolve(here, '../s3/run-server.sh'), '--dir', dir, '--port', '0'],
    { stdio: ['pipe', 'pipe', 'pipe'] });
  live.add(child);
  const exited = new Promise((r) => child.once('exit', () => { live.delete(child); r(); }));
  // Stopped after the gateways (deferred before them), so that their last S3 writes at SIGTERM
  // find it up; it exits once its server closed (SIGKILL after 5 s, like the gateways).
  defer(t, async () => {
    if (child.exitCode === null && child.signalCode === null) {
      child.stdin.end();
      child.kill('SIGTERM');
      const k = setTimeout(() => child.kill('SIGKILL'), 5_000);
      await exited;
      clearTimeout(k);
    }
  });
  let out = '';
  let err = '';
  child.stderr.on('data', (d) => { err += d; });
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`s3rver did not start: ${err}`)), 60_000);
    child.stdout.on('data', (d) => {
      out += d;
      const m = out.match(/s3rver listening on (http:\/\/[^\s]+)/);
      if (m) { clearTimeout(timer); resolve(m[1]); }
    });
    child.once('exit', (code) => { clearTimeout(timer); reject(new Error(`s3rver exited (${code}): ${err}`)); });
  });
}

test('With S3 the dashboard shows the fleet: every gateway on the bucket, and how fresh each part is', async (t) => {
  process.env.AWS_ACCESS_KEY_ID = 'S3RVER';
  process.env.AWS_SECRET_ACCESS_KEY = 'S3RVER';
  const dir = mkdtempSync(path.join(tmpdir(), 'llmcache-dashboard-s3-'));
  defer(t, () => rmSync(dir, { recursive: true, force: true }));  // last: nothing writes there now
  const endpoint = await startS3(t, path.join(dir, 's3'));
  // A part is stale when older than two metrics intervals. A publish (statistics, hit counts and
  // the merged views: a few S3 requests on a nice-10 thread, against a Node server) took 3-5 s on
  // a loaded 2-core machine, so with 1 s both parts showed stale: 5 s leaves room (parts were at
  // most ~4 s old under load, the limit is 10 s); it costs ~4 s of waiting for the first parts.
  const sets = { CACHE_ADMIN_TOKEN: TOKEN, CACHE_S3_ENDPOINT: endpoint, CACHE_S3_BUCKET: 'llmcache-test',
    CACHE_METRICS_INTERVAL: '5' };
  const a = await startStack(t, sets);
  const bArgs = ['serve', '--listen', '127.0.0.1:0', '--upstream', `${a.mock.url}/v1`, '--cache-dir', path.join(dir, 'b')];
  for (const [k, v] of Object.entries(sets)) bArgs.push('--set', `${k}=${v}`);
  const b = await start('llmcache', bArgs);
  defer(t, () => b.stop());
  assert.equal(await chat(a.gateway.url, '/v1', 'gpt-4o-mini', 'Fleet question'), 'MISS');
  assert.equal(await chat(a.gateway.url, '/v1', 'gpt-4o-mini', 'Fleet question'), 'HIT');
  assert.equal(await chat(b.url, '/v1', 'gpt-4o-mini', 'Another fleet question'), 'MISS');
  assert.equal(await chat(b.url, '/v1', 'gpt-4o-mini', 'Another fleet question'), 'HIT');
  assert.equal(await chat(b.url, '/v1', 'gpt-4o-mini', 'Another fleet question'), 'HIT');
  // Both gateways publish every 5 s: wait for their parts.
  let fleet;
  const deadline = Date.now() + 20_000;
  for (;;) {
    fleet = await admin(a.gateway.url, '/cache/analytics?scope=fleet');
    if (fleet.hits === 3 && Object.keys(fleet.by_instance).length === 2) break;
    if (Date.now() > deadline) assert.fail(`fleet figures: ${JSON.stringify(fleet)}`);
    await new Promise((r) => setTimeout(r, 250));
  }

  const { page, problems } = await openBrowser(t);
  await page.goto(`${a.gateway.url}/dashboard?window=all&refresh=5#token=${TOKEN}`);
  await page.waitForSelector('body[data-state="ready"]', { timeout: 20_000 });
  assert.ok(await page.locator('#fleet').isVisible());
  assert.equal(await text(page, 'fleet_gateways'), '2');
  assert.equal(await text(page, 'fleet_stale'), '0');
  assert.equal(await text(page, 'fleet_hits'), '3');
  assert.equal(await text(page, 'fleet_requests'), '5');
  assert.equal(await text(page, 'fleet_hit_rate'), pctText(3 / 5));
  assert.equal(await text(page, 'fleet_hits_memory'), '3');
  // This gateway's own figures stay beside it.
  assert.equal(await text(page, 'hits'), '1');
  const rows = await page.$$eval('#fleet-gateways tbody tr', (trs) => trs.map((tr) => ({
    id: tr.dataset.instance, cells: [...tr.querySelectorAll('td')].map((td) => td.textContent), stale: tr.className })));
  assert.equal(rows.length, 2);
  assert.deepEqual(rows.map((r) => r.cells[2]).sort(), ['1', '2']);
  for (const r of rows) {
    assert.equal(r.stale, '', `${r.id} is shown stale: ${r.cells}`);
    assert.match(r.cells[5], /^\d+ s ago$/);
  }
  await page.screenshot({ path: path.join(OUT_DIR, 'dashboard-fleet.png'), fullPage: true });
  assert.deepEqual(problems, [], 'the page logged errors or failed requests');
});
