// The official openai client against the gateway: chat completions, plain and streamed.
import { test } from 'node:test';
import assert from 'node:assert/strict';

import { startStack, cacheHeaders, collectChat } from './harness.mjs';

const MODEL = 'gpt-4o-mini';
const chat = (content, extra = {}) => ({
  model: MODEL,
  messages: [{ role: 'system', content: 'You are terse.' }, { role: 'user', content }],
  temperature: 0,
  ...extra,
});

test('a repeated chat completion is a MISS first, then a HIT from memory with the identical answer and no new upstream call', async (t) => {
  const s = await startStack(t);
  const client = s.openai();

  const first = await client.chat.completions.create(chat('What is a cache?')).withResponse();
  const h1 = cacheHeaders(first.response);
  assert.equal(h1.status, 'MISS');
  assert.match(h1.key, /^gpt-4o-mini_[0-9a-f]{16}$/);
  assert.match(first.data.choices[0].message.content, /What is a cache\?/);
  assert.equal(await s.upstreamCalls(), 1);

  const second = await client.chat.completions.create(chat('What is a cache?')).withResponse();
  const h2 = cacheHeaders(second.response);
  assert.equal(h2.status, 'HIT');
  assert.equal(h2.layer, 'memory');
  assert.equal(h2.key, h1.key);
  assert.match(h2.age, /^\d+$/);
  assert.deepEqual(second.data, first.data);
  assert.equal(await s.upstreamCalls(), 1, 'a HIT must not reach the upstream');

  // A different request is not served the first one's answer.
  const other = await client.chat.completions.create(chat('What is a database?')).withResponse();
  assert.equal(cacheHeaders(other.response).status, 'MISS');
  assert.notEqual(other.data.choices[0].message.content, first.data.choices[0].message.content);
  assert.equal(await s.upstreamCalls(), 2);
});

test('a repeated chat stream is a MISS first, then a HIT replaying the same chunks and text with no new upstream call', async (t) => {
  const s = await startStack(t);
  const client = s.openai();
  const body = chat('Stream me a story.', { stream: true, stream_options: { include_usage: true } });

  const first = await client.chat.completions.create(body).withResponse();
  assert.equal(cacheHeaders(first.response).status, 'MISS');
  assert.match(first.response.headers.get('content-type'), /^text\/event-stream/);
  const a = await collectChat(first.data);
  assert.match(a.text, /Stream me a story\./);
  assert.equal(a.chunks.at(-1).usage?.completion_tokens > 0, true, 'the usage chunk arrives');
  assert.equal(await s.upstreamCalls(), 1);

  const second = await client.chat.completions.create(body).withResponse();
  const h2 = cacheHeaders(second.response);
  assert.equal(h2.status, 'HIT');
  assert.equal(h2.layer, 'memory');
  assert.match(second.response.headers.get('content-type'), /^text\/event-stream/);
  const b = await collectChat(second.data);
  assert.equal(b.text, a.text);
  assert.deepEqual(b.chunks, a.chunks);
  assert.equal(await s.upstreamCalls(), 1, 'a HIT must not reach the upstream');
});

test('a plain request after a streamed one is a HIT whose message is the assembled stream', async (t) => {
  const s = await startStack(t);
  const client = s.openai();

  const streamed = await client.chat.completions.create(chat('Assemble me.', { stream: true })).withResponse();
  assert.equal(cacheHeaders(streamed.response).status, 'MISS');
  const a = await collectChat(streamed.data);
  assert.ok(a.text.length > 0);

  const plain = await client.chat.completions.create(chat('Assemble me.')).withResponse();
  assert.equal(cacheHeaders(plain.response).status, 'HIT');
  assert.match(plain.response.headers.get('content-type'), /^application\/json/);
  assert.equal(plain.data.object, 'chat.completion');
  assert.equal(plain.data.id, a.chunks[0].id);
  assert.equal(plain.data.choices[0].message.role, 'assistant');
  assert.equal(plain.data.choices[0].message.content, a.text);
  assert.equal(plain.data.choices[0].finish_reason, 'stop');
  assert.equal(await s.upstreamCalls(), 1);
});

test('a streamed request after a plain one is a HIT whose synthesized stream carries the same text', async (t) => {
  const s = await startStack(t);
  const client = s.openai();

  const plain = await client.chat.completions.create(chat('Synthesize me.')).withResponse();
  assert.equal(cacheHeaders(plain.response).status, 'MISS');
  const text = plain.data.choices[0].message.content;
  assert.ok(text.length > 0);

  const streamed = await client.chat.completions.create(chat('Synthesize me.', { stream: true })).withResponse();
  assert.equal(cacheHeaders(streamed.response).status, 'HIT');
  assert.match(streamed.response.headers.get('content-type'), /^text\/event-stream/);
  const b = await collectChat(streamed.data);
  assert.equal(b.text, text);
  assert.ok(b.chunks.every((c) => c.object === 'chat.completion.chunk' && c.id === plain.data.id));
  assert.equal(b.chunks.findLast((c) => c.choices?.[0]?.finish_reason)?.choices[0].finish_reason, 'stop');
  assert.equal(await s.upstreamCalls(), 1);
});

test('an answer is still a HIT after the gateway restarts, served from the disk layer', async (t) => {
  const s = await startStack(t);
  const first = await s.openai().chat.completions.create(chat('Remember me.')).withResponse();
  assert.equal(cacheHeaders(first.response).status, 'MISS');

  await s.restartGateway();  // graceful: the background disk write is flushed first
  const again = await s.openai().chat.completions.create(chat('Remember me.')).withResponse();
  const h = cacheHeaders(again.response);
  assert.equal(h.status, 'HIT');
  assert.equal(h.layer, 'disk');
  assert.deepEqual(again.data, first.data);
  assert.equal(await s.upstreamCalls(), 1);
});
