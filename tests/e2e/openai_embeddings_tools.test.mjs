// The official openai client against the gateway: embeddings (base64 on the wire, the SDK's
// default) and a chat request with tools.
import { test } from 'node:test';
import assert from 'node:assert/strict';

import { startStack, cacheHeaders } from './harness.mjs';

test('repeated embeddings (base64 on the wire, the SDK default) are a HIT with equal vectors', async (t) => {
  const s = await startStack(t);
  const client = s.openai();
  const body = { model: 'text-embedding-3-small', input: ['the quick brown fox', 'jumps over'] };

  const first = await client.embeddings.create(body).withResponse();
  assert.equal(cacheHeaders(first.response).status, 'MISS');
  assert.equal(first.data.data.length, 2);
  for (const item of first.data.data) {
    assert.ok(Array.isArray(item.embedding) || ArrayBuffer.isView(item.embedding), 'the SDK decoded the base64 vector');
    assert.ok(item.embedding.length > 0);
    assert.ok(Array.from(item.embedding).every(Number.isFinite));
  }
  assert.notDeepEqual(Array.from(first.data.data[0].embedding), Array.from(first.data.data[1].embedding));

  const second = await client.embeddings.create(body).withResponse();
  assert.equal(cacheHeaders(second.response).status, 'HIT');
  assert.equal(second.data.data.length, first.data.data.length);
  for (let i = 0; i < first.data.data.length; ++i)
    assert.deepEqual(Array.from(second.data.data[i].embedding), Array.from(first.data.data[i].embedding));
  assert.deepEqual(second.data.usage, first.data.usage);
  assert.equal(await s.upstreamCalls(), 1);

  // The float encoding is a different request: its own MISS, the same numbers (to float32).
  const floats = await client.embeddings.create({ ...body, encoding_format: 'float' }).withResponse();
  assert.equal(cacheHeaders(floats.response).status, 'MISS');
  for (let i = 0; i < first.data.data.length; ++i)
    assert.deepEqual(Array.from(Float32Array.from(floats.data.data[i].embedding)),
                     Array.from(Float32Array.from(first.data.data[i].embedding)));
  assert.equal(await s.upstreamCalls(), 2);
});

test('a chat request with tools gets tool_calls back, and its repeat is a HIT with the same tool call', async (t) => {
  const s = await startStack(t);
  const client = s.openai();
  const body = {
    model: 'gpt-4o-mini',
    messages: [{ role: 'user', content: 'What is the weather in Paris?' }],
    tools: [{
      type: 'function',
      function: {
        name: 'get_weather',
        description: 'The current weather of a city',
        parameters: { type: 'object', properties: { city: { type: 'string' } }, required: ['city'] },
      },
    }],
    tool_choice: 'auto',
  };

  const first = await client.chat.completions.create(body).withResponse();
  assert.equal(cacheHeaders(first.response).status, 'MISS');
  const choice = first.data.choices[0];
  assert.equal(choice.finish_reason, 'tool_calls');
  assert.equal(choice.message.tool_calls.length, 1);
  const call = choice.message.tool_calls[0];
  assert.equal(call.type, 'function');
  assert.equal(call.function.name, 'get_weather');
  assert.doesNotThrow(() => JSON.parse(call.function.arguments));

  const second = await client.chat.completions.create(body).withResponse();
  assert.equal(cacheHeaders(second.response).status, 'HIT');
  assert.deepEqual(second.data.choices[0].message.tool_calls, choice.message.tool_calls);
  assert.deepEqual(second.data, first.data);
  assert.equal(await s.upstreamCalls(), 1);

  // The same request streamed is a HIT too, its tool call synthesized into the stream.
  const streamed = await client.chat.completions.create({ ...body, stream: true }).withResponse();
  assert.equal(cacheHeaders(streamed.response).status, 'HIT');
  let name = '';
  let args = '';
  for await (const chunk of streamed.data) {
    for (const tc of chunk.choices?.[0]?.delta?.tool_calls ?? []) {
      name += tc.function?.name ?? '';
      args += tc.function?.arguments ?? '';
    }
  }
  assert.equal(name, 'get_weather');
  assert.equal(args, call.function.arguments);
  assert.equal(await s.upstreamCalls(), 1);
});
