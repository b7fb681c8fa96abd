// The "app" under test: two features built on the OpenAI client.
export async function capitalOf(client, country) {
  const r = await client.chat.completions.create({
    model: 'gpt-4o-mini',
    temperature: 0,
    messages: [
      { role: 'system', content: 'Answer with one word.' },
      { role: 'user', content: `What is the capital of ${country}?` },
    ],
  });
  return r.choices[0].message.content;
}

export async function streamStory(client, topic) {
  const stream = await client.chat.completions.create({
    model: 'gpt-4o-mini',
    temperature: 0,
    stream: true,
    messages: [{ role: 'user', content: `Tell a two-line story about ${topic}.` }],
  });
  let text = '';
  for await (const chunk of stream) text += chunk.choices[0]?.delta?.content ?? '';
  return text;
}
