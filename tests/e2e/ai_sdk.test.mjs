// The Vercel AI SDK (`ai` with `@ai-sdk/openai` and `@ai-sdk/anthropic`) against the gateway,
// unchanged but for its base URL (issue 17, item 7): `openai(model)` (the Responses API),
// `openai.chat(model)` (chat completions) and `anthropic(model)` (messages), each with
// generateText and streamText, MISS then HIT with the same parsed answer and usage.
import { test } from 'node:test';
import assert from 'node:assert/strict';

import { generateText, streamText, tool, Output, jsonSchema } from 'ai';
import { createOpenAI } from '@ai-sdk/openai';
import { createAnthropic } from '@ai-sdk/anthropic';

import { startStack, recordingFetch, without, setEnv } from './harness.mjs';

// The README's "Use it from" settings: both providers take the gateway's /v1 as baseURL
// (unlike @anthropic-ai/sdk, whose baseURL stops before /v1).
const providers = {
  responses: { path: '/v1/responses', model: (s, f) => createOpenAI({ baseURL: `${s.gateway.url}/v1`, apiKey: 'sk-test', fetch: f })('gpt-4o-mini') },
  chat: { path: '/v1/chat/completions', model: (s, f) => createOpenAI({ baseURL: `${s.gateway.url}/v1`, apiKey: 'sk-test', fetch: f }).chat('gpt-4o-mini') },
  anthropic: { path: '/v1/messages', model: (s, f) => createAnthropic({ baseURL: `${s.gateway.url}/v1`, apiKey: 'sk-test', fetch: f })('claude-3-5-haiku-latest') },
};

// What differs between a MISS and its HIT by design: the HTTP headers (x-llmcache-status, age,
// date), the AI SDK's own clock where the provider's answer carries no time (Anthropic), and
// the stream's measured speeds (`performance`).
const VARIES = ['headers', 'timestamp', 'performance'];

// generateText's answer as an application reads it.
const parsedAnswer = (r) => without({
  text: r.text, content: r.content, finishReason: r.finishReason, usage: r.usage,
  toolCalls: r.toolCalls, providerMetadata: r.providerMetadata,
  response: { id: r.response.id, modelId: r.response.modelId, timestamp: r.response.timestamp },
}, VARIES);

// streamText read to its end: every part of its fullStream (headers and clock times left out),
// the text and the usage.
async function readStream(result) {
  const parts = [];
  for await (const part of result.fullStream) parts.push(part);
  return { parts: without(parts, VARIES), text: await result.text, usage: await result.usage };
}

for (const [name, p] of Object.entries(providers)) {
  test(`AI SDK ${name}: generateText is a MISS, then a HIT with the same parsed answer and usage`, async (t) => {
    const s = await startStack(t);
    const rec = recordingFetch();
    const model = p.model(s, rec.fetch);
    const prompt = `What is a cache (${name})?`;

    const a = await generateText({ model, system: 'You are terse.', prompt, maxRetries: 0 });
    assert.match(a.text, /Mock answer #1 to: What is a cache/);
    assert.ok(a.usage.inputTokens > 0 && a.usage.outputTokens > 0, 'usage reported on the MISS');
    const b = await generateText({ model, system: 'You are terse.', prompt, maxRetries: 0 });
    assert.deepEqual(rec.statuses(), ['MISS', 'HIT']);
    assert.deepEqual(rec.paths(), [p.path, p.path]);
    assert.deepEqual(parsedAnswer(b), parsedAnswer(a));
    assert.ok(b.usage.outputTokens > 0, 'usage reported on the HIT');
    assert.equal(await s.upstreamCalls(), 1);
  });

  test(`AI SDK ${name}: streamText is a MISS, then a HIT with the same stream parts, text and usage`, async (t) => {
    const s = await startStack(t);
    const rec = recordingFetch();
    const model = p.model(s, rec.fetch);
    const ask = () => streamText({ model, prompt: `Stream a story (${name}).`, maxRetries: 0, onError: () => {} });

    const a = await readStream(ask());
    assert.match(a.text, /Mock answer #1 to: Stream a story/);
    assert.ok(a.parts.filter((x) => x.type === 'text-delta').length > 2, 'the text arrives in several deltas');
    assert.ok(a.usage.inputTokens > 0 && a.usage.outputTokens > 0, 'usage reported on the MISS');
    const b = await readStream(ask());
    assert.deepEqual(rec.statuses(), ['MISS', 'HIT']);
    assert.deepEqual(b, a);
    assert.equal(await s.upstreamCalls(), 1);

    // The same question without streaming: a HIT assembled from the recorded stream.
    const plain = await generateText({ model, prompt: `Stream a story (${name}).`, maxRetries: 0 });
    assert.equal(rec.statuses()[2], 'HIT');
    assert.equal(plain.text, a.text);
    assert.equal(await s.upstreamCalls(), 1);
  });

  test(`AI SDK ${name}: a tool call and a structured answer replay with the same parsed values`, async (t) => {
    const s = await startStack(t);
    const rec = recordingFetch();
    const model = p.model(s, rec.fetch);
    const tools = {
      weather: tool({
        description: 'The weather of a city',
        inputSchema: jsonSchema({ type: 'object', properties: { city: { type: 'string' } }, required: ['city'], additionalProperties: false }),
      }),
    };
    const call = () => generateText({ model, prompt: 'Weather in Paris?', tools, maxRetries: 0 });
    const t1 = await call();
    assert.equal(t1.finishReason, 'tool-calls');
    assert.deepEqual(t1.toolCalls.map((c) => [c.toolName, c.input]), [['weather', { city: 'Paris' }]]);
    const t2 = await call();
    assert.deepEqual(parsedAnswer(t2), parsedAnswer(t1));

    const schema = jsonSchema({
      type: 'object',
      properties: { answer: { type: 'string' }, confidence: { type: 'number' }, tags: { type: 'array', items: { type: 'string' } } },
      required: ['answer', 'confidence', 'tags'], additionalProperties: false,
    });
    const structured = () => generateText({ model, prompt: 'Is this structured?', output: Output.object({ schema }), maxRetries: 0 });
    const o1 = await structured();
    // OpenAI answers in the json_schema response format (the mock's strings: its answer text);
    // the AI SDK asks Anthropic through a forced tool whose input is the object (strings "Paris").
    assert.match(o1.output.answer, name === 'anthropic' ? /^Paris$/ : /Is this structured\?/);
    assert.equal(typeof o1.output.confidence, 'number');
    const o2 = await structured();
    assert.deepEqual(o2.output, o1.output);
    assert.deepEqual(parsedAnswer(o2), parsedAnswer(o1));
    assert.deepEqual(rec.statuses(), ['MISS', 'HIT', 'MISS', 'HIT']);
    assert.equal(await s.upstreamCalls(), 2);
  });
}

test('AI SDK: OPENAI_BASE_URL and ANTHROPIC_BASE_URL (both ending in /v1) reach the gateway', async (t) => {
  const s = await startStack(t);
  setEnv(t, { OPENAI_BASE_URL: `${s.gateway.url}/v1`, ANTHROPIC_BASE_URL: `${s.gateway.url}/v1` });
  const rec = recordingFetch();
  const openai = createOpenAI({ apiKey: 'sk-test', fetch: rec.fetch });
  const anthropic = createAnthropic({ apiKey: 'sk-test', fetch: rec.fetch });
  for (let i = 0; i < 2; ++i) {
    await generateText({ model: openai('gpt-4o-mini'), prompt: 'env', maxRetries: 0 });
    await generateText({ model: anthropic('claude-3-5-haiku-latest'), prompt: 'env', maxRetries: 0 });
  }
  assert.deepEqual(rec.paths(), ['/v1/responses', '/v1/messages', '/v1/responses', '/v1/messages']);
  assert.deepEqual(rec.statuses(), ['MISS', 'MISS', 'HIT', 'HIT']);
});
