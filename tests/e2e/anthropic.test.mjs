// The official @anthropic-ai/sdk client against the gateway: messages, plain and streamed.
import { test } from 'node:test';
import assert from 'node:assert/strict';

import { startStack, cacheHeaders } from './harness.mjs';

const MODEL = 'claude-3-5-haiku-latest';
const message = (content) => ({
  model: MODEL,
  max_tokens: 256,
  system: 'You are terse.',
  messages: [{ role: 'user', content }],
});

// Runs messages.stream() to its end: the response headers, the text events and finalMessage().
async function streamMessage(client, body) {
  const stream = client.messages.stream(body);
  let text = '';
  stream.on('text', (delta) => { text += delta; });
  const { response } = await stream.withResponse();
  const final = await stream.finalMessage();
  return { response, text, final };
}

test('a repeated Anthropic message is a MISS first, then a HIT with the identical answer and no new upstream call', async (t) => {
  const s = await startStack(t);
  const client = s.anthropic();

  const first = await client.messages.create(message('Name a prime.')).withResponse();
  const h1 = cacheHeaders(first.response);
  assert.equal(h1.status, 'MISS');
  assert.equal(first.data.type, 'message');
  assert.equal(first.data.content[0].type, 'text');
  assert.match(first.data.content[0].text, /Name a prime\./);
  assert.equal(await s.upstreamCalls(), 1);

  const second = await client.messages.create(message('Name a prime.')).withResponse();
  const h2 = cacheHeaders(second.response);
  assert.equal(h2.status, 'HIT');
  assert.equal(h2.layer, 'memory');
  assert.equal(h2.key, h1.key);
  assert.deepEqual(second.data, first.data);
  assert.equal(await s.upstreamCalls(), 1);

  const stats = await s.mockStats();
  assert.equal(stats.paths['/v1/messages'], 1);
  assert.equal(stats.authorized_calls, 1, 'the x-api-key reached the upstream');
});

test('a repeated Anthropic stream is a MISS first, then a HIT with the same text events and final message', async (t) => {
  const s = await startStack(t);
  const client = s.anthropic();

  const a = await streamMessage(client, message('Stream a haiku.'));
  assert.equal(cacheHeaders(a.response).status, 'MISS');
  assert.match(a.text, /Stream a haiku\./);
  assert.equal(a.final.content[0].text, a.text);
  assert.equal(a.final.stop_reason, 'end_turn');
  assert.equal(await s.upstreamCalls(), 1);

  const b = await streamMessage(client, message('Stream a haiku.'));
  assert.equal(cacheHeaders(b.response).status, 'HIT');
  assert.equal(b.text, a.text);
  assert.deepEqual(b.final, a.final);
  assert.equal(await s.upstreamCalls(), 1);

  // The same request without streaming: a HIT whose message is the assembled stream.
  const plain = await client.messages.create(message('Stream a haiku.')).withResponse();
  assert.equal(cacheHeaders(plain.response).status, 'HIT');
  assert.equal(plain.data.id, a.final.id);
  assert.equal(plain.data.content[0].text, a.text);
  assert.equal(await s.upstreamCalls(), 1);
});
