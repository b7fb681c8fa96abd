// Record and replay (CACHE_MODE, docs/record-replay.md) with the official clients: a run recorded
// through the gateway, then replayed with the provider stopped and no key, gives the same parsed
// answers, streams included; a request that was never recorded fails with the explainer's finding.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import OpenAI from 'openai';
import Anthropic from '@anthropic-ai/sdk';

import { startStack, startGateway, cacheHeaders, collectChat, without } from './harness.mjs';

const KEY = 'sk-e2e-record-SECRET-0815';
const chat = (content, extra = {}) => ({
  model: 'gpt-4o-mini',
  messages: [{ role: 'system', content: 'You are terse.' }, { role: 'user', content }],
  temperature: 0,
  ...extra,
});
const claude = (content, extra = {}) => ({
  model: 'claude-3-5-haiku-latest',
  max_tokens: 64,
  messages: [{ role: 'user', content }],
  ...extra,
});

async function collectClaude(stream) {
  const events = [];
  let text = '';
  for await (const e of stream) {
    events.push(e);
    if (e.type === 'content_block_delta') text += e.delta.text ?? '';
  }
  return { events, text };
}

// The suite under test: what an app's tests would send.
async function suite(openai, anthropic) {
  const out = {};
  out.chat = (await openai.chat.completions.create(chat('What is a cache?'))).choices;
  out.chatStream = await collectChat(await openai.chat.completions.create(
    chat('Stream me a story.', { stream: true })));
  out.embedding = (await openai.embeddings.create({ model: 'text-embedding-3-small', input: 'hi' })).data;
  out.claude = (await anthropic.messages.create(claude('Name a colour.'))).content;
  out.claudeStream = await collectClaude(await anthropic.messages.create(
    claude('Count to three.', { stream: true })));
  return out;
}

test('a run recorded with the clients replays the same parsed answers with the provider stopped and no key', async (t) => {
  const cassette = mkdtempSync(path.join(tmpdir(), 'llmcache-e2e-cassette-'));
  const cacheDir = mkdtempSync(path.join(tmpdir(), 'llmcache-e2e-replay-'));
  let replayGateway = null;
  t.after(async () => {
    if (replayGateway) await replayGateway.stop();
    rmSync(cassette, { recursive: true, force: true });
    rmSync(cacheDir, { recursive: true, force: true });
  });
  const s = await startStack(t, { gatewayArgs: ['--mode', 'record', '--cassette', cassette] });
  const recorded = await suite(s.openai({ apiKey: KEY }), s.anthropic({ apiKey: KEY }));
  assert.equal(await s.upstreamCalls(), 5);
  await s.gateway.stop();
  await s.mock.stop();

  const files = readdirSync(path.join(cassette, 'entries'));
  assert.equal(files.length, 5);
  for (const f of files) {
    assert.match(f, /^[A-Za-z0-9_-]+\.json$/);
    assert.ok(!readFileSync(path.join(cassette, 'entries', f), 'utf8').includes(KEY), `${f} holds the key`);
  }

  replayGateway = await startGateway(s.mock.url, cacheDir, ['--mode', 'replay', '--cassette', cassette]);
  const openai = new OpenAI({ baseURL: `${replayGateway.url}/v1`, apiKey: 'unused', maxRetries: 0 });
  const anthropic = new Anthropic({ baseURL: replayGateway.url, apiKey: 'unused', maxRetries: 0 });
  const replayed = await suite(openai, anthropic);
  assert.deepEqual(without(replayed, ['_request_id']), without(recorded, ['_request_id']));
  assert.ok(replayed.chatStream.text.length > 0 && replayed.claudeStream.text.length > 0);

  const hit = await openai.chat.completions.create(chat('What is a cache?')).withResponse();
  assert.equal(cacheHeaders(hit.response).status, 'HIT');
  assert.equal(cacheHeaders(hit.response).layer, 'cassette');

  // A request the suite never recorded: the client's not-found error, naming the changed field.
  await assert.rejects(
    openai.chat.completions.create(chat('What is a cache?', { temperature: 0.5 })),
    (err) => {
      assert.ok(err instanceof OpenAI.NotFoundError, String(err));
      assert.match(err.message, /temperature: 0 -> 0\.5/);
      return true;
    });
  await assert.rejects(
    anthropic.messages.create(claude('Name a color.')),
    (err) => {
      assert.ok(err instanceof Anthropic.NotFoundError, String(err));
      assert.match(err.message, /messages\[0\]\.content: 1 character differs/);
      return true;
    });
});
