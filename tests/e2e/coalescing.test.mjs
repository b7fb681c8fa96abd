// Identical misses in flight together make one upstream call.
import { test } from 'node:test';
import assert from 'node:assert/strict';

import { startStack, cacheHeaders } from './harness.mjs';

const N = 20;

test('twenty concurrent identical requests against a slow upstream make exactly one upstream call and get the same answer', async (t) => {
  const s = await startStack(t);
  const client = s.openai();
  const body = { model: 'gpt-4o-mini', messages: [{ role: 'user', content: 'Everyone at once.' }] };
  const slow = { headers: { 'x-mock-latency-ms': '500' } };

  const results = await Promise.all(
    Array.from({ length: N }, () => client.chat.completions.create(body, slow).withResponse()));

  const statuses = results.map((r) => cacheHeaders(r.response).status);
  assert.equal(await s.upstreamCalls(), 1, `statuses: ${statuses.join(' ')}`);
  assert.equal(statuses.filter((x) => x === 'MISS').length, 1, `statuses: ${statuses.join(' ')}`);
  assert.equal(statuses.filter((x) => x === 'COALESCED').length, N - 1, `statuses: ${statuses.join(' ')}`);
  const keys = new Set(results.map((r) => cacheHeaders(r.response).key));
  assert.equal(keys.size, 1);
  for (const r of results) assert.deepEqual(r.data, results[0].data);
  assert.match(results[0].data.choices[0].message.content, /#1 /, 'the answer of the one upstream call');

  // And afterwards it is simply a HIT.
  const after = await client.chat.completions.create(body).withResponse();
  assert.equal(cacheHeaders(after.response).status, 'HIT');
  assert.deepEqual(after.data, results[0].data);
  assert.equal(await s.upstreamCalls(), 1);
});

test('twenty concurrent identical streamed requests make one upstream call and all read the same text', async (t) => {
  const s = await startStack(t);
  const client = s.openai();
  const body = { model: 'gpt-4o-mini', messages: [{ role: 'user', content: 'Stream to everyone.' }], stream: true };
  const slow = { headers: { 'x-mock-latency-ms': '500' } };

  const results = await Promise.all(Array.from({ length: N }, async () => {
    const { data, response } = await client.chat.completions.create(body, slow).withResponse();
    let text = '';
    for await (const chunk of data) text += chunk.choices?.[0]?.delta?.content ?? '';
    return { status: cacheHeaders(response).status, text };
  }));

  const statuses = results.map((r) => r.status);
  assert.equal(await s.upstreamCalls(), 1, `statuses: ${statuses.join(' ')}`);
  assert.equal(statuses.filter((x) => x === 'MISS').length, 1, `statuses: ${statuses.join(' ')}`);
  assert.equal(statuses.filter((x) => x === 'COALESCED').length, N - 1, `statuses: ${statuses.join(' ')}`);
  assert.ok(results[0].text.length > 0);
  for (const r of results) assert.equal(r.text, results[0].text);
});
