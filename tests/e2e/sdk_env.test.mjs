// The official SDKs configured by environment alone (the README's "Use it from" table):
// OPENAI_BASE_URL ends in /v1, ANTHROPIC_BASE_URL does not.
import { test } from 'node:test';
import assert from 'node:assert/strict';

import OpenAI from 'openai';
import Anthropic from '@anthropic-ai/sdk';

import { startStack, recordingFetch, setEnv } from './harness.mjs';

test('openai and @anthropic-ai/sdk reach the gateway through OPENAI_BASE_URL (with /v1) and ANTHROPIC_BASE_URL (without)', async (t) => {
  const s = await startStack(t);
  setEnv(t, { OPENAI_BASE_URL: `${s.gateway.url}/v1`, ANTHROPIC_BASE_URL: s.gateway.url });
  const rec = recordingFetch();
  const openai = new OpenAI({ apiKey: 'sk-test', maxRetries: 0, fetch: rec.fetch });
  const anthropic = new Anthropic({ apiKey: 'sk-test', maxRetries: 0, fetch: rec.fetch });
  for (let i = 0; i < 2; ++i) {
    await openai.chat.completions.create({ model: 'gpt-4o-mini', messages: [{ role: 'user', content: 'env' }] });
    await anthropic.messages.create({ model: 'claude-3-5-haiku-latest', max_tokens: 64, messages: [{ role: 'user', content: 'env' }] });
  }
  assert.deepEqual(rec.paths(), ['/v1/chat/completions', '/v1/messages', '/v1/chat/completions', '/v1/messages']);
  assert.deepEqual(rec.statuses(), ['MISS', 'MISS', 'HIT', 'HIT']);
});
