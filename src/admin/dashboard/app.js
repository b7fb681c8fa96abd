// The llmcache dashboard (GET /dashboard): reads GET /cache/analytics and GET /cache/patterns
// (docs/analytics.md) every few seconds and draws them with Chart.js, with the fields that most
// often break near-hits (near_misses); with the S3 tier on
// (/cache/analytics says fleet_scope), also GET /cache/analytics?scope=fleet: every gateway on
// the bucket, with how fresh each one's figures are. Served by the gateway from
// the binary (src/admin/dashboard.cc); no build step, no framework, no inline script (the page's
// Content-Security-Policy allows scripts from /dashboard/ only).
//
// The admin token never travels in the page: it comes from the user (the form) or from a
// #token= URL fragment (never sent to the server), is kept in this tab's sessionStorage, and is
// sent as Authorization: Bearer to /cache/* only. Every text from the server goes through
// textContent, never innerHTML (model names and keys come from clients).
'use strict';

(() => {
  const TOKEN_KEY = 'llmcache.adminToken';
  const WEEKDAYS = ['Mon', 'Tue', 'Wed', 'Thu', 'Fri', 'Sat', 'Sun'];
  const COLORS = ['#2f6fdb', '#e8743b', '#19a979', '#945ecf', '#ed4a7b', '#13a4b4', '#bf399e', '#6c8893', '#f2b134', '#525df4'];

  const $ = (sel) => document.querySelector(sel);
  let charts = null;
  let sizingChart = null;  // made once the sizing panel is first shown
  let timer = null;
  let inFlight = false;
  let renders = 0;

  // --- token ---------------------------------------------------------------------------------
  function takeTokenFromFragment() {
    const m = /(?:^#|&)token=([^&]*)/.exec(location.hash);
    if (!m) return;
    try {
      sessionStorage.setItem(TOKEN_KEY, decodeURIComponent(m[1]));
    } catch (e) { /* storage disabled: the form still works for this page view */ }
    // Out of the address bar and the history entry.
    history.replaceState(null, '', location.pathname + location.search);
  }
  function token() {
    try { return sessionStorage.getItem(TOKEN_KEY) || ''; } catch (e) { return ''; }
  }
  function setToken(value) {
    try {
      if (value) sessionStorage.setItem(TOKEN_KEY, value); else sessionStorage.removeItem(TOKEN_KEY);
    } catch (e) { /* ignore */ }
    $('#forget-token').hidden = !value;
  }

  // --- formatting ----------------------------------------------------------------------------
  // The test (tests/dashboard) parses these back: keep them plain.
  const fmt = {
    int: (v) => Math.round(v).toLocaleString('en-US'),
    pct: (v) => (v * 100).toFixed(1) + '%',
    // Cents for a dollar and more, else 3 significant digits (one cached call can cost $0.000150).
    usd: (v) => {
      const a = Math.abs(v);
      if (a === 0 || a >= 1) return '$' + v.toFixed(2);
      return '$' + v.toFixed(Math.min(8, 2 - Math.floor(Math.log10(a))));
    },
    ms: (v) => (v >= 1000 ? (v / 1000).toFixed(2) + ' s' : v.toFixed(0) + ' ms'),
    bytes: (v) => {
      const units = ['B', 'KB', 'MB', 'GB', 'TB'];
      let i = 0;
      while (v >= 1024 && i < units.length - 1) { v /= 1024; i++; }
      return (i === 0 ? v.toFixed(0) : v.toFixed(1)) + ' ' + units[i];
    },
    ratio: (v) => (v > 0 ? v.toFixed(2) + '×' : '–'),
  };

  function setFigure(name, value, format) {
    for (const el of document.querySelectorAll(`[data-figure="${name}"]`)) {
      el.textContent = format(value);
      el.dataset.value = String(value);
    }
  }

  function setStatus(text, isError) {
    const el = $('#status');
    el.textContent = text;
    el.classList.toggle('error', !!isError);
  }

  // --- data ----------------------------------------------------------------------------------
  function windowQuery() {
    const w = $('#window').value;
    if (w === 'all') return '';
    return '?from=' + (Date.now() - Number(w) * 1000);
  }

  class HttpError extends Error {
    constructor(status, message) { super(message); this.status = status; }
  }

  async function getJson(path) {
    const headers = { Accept: 'application/json' };
    const t = token();
    if (t) headers.Authorization = 'Bearer ' + t;
    const res = await fetch(path, { headers, cache: 'no-store', credentials: 'omit' });
    let body = null;
    try { body = await res.json(); } catch (e) { /* not JSON */ }
    if (!res.ok) {
      const msg = body && body.error && body.error.message ? body.error.message : res.statusText;
      throw new HttpError(res.status, `${path.split('?')[0]}: ${res.status} ${msg}`);
    }
    return body;
  }

  // --- charts --------------------------------------------------------------------------------
  function makeCharts() {
    Chart.defaults.animation = false;  // a refresh redraws in place
    Chart.defaults.maintainAspectRatio = false;
    Chart.defaults.font.family = getComputedStyle(document.body).fontFamily;
    const line = (id, label, color, yOptions, type = 'line') => new Chart($(id), {
      type,
      data: { labels: [], datasets: [{ label, data: [], borderColor: color, backgroundColor: type === 'line' ? color + '33' : color, fill: true, tension: 0.2, pointRadius: 3, spanGaps: false }] },
      options: { plugins: { legend: { display: false } }, scales: { y: yOptions, x: { ticks: { maxTicksLimit: 12 } } } },
    });
    return {
      hitRate: line('#chart-hit-rate', 'hit rate', COLORS[0], {
        min: 0, max: 1, ticks: { callback: (v) => Math.round(v * 100) + '%' },
      }),
      costSaved: line('#chart-cost-saved', 'cost saved (USD)', COLORS[2], {
        beginAtZero: true, ticks: { callback: (v) => '$' + v } }, 'bar'),
      models: new Chart($('#chart-models'), {
        type: 'bar',
        data: { labels: [], datasets: [
          { label: 'hits', data: [], backgroundColor: COLORS[2], stack: 's' },
          { label: 'misses and coalesced', data: [], backgroundColor: COLORS[1], stack: 's' },
        ] },
        options: { indexAxis: 'y', scales: { x: { beginAtZero: true, stacked: true, ticks: { precision: 0 } }, y: { stacked: true } } },
      }),
      platforms: new Chart($('#chart-platforms'), {
        type: 'doughnut',
        data: { labels: [], datasets: [{ data: [], backgroundColor: COLORS }] },
        options: { plugins: { legend: { position: 'right' } } },
      }),
    };
  }

  // Hourly points for short windows, daily ones for long. The hourly axis runs to the current hour
  // and spans at least 12 hours; hours without requests are filled in (no hit rate, nothing saved)
  // so that the axis is linear in time.
  function trendPoints(trends) {
    const hourly = trends.hourly || [];
    const useDaily = hourly.length > 0 &&
      (Date.parse(hourly[hourly.length - 1].hour) - Date.parse(hourly[0].hour)) / 3600e3 > 24 * 7;
    if (useDaily) {
      return { unit: '(per UTC day)', points: (trends.daily || []).map((d) => ({ label: d.day, ...d })) };
    }
    const byTime = new Map(hourly.map((h) => [Date.parse(h.hour), h]));
    const points = [];
    if (hourly.length > 0) {
      const thisHour = Math.floor(Date.now() / 3600e3) * 3600e3;
      const last = Math.max(Date.parse(hourly[hourly.length - 1].hour), thisHour);
      const first = Math.min(Date.parse(hourly[0].hour), last - 11 * 3600e3);
      for (let t = first; t <= last; t += 3600e3) {
        const h = byTime.get(t);
        const label = new Date(t).toISOString().slice(5, 13).replace('T', ' ') + 'h';
        points.push(h ? { label, ...h } : { label, requests: 0, hits: 0, hit_rate: null, cost_saved: 0 });
      }
    }
    return { unit: '(per UTC hour)', points };
  }

  function setSeries(chart, labels, ...series) {
    chart.data.labels = labels;
    series.forEach((data, i) => { chart.data.datasets[i].data = data; });
    chart.update('none');
  }

  function renderCharts(a) {
    const { unit, points } = trendPoints(a.trends || {});
    $('#trend-unit').textContent = unit;
    const labels = points.map((p) => p.label);
    setSeries(charts.hitRate, labels, points.map((p) => p.hit_rate));
    setSeries(charts.costSaved, labels, points.map((p) => p.cost_saved));

    const models = Object.entries(a.by_model || {});
    setSeries(charts.models, models.map(([m]) => m || '(none)'),
      models.map(([, s]) => s.hits), models.map(([, s]) => s.requests - s.hits));
    const platforms = Object.entries(a.by_platform || {});
    setSeries(charts.platforms, platforms.map(([p]) => p || '(none)'), platforms.map(([, s]) => s.requests));
  }

  // --- tables and lists ----------------------------------------------------------------------
  function el(tag, text, className) {
    const e = document.createElement(tag);
    if (text !== undefined) e.textContent = text;
    if (className) e.className = className;
    return e;
  }

  // One row of `columns` cells saying why a table is empty. (append() returns nothing: the row
  // is built first.)
  function emptyRow(body, text, columns) {
    const td = el('td', text, 'empty');
    td.colSpan = columns;
    const tr = el('tr');
    tr.append(td);
    body.append(tr);
  }

  function renderHotKeys(hot) {
    const body = $('#hot-keys tbody');
    body.replaceChildren();
    if (!hot || hot.length === 0) {
      emptyRow(body, 'no entry has been hit yet', 4);
      return;
    }
    for (const k of hot) {
      const tr = el('tr');
      const key = el('td', k.cache_key, 'key');
      key.title = k.cache_key;
      tr.append(key, el('td', k.model), el('td', fmt.int(k.hits), 'num'), el('td', fmt.usd(k.cost_saved), 'num'));
      body.append(tr);
    }
  }

  function renderHeatmap(cells) {
    const root = $('#heatmap');
    root.replaceChildren();
    const grid = new Map();
    let max = 0;
    for (const [weekday, hour, requests, hits] of cells || []) {
      grid.set(weekday * 24 + hour, { requests, hits });
      max = Math.max(max, requests);
    }
    root.append(el('div', '', 'label'));
    for (let h = 0; h < 24; h++) root.append(el('div', h % 3 === 0 ? String(h) : '', 'label'));
    for (let d = 0; d < 7; d++) {
      root.append(el('div', WEEKDAYS[d], 'label'));
      for (let h = 0; h < 24; h++) {
        const c = grid.get(d * 24 + h);
        const cell = el('div', undefined, 'cell');
        cell.setAttribute('role', 'cell');
        if (c && c.requests > 0) {
          const alpha = 0.15 + 0.85 * (c.requests / max);
          cell.style.backgroundColor = `rgba(47, 111, 219, ${alpha.toFixed(3)})`;
          cell.dataset.requests = String(c.requests);
          cell.title = `${WEEKDAYS[d]} ${String(h).padStart(2, '0')}:00 UTC: ${c.requests} requests, ` +
            `${c.hits} hits (${fmt.pct(c.hits / c.requests)})`;
        } else {
          cell.title = `${WEEKDAYS[d]} ${String(h).padStart(2, '0')}:00 UTC: no requests`;
        }
        root.append(cell);
      }
    }
  }

  function suggestionsOf(a, p) {
    const out = [];
    const opp = (p && p.optimization_details) || {};
    for (const m of opp.low_hit_rate_models || []) {
      let s = `${m.model}: hit rate ${fmt.pct(m.hit_rate)} over ${fmt.int(m.requests)} requests. `;
      if (m.suggested_ttl_seconds) {
        s += `Its keys repeat every ${Math.round(m.median_repeat_interval_seconds)} s (median): ` +
          `a TTL of at least ${m.suggested_ttl_seconds} s (CACHE_TTL or x-llmcache-ttl) would catch most repeats.`;
      } else {
        s += 'No request repeated a key, so a longer TTL cannot help; look at prompt normalization.';
      }
      out.push(s);
    }
    // What opting in to `seed` key normalization would have merged, per tenant (exact counts).
    for (const t of opp.normalize_prompts || []) {
      out.push(`${t.tenant ? `Tenant ${t.tenant}` : 'Unscoped requests'}: ` +
        `${fmt.int(t.requests_merged)} ${t.requests_merged === 1 ? 'miss' : 'misses'} differed from an earlier request only in whitespace or letter case. ` +
        `The ${t.mode} key normalization (${t.how}) would have answered them from the cache and saved ` +
        `${fmt.usd(t.cost_saved_usd)}; it also merges requests whose answers can differ (case, code indentation).`);
    }
    // Near duplicates are within one tenant (entries of two tenants never share a key).
    for (const g of opp.near_duplicates || []) {
      const previews = (g.previews || []).slice(0, 2).map((x) => `“${x}”`).join(' and ');
      out.push(`${g.cache_keys.length} near-duplicate prompts for ${g.model}` +
        `${g.tenant ? ` of tenant ${g.tenant}` : ''} (${previews}): ` +
        `moving the varying part out of the prompt could have saved ` +
        `${fmt.usd(g.potential_savings)} of ${fmt.usd(g.miss_cost)} spent on their misses.`);
    }
    const best = p && p.temporal && p.temporal.best_hit_rate_hours;
    if (a.total_requests > 0 && a.hit_rate < 0.1 && out.length === 0) {
      out.push(`The hit rate is ${fmt.pct(a.hit_rate)}: check that clients send identical requests ` +
        '(temperature, user fields, timestamps in prompts) and that CACHE_SCOPE fits how keys are shared.');
    }
    if (best && best.length > 0 && out.length > 0) {
      out.push(`Best hit rates at ${best.map((h) => `${h.hour}:00`).join(', ')} UTC.`);
    }
    return out;
  }

  function renderSuggestions(a, p) {
    const list = $('#suggestions');
    list.replaceChildren();
    const items = suggestionsOf(a, p);
    if (items.length === 0) list.append(el('li', 'Nothing to suggest for this window.', 'empty'));
    for (const s of items) list.append(el('li', s));
  }

  // The miss explainer's tally (/cache/patterns near_misses, docs/record-replay.md): per model and
  // request field, how many explained misses differed from their nearest stored request there,
  // their share of that model's explained misses, and what they cost (estimated). Since the start.
  function fieldWords(path) {
    let m = /^messages\[(\d+)\](.*)$/.exec(path);
    if (m) {
      const n = Number(m[1]) + 1;
      if (m[2] === '') return `message ${n}`;
      if (m[2].startsWith('.content')) return `the text of message ${n}`;
      return path;
    }
    if (path === 'system' || path.startsWith('system[') || path.startsWith('system.')) return 'the system prompt';
    m = /^tools\[(\d+)\]$/.exec(path);
    if (m) return `tool ${Number(m[1]) + 1}`;
    if (path === 'tools') return 'the tool list';
    return path;
  }
  function nearMissWords(kind, path) {
    const w = fieldWords(path);
    switch (kind) {
      case 'digits': return `a varying number, date or time in ${w}`;
      case 'text': return `different text in ${w}`;
      case 'changed': return `a different ${w}`;
      case 'added': return `${w} added`;
      case 'removed': return `${w} missing`;
      default: return `${w} differed`;
    }
  }

  function renderNearMisses(nm) {
    const body = $('#near-misses tbody');
    body.replaceChildren();
    const empty = (text) => emptyRow(body, text, 5);
    if (!nm) {
      $('#near-misses-unit').textContent = '(not reported by this gateway)';
      empty('This gateway does not report near misses.');
      return;
    }
    const explained = nm.explained || 0;
    $('#near-misses-unit').textContent =
      `(${fmt.int(explained)} ${explained === 1 ? 'miss' : 'misses'} explained since the gateway started)`;
    const rows = nm.fields || [];
    if (rows.length === 0) {
      empty(explained === 0 ? 'No miss explained yet (CACHE_NEAR_MISS_SAMPLE sets how many a second).'
        : 'No explained miss was close to a stored request.');
      return;
    }
    for (const r of rows) {
      const tr = el('tr');
      tr.dataset.model = r.model;
      tr.dataset.field = r.field;
      tr.dataset.kind = r.kind;
      const words = nearMissWords(r.kind, r.field);
      const what = el('td', words, 'what');
      if (fieldWords(r.field) !== r.field) what.append(' (', el('code', r.field), ')');
      tr.title = `${words}: ${fmt.pct(r.share)} of the explained misses for ${r.model || '(no model)'} ` +
        `(${fmt.int(r.misses)}), which cost about ${fmt.usd(r.cost_usd)}`;
      tr.append(el('td', r.model || '(none)'), what, el('td', fmt.pct(r.share), 'num share'),
        el('td', fmt.int(r.misses), 'num misses'), el('td', fmt.usd(r.cost_usd), 'num cost'));
      body.append(tr);
    }
  }

  function renderFigures(a) {
    setFigure('total_requests', a.total_requests, fmt.int);
    setFigure('hits', a.hits, fmt.int);
    setFigure('misses', a.misses, fmt.int);
    setFigure('coalesced', a.coalesced, fmt.int);
    setFigure('hit_rate', a.hit_rate, fmt.pct);
    setFigure('coalesced_rate', a.coalesced_rate, fmt.pct);
    setFigure('cost_saved', a.cost_saved.total, fmt.usd);
    setFigure('cost_saved_daily', a.cost_saved.daily_average, fmt.usd);
    setFigure('cost_spent', a.cost_spent, fmt.usd);
    setFigure('tokens_saved', a.tokens_saved, fmt.int);
    setFigure('avg_latency_saved', a.avg_latency_saved, fmt.ms);
    const s = a.storage_efficiency || {};
    setFigure('entries', s.entries || 0, fmt.int);
    setFigure('bytes_stored', s.bytes_stored || 0, fmt.bytes);
    setFigure('ratio', s.ratio || 0, fmt.ratio);
  }

  // The fleet (issue 16): totals of every gateway on the bucket, and one row per gateway with the
  // age of its figures (stale: not published for two of its metrics intervals).
  function renderFleet(f) {
    const section = $('#fleet');
    if (!f) { section.hidden = true; return; }
    section.hidden = false;
    const parts = Object.entries(f.by_instance || {});
    const tiers = f.hits_by_tier || {};
    setFigure('fleet_gateways', parts.length, fmt.int);
    setFigure('fleet_stale', f.stale_instances || 0, fmt.int);
    setFigure('fleet_requests', f.cacheable || 0, fmt.int);
    setFigure('fleet_hits', f.hits || 0, fmt.int);
    setFigure('fleet_hits_memory', tiers.memory || 0, fmt.int);
    setFigure('fleet_hits_disk', tiers.disk || 0, fmt.int);
    setFigure('fleet_hits_s3', tiers.s3 || 0, fmt.int);
    setFigure('fleet_hit_rate', f.hit_rate || 0, fmt.pct);
    setFigure('fleet_cost_saved', f.cost_saved_usd || 0, fmt.usd);
    setFigure('fleet_latency_saved', f.latency_saved_ms || 0, fmt.ms);
    const body = $('#fleet-gateways tbody');
    body.replaceChildren();
    for (const [id, g] of parts) {
      const tr = el('tr');
      tr.dataset.instance = id;
      if (g.fresh === false) tr.className = 'stale';
      const age = typeof g.age_seconds === 'number' ? `${fmt.int(g.age_seconds)} s ago` : 'never';
      tr.append(el('td', id, 'key'), el('td', fmt.int(g.cacheable || 0), 'num'), el('td', fmt.int(g.hits || 0), 'num'),
        el('td', fmt.pct(g.hit_rate || 0), 'num'), el('td', fmt.usd(g.cost_saved_usd || 0), 'num'),
        el('td', g.fresh === false ? `${age} (stale)` : age, 'num'));
      body.append(tr);
    }
  }

  // --- sizing (GET /cache/sizing, docs/sizing.md) -------------------------------------------
  const signed = (v, text) => (v < 0 ? '-' : '+') + text;
  const scaleText = (s) => s + '×';

  // "+512.0 MB of memory (+100 entries): +6.0% hits, +$41.00/day": what the point at `p` would
  // change against today's size (the point at scale 1). The money is per day once the window is a
  // second long, else over the window.
  function sizingSentence(tier, today, p) {
    const dBytes = p.bytes - today.bytes;
    const dEntries = p.entries - today.entries;
    const dHit = p.hit_rate - today.hit_rate;
    const perDay = p.cost_saved_per_day !== null && today.cost_saved_per_day !== null;
    const dMoney = perDay ? p.cost_saved_per_day - today.cost_saved_per_day : p.cost_saved - today.cost_saved;
    return `${signed(dBytes, fmt.bytes(Math.abs(dBytes)))} of ${tier} (${signed(dEntries, fmt.int(Math.abs(dEntries)))} entries): ` +
      `${signed(dHit, (Math.abs(dHit) * 100).toFixed(1) + '%')} hits, ` +
      `${signed(dMoney, fmt.usd(Math.abs(dMoney)))}${perDay ? '/day' : ' over the window'}`;
  }

  function renderSizing(s) {
    const panel = $('#sizing-panel');
    if (!s) { panel.hidden = true; return; }
    panel.hidden = false;  // before the chart is made: Chart.js sizes to its visible box
    if (sizingChart === null) {
      sizingChart = new Chart($('#chart-sizing'), {
        type: 'line',
        data: { labels: [], datasets: ['memory', 'disk'].map((tier, i) => ({
          label: tier, data: [], borderColor: COLORS[i * 2], backgroundColor: COLORS[i * 2] + '33',
          fill: false, tension: 0.2, pointRadius: 3 })) },
        options: { scales: {
          y: { min: 0, max: 1, ticks: { callback: (v) => Math.round(v * 100) + '%' } },
          x: { title: { display: true, text: "× today's size" } } } },
      });
    }
    const tiers = s.tiers || {};
    const names = ['memory', 'disk'].filter((t) => tiers[t]);
    const first = tiers[names[0]];
    sizingChart.data.labels = first ? first.points.map((p) => scaleText(p.scale)) : [];
    sizingChart.data.datasets.forEach((d) => { d.data = tiers[d.label] ? tiers[d.label].points.map((p) => p.hit_rate) : []; });
    sizingChart.update();
    $('#sizing-unit').textContent = `(${fmt.int(s.references)} requests, ${fmt.int(s.sampled_keys)} keys sampled at ` +
      `${(s.rate * 100).toFixed(s.rate >= 0.1 ? 0 : 2)}%)`;
    const body = $('#sizing tbody');
    body.replaceChildren();
    if (s.references === 0) {
      emptyRow(body, 'No cacheable request yet.', 3);
      return;
    }
    for (const name of names) {
      const points = tiers[name].points;
      const today = points.find((p) => p.scale === 1);
      for (const p of points) {
        const tr = el('tr');
        tr.dataset.tier = name;
        tr.dataset.scale = String(p.scale);
        const size = `${name} ${scaleText(p.scale)}: ${fmt.bytes(p.bytes)}, ${fmt.int(p.entries)} entries`;
        if (p === today) tr.className = 'today';
        tr.append(el('td', size), el('td', fmt.pct(p.hit_rate), 'num'),
          el('td', p === today ? 'today' : sizingSentence(name, today, p), 'change'));
        body.append(tr);
      }
    }
  }

  // Semantic hits (issue 20, docs/semantic.md): what was served, and shadow mode's figures per
  // threshold, the suggested one marked. Shown only where /cache/semantic answers. `served` is
  // since the start; /cache/analytics' semantic_hits (the events table) is the window's.
  function renderSemantic(s, a) {
    const section = $('#semantic');
    if (!s) { section.hidden = true; return; }
    section.hidden = false;
    const c = s.config || {};
    $('#semantic-mode').textContent = c.threshold != null ? `(served from ${c.threshold}${c.shadow ? ', shadow on' : ''})`
      : c.shadow ? '(shadow mode: measured, not served)' : '(per namespace or per request)';
    const all = (s.shadow && s.shadow.all) || { misses: 0, pairs: 0, thresholds: [] };
    const served = s.served || { hits: 0, by_model: {} };
    let saved = 0;
    for (const m of Object.values(served.by_model || {})) saved += m.cost_saved || 0;
    setFigure('semantic_served', served.hits || 0, fmt.int);
    setFigure('semantic_saved', saved, fmt.usd);
    setFigure('semantic_window', (a && a.semantic_hits) || 0, fmt.int);
    setFigure('semantic_misses', all.misses || 0, fmt.int);
    setFigure('semantic_pairs', all.pairs || 0, fmt.int);
    const suggested = s.shadow ? s.shadow.suggested_threshold : null;
    setFigure('semantic_suggested', suggested == null ? 'none yet' : suggested.toFixed(2), (v) => v);
    setFigure('semantic_target', s.shadow ? s.shadow.target : 0, fmt.pct);
    setFigure('semantic_vectors', s.index ? s.index.vectors : 0, fmt.int);
    setFigure('semantic_partitions', s.index ? s.index.partitions : 0, fmt.int);
    setFigure('semantic_memory', s.index ? s.index.memory_bytes : 0, fmt.bytes);
    const body = $('#semantic-thresholds tbody');
    body.replaceChildren();
    for (const r of all.thresholds || []) {
      const tr = el('tr');
      tr.dataset.threshold = r.threshold.toFixed(2);
      if (suggested != null && Math.abs(r.threshold - suggested) < 1e-9) tr.className = 'suggested';
      tr.append(el('td', r.threshold.toFixed(2)), el('td', fmt.int(r.extra_hits), 'num extra-hits'),
        el('td', fmt.pct(r.extra_hit_rate), 'num'), el('td', fmt.usd(r.cost_saved), 'num'),
        el('td', r.agreement == null ? '–' : fmt.pct(r.agreement), 'num agreement'));
      body.append(tr);
    }
  }

  // --- the loop ------------------------------------------------------------------------------
  function showAuth(reason) {
    $('#main').hidden = true;
    $('#auth').hidden = false;
    if (reason) $('#auth-reason').textContent = reason;
    document.body.dataset.state = 'auth';
  }

  async function refresh() {
    if (inFlight) return;
    inFlight = true;
    try {
      const q = windowQuery();
      const [a, p] = await Promise.all([getJson('/cache/analytics' + q), getJson('/cache/patterns' + q)]);
      // Asked only where it answers (fleet_scope: the S3 tier is on), so no 404 on a lone gateway.
      const f = a.fleet_scope ? await getJson('/cache/analytics?scope=fleet') : null;
      // Likewise the miss-ratio curves: asked only when they are on (CACHE_SIZING).
      const sz = a.sizing ? await getJson('/cache/sizing') : null;
      const sem = a.semantic ? await getJson('/cache/semantic') : null;
      $('#auth').hidden = true;
      $('#main').hidden = false;  // before the first chart: Chart.js sizes to its visible box
      if (charts === null) charts = makeCharts();
      renderFigures(a);
      renderCharts(a);
      renderHotKeys(a.hot_keys);
      renderHeatmap(p.temporal && p.temporal.heatmap);
      renderSuggestions(a, p);
      renderNearMisses(p.near_misses);
      renderFleet(f);
      renderSizing(sz);
      renderSemantic(sem, a);
      renders++;
      document.body.dataset.state = 'ready';
      document.body.dataset.renders = String(renders);
      setStatus(`Updated ${new Date().toLocaleTimeString('en-GB')}`, false);
    } catch (e) {
      if (e instanceof HttpError && e.status === 401) {
        showAuth(token() ? 'The admin token was refused: paste the current CACHE_ADMIN_TOKEN.' : null);
        setStatus('Admin token needed', true);
      } else if (e instanceof HttpError && e.status === 403) {
        setStatus('Refused: without CACHE_ADMIN_TOKEN the admin API answers loopback clients only', true);
        document.body.dataset.state = 'error';
      } else {
        setStatus(`Update failed: ${e.message}`, true);
        if (charts === null) document.body.dataset.state = 'error';
      }
    } finally {
      inFlight = false;
    }
  }

  function schedule() {
    clearInterval(timer);
    timer = null;
    const seconds = Number($('#refresh').value);
    if (seconds > 0) timer = setInterval(() => { if (!document.hidden) refresh(); }, seconds * 1000);
  }

  function start() {
    takeTokenFromFragment();
    $('#forget-token').hidden = !token();
    const params = new URLSearchParams(location.search);
    if (params.has('refresh')) $('#refresh').value = params.get('refresh');
    if (params.has('window')) $('#window').value = params.get('window');
    $('#token-form').addEventListener('submit', (ev) => {
      ev.preventDefault();
      setToken($('#token').value.trim());
      $('#token').value = '';
      refresh();
    });
    $('#forget-token').addEventListener('click', () => { setToken(''); refresh(); });
    $('#refresh').addEventListener('change', schedule);
    $('#window').addEventListener('change', refresh);
    $('#refresh-now').addEventListener('click', refresh);
    document.addEventListener('visibilitychange', () => { if (!document.hidden) refresh(); });
    schedule();
    refresh();
  }

  if (typeof Chart === 'undefined') {
    setStatus('The chart library did not load (/dashboard/chart.js)', true);
    document.body.dataset.state = 'error';
    return;
  }
  start();
})();
