// What must never be stored: an upstream error, and a stream the client did not read to its end.
import { test } from 'node:test';
import assert from 'node:assert/strict';

import OpenAI from 'openai';
import { startStack, cacheHeaders, collectChat, sleep } from './harness.mjs';

const body = (content, extra = {}) => ({
  model: 'gpt-4o-mini',
  messages: [{ role: 'user', content }],
  ...extra,
});

test('an upstream 500 is passed through as an APIError and not cached, so a repeat reaches the upstream again', async (t) => {
  const s = await startStack(t);
  const client = s.openai();
  const failing = { headers: { 'x-mock-status': '500' }, maxRetries: 0 };

  const err = await client.chat.completions.create(body('Fail for me.'), failing).then(
    () => assert.fail('expected an APIError'), (e) => e);
  assert.ok(err instanceof OpenAI.APIError, `expected an APIError, got ${err}`);
  assert.equal(err.status, 500);
  assert.match(err.message, /mock upstream error 500/);
  assert.equal(err.headers.get('x-llmcache-status'), 'UNCACHEABLE');
  assert.equal(await s.upstreamCalls(), 1);

  const again = await client.chat.completions.create(body('Fail for me.'), failing).then(
    () => assert.fail('expected an APIError'), (e) => e);
  assert.equal(again.status, 500);
  assert.equal(await s.upstreamCalls(), 2, 'the error was not served from the cache');

  // Once the upstream recovers, the same request gets a real answer (a MISS), then HITs.
  const ok = await client.chat.completions.create(body('Fail for me.')).withResponse();
  assert.equal(cacheHeaders(ok.response).status, 'MISS');
  assert.equal(await s.upstreamCalls(), 3);
  const hit = await client.chat.completions.create(body('Fail for me.')).withResponse();
  assert.equal(cacheHeaders(hit.response).status, 'HIT');
  assert.deepEqual(hit.data, ok.data);
  assert.equal(await s.upstreamCalls(), 3);
});

test('an upstream 500 on a streamed request is passed through and not cached', async (t) => {
  const s = await startStack(t);
  const client = s.openai();
  const failing = { headers: { 'x-mock-status': '500' }, maxRetries: 0 };

  for (let i = 1; i <= 2; ++i) {
    const err = await client.chat.completions.create(body('Stream fails.', { stream: true }), failing).then(
      () => assert.fail('expected an APIError'), (e) => e);
    assert.ok(err instanceof OpenAI.APIError, `expected an APIError, got ${err}`);
    assert.equal(err.status, 500);
    assert.equal(await s.upstreamCalls(), i);
  }
});

test('a client that disconnects mid-stream leaves nothing stored, so the same request is a MISS again', async (t) => {
  const s = await startStack(t);
  const client = s.openai();
  const request = body('Abandon me.', { stream: true });
  const CHUNK_DELAY_MS = 300;

  const { data: stream, response } = await client.chat.completions
    .create(request, { headers: { 'x-mock-chunk-delay-ms': String(CHUNK_DELAY_MS) } })
    .withResponse();
  assert.equal(cacheHeaders(response).status, 'MISS');
  let seen = 0;
  try {
    for await (const chunk of stream) {
      assert.ok(chunk.id);
      ++seen;
      stream.controller.abort();  // hang up after the first chunk
    }
  } catch (e) {
    // Depending on timing the SDK ends the iteration quietly or throws its abort error.
    if (!(e instanceof OpenAI.APIUserAbortError || e?.name === 'AbortError')) throw e;
  }
  assert.ok(stream.controller.signal.aborted);
  assert.equal(seen, 1);
  assert.equal(await s.upstreamCalls(), 1);

  // Long enough for the upstream stream to have ended had the gateway kept reading it (the
  // mock's chat stream is five events, CHUNK_DELAY_MS apart).
  await sleep(6 * CHUNK_DELAY_MS);

  const again = await client.chat.completions.create(request).withResponse();
  assert.equal(cacheHeaders(again.response).status, 'MISS', 'the abandoned stream must not have been stored');
  const { text } = await collectChat(again.data);
  assert.match(text, /Abandon me\./);
  assert.equal(await s.upstreamCalls(), 2);

  // The complete stream was stored: the next one is a HIT.
  const third = await client.chat.completions.create(request).withResponse();
  assert.equal(cacheHeaders(third.response).status, 'HIT');
  assert.equal((await collectChat(third.data)).text, text);
  assert.equal(await s.upstreamCalls(), 2);
});

test('a stream the upstream cuts short is not stored, so the same request is a MISS again', async (t) => {
  const s = await startStack(t);
  const client = s.openai();
  const request = body('Cut me short.', { stream: true });

  const { data: stream } = await client.chat.completions
    .create(request, { headers: { 'x-mock-abort-after': '2' } })
    .withResponse();
  // The client sees the stream end early (with or without an error, depending on the SDK).
  await collectChat(stream).catch(() => {});
  assert.equal(await s.upstreamCalls(), 1);

  const again = await client.chat.completions.create(request).withResponse();
  assert.equal(cacheHeaders(again.response).status, 'MISS', 'a truncated stream must not have been stored');
  await collectChat(again.data);
  assert.equal(await s.upstreamCalls(), 2);
});
