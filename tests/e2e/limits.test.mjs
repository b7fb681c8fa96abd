// Issue 17, problem 5: a body over the gateway's limit gets a 413 that the SDKs read (an
// APIError with status 413), not a reset connection ("Connection error", EPIPE) that they retry;
// and a body over the old 8 MiB default but under the 32 MiB one (Anthropic accepts 32 MB) is
// answered.
import { test } from 'node:test';
import assert from 'node:assert/strict';

import OpenAI from 'openai';
import Anthropic from '@anthropic-ai/sdk';
import { startStack, cacheHeaders } from './harness.mjs';

const MiB = 1 << 20;

test('a chat body over the limit is a 413 APIError for the openai client, and the gateway goes on serving', async (t) => {
  const s = await startStack(t);
  const client = s.openai();
  const big = 'x'.repeat(33 * MiB);
  const err = await client.chat.completions
    .create({ model: 'gpt-4o-mini', messages: [{ role: 'user', content: big }] })
    .then(() => assert.fail('expected an APIError'), (e) => e);
  assert.ok(err instanceof OpenAI.APIError, `expected an APIError, got ${err}`);
  assert.ok(!(err instanceof OpenAI.APIConnectionError), `a connection error: ${err}`);
  assert.equal(err.status, 413);
  assert.match(err.message, /larger than/);
  assert.equal(await s.upstreamCalls(), 0);
  const ok = await client.chat.completions
    .create({ model: 'gpt-4o-mini', messages: [{ role: 'user', content: 'still there?' }] })
    .withResponse();
  assert.equal(cacheHeaders(ok.response).status, 'MISS');
});

test('a 413 for the anthropic client too, and a 12 MiB message (over the old 8 MiB default) is answered and cached', async (t) => {
  const s = await startStack(t);
  const client = s.anthropic();
  const err = await client.messages
    .create({ model: 'claude-3-5-haiku-latest', max_tokens: 16,
              messages: [{ role: 'user', content: 'y'.repeat(33 * MiB) }] })
    .then(() => assert.fail('expected an APIError'), (e) => e);
  assert.ok(err instanceof Anthropic.APIError, `expected an APIError, got ${err}`);
  assert.equal(err.status, 413);

  const request = { model: 'claude-3-5-haiku-latest', max_tokens: 16,
                    messages: [{ role: 'user', content: 'z'.repeat(12 * MiB) }] };
  const miss = await client.messages.create(request).withResponse();
  assert.equal(cacheHeaders(miss.response).status, 'MISS');
  const hit = await client.messages.create(request).withResponse();
  assert.equal(cacheHeaders(hit.response).status, 'HIT');
  assert.deepEqual(hit.data, miss.data);
  assert.equal(await s.upstreamCalls(), 1);
});
