// LangChain JS (`@langchain/openai`, `@langchain/anthropic`) against the gateway, unchanged but
// for its base URL (issue 17, item 7): ChatOpenAI on chat completions and with
// `useResponsesApi: true`, and ChatAnthropic; `invoke` and `stream`, MISS then HIT with the same
// parsed message and usage.
import { test } from 'node:test';
import assert from 'node:assert/strict';

import { ChatOpenAI } from '@langchain/openai';
import { ChatAnthropic } from '@langchain/anthropic';

import { startStack, recordingFetch, without, setEnv } from './harness.mjs';

// The README's "Use it from" settings: ChatOpenAI takes the gateway's /v1 in
// configuration.baseURL, ChatAnthropic the gateway itself (no /v1) in anthropicApiUrl.
const models = {
  chat: {
    path: '/v1/chat/completions',
    make: (s, f) => new ChatOpenAI({ model: 'gpt-4o-mini', apiKey: 'sk-test', maxRetries: 0, configuration: { baseURL: `${s.gateway.url}/v1`, fetch: f } }),
  },
  responses: {
    path: '/v1/responses',
    make: (s, f) => new ChatOpenAI({ model: 'gpt-4o-mini', apiKey: 'sk-test', maxRetries: 0, useResponsesApi: true, configuration: { baseURL: `${s.gateway.url}/v1`, fetch: f } }),
  },
  anthropic: {
    path: '/v1/messages',
    make: (s, f) => new ChatAnthropic({ model: 'claude-3-5-haiku-latest', apiKey: 'sk-test', maxRetries: 0, anthropicApiUrl: s.gateway.url, clientOptions: { fetch: f } }),
  },
};

// An AI message as an application reads it (response headers, where a client keeps them, vary).
const parsedMessage = (m) => without({
  id: m.id, content: m.content, tool_calls: m.tool_calls, invalid_tool_calls: m.invalid_tool_calls,
  usage_metadata: m.usage_metadata, response_metadata: m.response_metadata, additional_kwargs: m.additional_kwargs,
}, ['headers']);

const messages = (q) => [['system', 'You are terse.'], ['human', q]];

async function readStream(model, q) {
  const chunks = [];
  let whole;
  for await (const chunk of await model.stream(messages(q))) {
    chunks.push(chunk);
    whole = whole ? whole.concat(chunk) : chunk;
  }
  return { chunks: chunks.map(parsedMessage), whole: parsedMessage(whole), text: whole.text };
}

for (const [name, m] of Object.entries(models)) {
  test(`LangChain ${name}: invoke is a MISS, then a HIT with the same message and usage`, async (t) => {
    const s = await startStack(t);
    const rec = recordingFetch();
    const model = m.make(s, rec.fetch);

    const a = await model.invoke(messages(`What is a cache (${name})?`));
    assert.match(a.text, /Mock answer #1 to: What is a cache/);
    assert.ok(a.usage_metadata?.input_tokens > 0 && a.usage_metadata?.output_tokens > 0, 'usage on the MISS');
    const b = await model.invoke(messages(`What is a cache (${name})?`));
    assert.deepEqual(rec.statuses(), ['MISS', 'HIT']);
    assert.deepEqual(rec.paths(), [m.path, m.path]);
    assert.deepEqual(parsedMessage(b), parsedMessage(a));
    assert.ok(b.usage_metadata.output_tokens > 0, 'usage on the HIT');
    assert.equal(await s.upstreamCalls(), 1);
  });

  test(`LangChain ${name}: stream is a MISS, then a HIT with the same chunks, message and usage`, async (t) => {
    const s = await startStack(t);
    const rec = recordingFetch();
    const model = m.make(s, rec.fetch);

    const a = await readStream(model, `Stream a story (${name}).`);
    assert.match(a.text, /Mock answer #1 to: Stream a story/);
    assert.ok(a.chunks.length > 3, 'the answer arrives in several chunks');
    assert.ok(a.whole.usage_metadata?.output_tokens > 0, 'usage on the streamed MISS');
    const b = await readStream(model, `Stream a story (${name}).`);
    assert.deepEqual(rec.statuses(), ['MISS', 'HIT']);
    assert.deepEqual(b, a);
    assert.equal(await s.upstreamCalls(), 1);

    // invoke after stream: a HIT whose message is the assembled stream.
    const plain = await model.invoke(messages(`Stream a story (${name}).`));
    assert.equal(rec.statuses()[2], 'HIT');
    assert.equal(plain.text, a.text);
    assert.equal(await s.upstreamCalls(), 1);
  });

  test(`LangChain ${name}: a bound tool's call replays with the same parsed call`, async (t) => {
    const s = await startStack(t);
    const rec = recordingFetch();
    const model = m.make(s, rec.fetch).bindTools([{
      type: 'function',
      function: { name: 'weather', description: 'The weather of a city', parameters: { type: 'object', properties: { city: { type: 'string' } }, required: ['city'] } },
    }]);
    const a = await model.invoke('Weather in Paris?');
    assert.deepEqual(a.tool_calls.map((c) => [c.name, c.args]), [['weather', { city: 'Paris' }]]);
    const b = await model.invoke('Weather in Paris?');
    assert.deepEqual(rec.statuses(), ['MISS', 'HIT']);
    assert.deepEqual(parsedMessage(b), parsedMessage(a));
  });
}

test('LangChain: OPENAI_BASE_URL (with /v1) and ANTHROPIC_BASE_URL (without) reach the gateway', async (t) => {
  const s = await startStack(t);
  setEnv(t, { OPENAI_BASE_URL: `${s.gateway.url}/v1`, ANTHROPIC_BASE_URL: s.gateway.url });
  const rec = recordingFetch();
  const openai = new ChatOpenAI({ model: 'gpt-4o-mini', apiKey: 'sk-test', maxRetries: 0, configuration: { fetch: rec.fetch } });
  const anthropic = new ChatAnthropic({ model: 'claude-3-5-haiku-latest', apiKey: 'sk-test', maxRetries: 0, clientOptions: { fetch: rec.fetch } });
  for (let i = 0; i < 2; ++i) {
    await openai.invoke('env');
    await anthropic.invoke('env');
  }
  assert.deepEqual(rec.paths(), ['/v1/chat/completions', '/v1/messages', '/v1/chat/completions', '/v1/messages']);
  assert.deepEqual(rec.statuses(), ['MISS', 'MISS', 'HIT', 'HIT']);
});
