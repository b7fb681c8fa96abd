// The official openai client against the gateway: the Responses API (issue 17, item 1),
// `responses.create` plain and streamed and `responses.stream`, MISS then HIT.
import { test } from 'node:test';
import assert from 'node:assert/strict';

import { startStack, cacheHeaders } from './harness.mjs';

const MODEL = 'gpt-4o-mini';
const ask = (input, extra = {}) => ({ model: MODEL, instructions: 'You are terse.', input, ...extra });

// A client whose fetch notes the x-llmcache-status of every answer (the stream helper hides the
// HTTP response).
function recordingClient(s) {
  const statuses = [];
  const client = s.openai({
    fetch: async (url, init) => {
      const r = await fetch(url, init);
      statuses.push(r.headers.get('x-llmcache-status'));
      return r;
    },
  });
  return { client, statuses };
}

// A response's output without the `parsed: null` that the stream helper's finalResponse adds to
// each output_text part (responses.create does not).
const unparsed = (output) => JSON.parse(JSON.stringify(output, (k, v) => (k === 'parsed' && v === null ? undefined : v)));

// Reads a ResponseStream (or a create({stream: true}) stream) to its end.
async function collect(stream) {
  const events = [];
  let text = '';
  for await (const event of stream) {
    events.push(event);
    if (event.type === 'response.output_text.delta') text += event.delta;
  }
  return { events, text };
}

test('a repeated responses.create is a MISS first, then a HIT with the identical parsed response', async (t) => {
  const s = await startStack(t);
  const client = s.openai();

  const first = await client.responses.create(ask('What is a cache?')).withResponse();
  const h1 = cacheHeaders(first.response);
  assert.equal(h1.status, 'MISS');
  assert.match(h1.key, /^gpt-4o-mini_[0-9a-f]{16}$/);
  assert.match(first.data.output_text, /Mock answer #1 to: What is a cache\?/);

  const second = await client.responses.create(ask('What is a cache?')).withResponse();
  const h2 = cacheHeaders(second.response);
  assert.equal(h2.status, 'HIT');
  assert.equal(h2.key, h1.key);
  assert.deepEqual(second.data, first.data);
  assert.equal(second.data.output_text, first.data.output_text);
  assert.equal(await s.upstreamCalls(), 1, 'a HIT must not reach the upstream');

  const other = await client.responses.create(ask('What is a cache?', { instructions: 'Be verbose.' })).withResponse();
  assert.equal(cacheHeaders(other.response).status, 'MISS', 'instructions are part of the key');
});

test('a repeated responses.create stream is a MISS, then a HIT replaying the same events and text', async (t) => {
  const s = await startStack(t);
  const client = s.openai();

  const first = await client.responses.create(ask('Stream me a story.', { stream: true })).withResponse();
  assert.equal(cacheHeaders(first.response).status, 'MISS');
  const a = await collect(first.data);
  assert.equal(a.events[0].type, 'response.created');
  assert.equal(a.events.at(-1).type, 'response.completed');
  assert.match(a.text, /Stream me a story\./);

  const second = await client.responses.create(ask('Stream me a story.', { stream: true })).withResponse();
  assert.equal(cacheHeaders(second.response).status, 'HIT');
  const b = await collect(second.data);
  assert.equal(b.text, a.text);
  assert.deepEqual(b.events, a.events);
  assert.equal(await s.upstreamCalls(), 1);
});

test('responses.stream is a MISS, then a HIT with the same events and the same finalResponse', async (t) => {
  const s = await startStack(t);
  const { client, statuses } = recordingClient(s);

  const run = async () => {
    const stream = client.responses.stream(ask('Helper stream.'));
    const got = await collect(stream);
    return { ...got, final: await stream.finalResponse() };
  };
  const a = await run();
  const b = await run();
  assert.deepEqual(statuses, ['MISS', 'HIT']);
  assert.match(a.final.output_text, /Mock answer #1 to: Helper stream\./);
  assert.equal(b.text, a.text);
  assert.deepEqual(b.events, a.events);
  assert.deepEqual(b.final, a.final);
  assert.equal(await s.upstreamCalls(), 1);
});

test('a stream after a plain answer is synthesized, a plain answer after a stream assembled, and the SDK takes both', async (t) => {
  const s = await startStack(t);
  const { client, statuses } = recordingClient(s);

  // Stored plain, replayed to the stream helper (synthesized events).
  const plain = await client.responses.create(ask('Plain first.'));
  const stream = client.responses.stream(ask('Plain first.'));
  const got = await collect(stream);
  const final = await stream.finalResponse();
  assert.equal(got.text, plain.output_text);
  assert.equal(final.output_text, plain.output_text);
  assert.deepEqual(unparsed(final.output), plain.output);
  assert.equal(final.id, plain.id);

  // Stored streamed (the mock's own events), served to a plain create (assembled).
  const streamed = client.responses.stream(ask('Stream first.'));
  await collect(streamed);
  const streamedFinal = await streamed.finalResponse();
  const assembled = await client.responses.create(ask('Stream first.'));
  assert.equal(assembled.output_text, streamedFinal.output_text);
  assert.deepEqual(assembled.output, unparsed(streamedFinal.output));
  assert.deepEqual(statuses, ['MISS', 'HIT', 'MISS', 'HIT']);
  assert.equal(await s.upstreamCalls(), 2);
});

test('a function call and a json_schema answer replay with identical parsed output', async (t) => {
  const s = await startStack(t);
  const { client, statuses } = recordingClient(s);
  const tools = [{ type: 'function', name: 'weather', strict: true,
    parameters: { type: 'object', properties: { city: { type: 'string' } }, required: ['city'], additionalProperties: false } }];

  const runTool = async () => {
    const stream = client.responses.stream(ask('Weather in Paris?', { tools }));
    await collect(stream);
    return stream.finalResponse();
  };
  const t1 = await runTool();
  const t2 = await runTool();
  assert.deepEqual(t2, t1);
  assert.equal(t1.output[0].type, 'function_call');
  assert.deepEqual(JSON.parse(t1.output[0].arguments), { city: 'Paris' });

  const format = { type: 'json_schema', name: 'answer', strict: true,
    schema: { type: 'object', properties: { answer: { type: 'string' } }, required: ['answer'], additionalProperties: false } };
  const j1 = await client.responses.create(ask('Structured?', { text: { format } }));
  const j2 = await client.responses.create(ask('Structured?', { text: { format } }));
  assert.deepEqual(j2, j1);
  assert.match(JSON.parse(j1.output_text).answer, /Structured\?/);
  assert.deepEqual(statuses, ['MISS', 'HIT', 'MISS', 'HIT']);
});
