// The app's test suite. It talks to whatever OPENAI_BASE_URL points at: the gateway in replay
// mode (run.sh replay: the recorded answers, no provider, no key) or in record mode.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import OpenAI from 'openai';

import { capitalOf, streamStory } from './app.mjs';

const client = new OpenAI({ maxRetries: 0 }); // OPENAI_BASE_URL, OPENAI_API_KEY from the environment

test('capitalOf answers from the recorded run', async () => {
  const answer = await capitalOf(client, 'France');
  assert.equal(typeof answer, 'string');
  assert.ok(answer.length > 0);
  // Replayed answers are the recorded ones: the same on every run (record mode asks anew).
  if (process.env.LLMCACHE_MODE === 'replay') assert.equal(await capitalOf(client, 'France'), answer);
});

test('streamStory assembles a recorded stream', async () => {
  const story = await streamStory(client, 'a cache');
  assert.ok(story.length > 0);
});

test('a request the suite never recorded fails with the field that changed', { skip: process.env.LLMCACHE_MODE !== 'replay' }, async () => {
  await assert.rejects(
    client.chat.completions.create({
      model: 'gpt-4o-mini',
      temperature: 0.5, // the recording used 0
      messages: [
        { role: 'system', content: 'Answer with one word.' },
        { role: 'user', content: 'What is the capital of France?' },
      ],
    }),
    (err) => err instanceof OpenAI.NotFoundError && /temperature: 0 -> 0\.5/.test(err.message),
  );
});
