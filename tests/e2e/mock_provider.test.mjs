// The mock provider itself (issue 17, item 6), read by the official SDKs directly and through the
// gateway: its own streams in the providers' event shapes (not the gateway's synthesizer), tool
// calls and structured output from the request's schemas, Anthropic count_tokens, retry-after
// on a 429.
import { test } from 'node:test';
import assert from 'node:assert/strict';

import OpenAI from 'openai';
import Anthropic from '@anthropic-ai/sdk';

import { startStack, collectChat, cacheHeaders } from './harness.mjs';

const direct = (s) => ({
  openai: new OpenAI({ baseURL: `${s.mock.url}/v1`, apiKey: 'sk-test', maxRetries: 0 }),
  anthropic: new Anthropic({ baseURL: s.mock.url, apiKey: 'sk-test', maxRetries: 0 }),
});

test('the mock streams chat as OpenAI does: role first, word-sized content deltas, finish_reason, usage only when asked', async (t) => {
  const s = await startStack(t);
  const { openai } = direct(s);
  const body = { model: 'gpt-4o-mini', messages: [{ role: 'user', content: 'Tell me three words.' }], stream: true };

  const plain = await collectChat(await openai.chat.completions.create(body));
  const [first, ...rest] = plain.chunks;
  assert.deepEqual(first.choices[0].delta, { role: 'assistant', content: '', refusal: null });
  assert.ok(plain.chunks.every((c) => c.object === 'chat.completion.chunk' && c.id === first.id));
  const deltas = rest.filter((c) => c.choices[0]?.delta?.content);
  assert.ok(deltas.length >= 5, `content in word-sized deltas (${deltas.length})`);
  assert.equal(plain.text, 'Mock answer #1 to: Tell me three words.');
  assert.equal(plain.chunks.at(-1).choices[0].finish_reason, 'stop');
  assert.ok(plain.chunks.every((c) => !('usage' in c)), 'no usage member unless asked');

  const withUsage = await collectChat(await openai.chat.completions.create({ ...body, stream_options: { include_usage: true } }));
  const last = withUsage.chunks.at(-1);
  assert.deepEqual(last.choices, []);
  assert.ok(last.usage.prompt_tokens > 0 && last.usage.completion_tokens > 0);
  assert.ok(withUsage.chunks.slice(0, -1).every((c) => c.usage === null), 'usage: null on the others');
});

test('the mock streams legacy completions as OpenAI does: text_completion chunks, then the finish_reason', async (t) => {
  const s = await startStack(t);
  const { openai } = direct(s);
  const chunks = [];
  for await (const c of await openai.completions.create({ model: 'gpt-3.5-turbo-instruct', prompt: 'Once upon a time', stream: true })) chunks.push(c);
  assert.ok(chunks.every((c) => c.object === 'text_completion' && !('usage' in c)));
  assert.ok(chunks.length >= 5, 'text in word-sized pieces');
  assert.equal(chunks.map((c) => c.choices[0].text).join(''), ' Mock completion #1 of: Once upon a time');
  assert.deepEqual(chunks.map((c) => c.choices[0].finish_reason).filter(Boolean), ['stop']);
});

test('the mock streams a chat tool call as OpenAI does: the call head, then its arguments in pieces', async (t) => {
  const s = await startStack(t);
  const { openai } = direct(s);
  const tools = [
    { type: 'function', function: { name: 'other', parameters: { type: 'object', properties: { x: { type: 'integer' } } } } },
    { type: 'function', function: { name: 'weather', parameters: { type: 'object', properties: { city: { type: 'string' }, days: { type: 'integer' }, units: { enum: ['c', 'f'] } }, required: ['city'] } } },
  ];
  const stream = openai.chat.completions.stream({
    model: 'gpt-4o-mini', messages: [{ role: 'user', content: 'Weather?' }], tools,
    tool_choice: { type: 'function', function: { name: 'weather' } },
  });
  const chunks = [];
  for await (const c of stream) chunks.push(c);
  const final = await stream.finalChatCompletion();
  assert.equal(chunks[0].choices[0].delta.content, null);
  const pieces = chunks.filter((c) => c.choices[0]?.delta?.tool_calls?.[0]?.function?.arguments);
  assert.ok(pieces.length >= 2, 'the arguments arrive in pieces');
  const call = final.choices[0].message.tool_calls[0];
  assert.equal(call.function.name, 'weather', 'the tool that tool_choice names');
  assert.deepEqual(JSON.parse(call.function.arguments), { city: 'Paris', days: 1, units: 'c' });
  assert.equal(final.choices[0].finish_reason, 'tool_calls');
});

test('the mock answers chat structured output: a json_schema value of the schema, and a JSON object for json_object', async (t) => {
  const s = await startStack(t);
  const { openai } = direct(s);
  const schema = {
    type: 'object',
    properties: {
      title: { type: 'string' }, year: { type: 'integer' }, rating: { type: ['number', 'null'] },
      genres: { type: 'array', items: { $ref: '#/$defs/genre' } }, ok: { type: 'boolean' },
    },
    required: ['title', 'year', 'rating', 'genres', 'ok'], additionalProperties: false,
    $defs: { genre: { type: 'string', enum: ['drama', 'comedy'] } },
  };
  const r = await openai.chat.completions.create({
    model: 'gpt-4o-mini', messages: [{ role: 'user', content: 'A film?' }],
    response_format: { type: 'json_schema', json_schema: { name: 'film', strict: true, schema } },
  });
  assert.deepEqual(JSON.parse(r.choices[0].message.content),
    { title: 'Mock answer #1 to: A film?', year: 1, rating: 1, genres: ['drama'], ok: true });

  const o = await openai.chat.completions.create({
    model: 'gpt-4o-mini', messages: [{ role: 'user', content: 'JSON please' }], response_format: { type: 'json_object' },
  });
  assert.deepEqual(JSON.parse(o.choices[0].message.content), { answer: 'Mock answer #2 to: JSON please' });
});

test('the mock streams Anthropic messages as Anthropic does, tool_use included', async (t) => {
  const s = await startStack(t);
  const { anthropic } = direct(s);
  const base = { model: 'claude-3-5-haiku-latest', max_tokens: 64, messages: [{ role: 'user', content: 'Say hello to the world.' }] };

  const events = [];
  for await (const e of await anthropic.messages.create({ ...base, stream: true })) events.push(e);
  const types = events.map((e) => e.type);
  assert.deepEqual(types.slice(0, 2), ['message_start', 'content_block_start']);
  assert.deepEqual(types.slice(-4), ['content_block_delta', 'content_block_stop', 'message_delta', 'message_stop']);
  assert.ok(types.filter((x) => x === 'content_block_delta').length >= 5, 'text in word-sized deltas');
  assert.equal(events[0].message.usage.output_tokens, 1);
  assert.ok(events.at(-2).usage.output_tokens > 1);
  assert.equal(events.at(-2).delta.stop_reason, 'end_turn');

  const tools = [{ name: 'weather', input_schema: { type: 'object', properties: { city: { type: 'string' } }, required: ['city'] } }];
  const stream = anthropic.messages.stream({ ...base, tools });
  const json = [];
  stream.on('inputJson', (partial) => json.push(partial));
  const final = await stream.finalMessage();
  assert.equal(final.stop_reason, 'tool_use');
  assert.deepEqual(final.content.map((b) => [b.type, b.name, b.input]), [['tool_use', 'weather', { city: 'Paris' }]]);
  assert.ok(json.length >= 2, 'the input arrives in pieces');

  const none = await anthropic.messages.create({ ...base, tools, tool_choice: { type: 'none' } });
  assert.equal(none.content[0].type, 'text', 'tool_choice none: a text answer');
});

test('Anthropic count_tokens answers through the gateway, uncached', async (t) => {
  const s = await startStack(t);
  const client = s.anthropic();
  const body = { model: 'claude-3-5-haiku-latest', system: 'You are terse.', messages: [{ role: 'user', content: 'How many tokens is this?' }] };
  const a = await client.messages.countTokens(body).withResponse();
  assert.equal(cacheHeaders(a.response).status, 'BYPASS');
  assert.ok(Number.isInteger(a.data.input_tokens) && a.data.input_tokens > 0);
  const longer = await client.messages.countTokens({ ...body, messages: [{ role: 'user', content: 'How many tokens is this? '.repeat(10) }] });
  assert.ok(longer.input_tokens > a.data.input_tokens);
  await client.messages.countTokens(body);
  assert.equal((await s.mockStats()).paths['/v1/messages/count_tokens'], 3, 'passed through each time');
});

test('a 429 carries retry-after through the gateway, and the SDK waits it out and retries', async (t) => {
  const s = await startStack(t);
  const client = s.openai({ maxRetries: 0 });
  const body = { model: 'gpt-4o-mini', messages: [{ role: 'user', content: 'Rate me.' }] };
  const err = await client.chat.completions.create(body, { headers: { 'x-mock-status': '429', 'x-mock-retry-after': '2' } })
    .then(() => null, (e) => e);
  assert.equal(err?.status, 429);
  assert.equal(err.headers.get('retry-after'), '2');
  assert.equal(err.error?.type ?? err.type, 'rate_limit_error');

  // An SDK with retries honours it (retry-after 0: at once) and gets a 429 again each time.
  const retrying = s.openai({ maxRetries: 2 });
  const before = await s.upstreamCalls();
  await assert.rejects(retrying.chat.completions.create(body, { headers: { 'x-mock-status': '429', 'x-mock-retry-after': '0' } }), { status: 429 });
  assert.equal(await s.upstreamCalls() - before, 3, 'three attempts, none of them cached');
  const ok = await client.chat.completions.create(body).withResponse();
  assert.equal(cacheHeaders(ok.response).status, 'MISS');
});
