// The official openai npm client against charrnn-serve's /v1 API:
// models.list(), completions.create plain, streamed, with logprobs, with echo
// scoring, with n: 2, with presence/frequency penalties and with best_of, compared with the
// daemon's own /sample and /score;
// a bad temperature and an unknown model arrive as the client's typed errors.
// usage: node openai.test.js BASE_URL
"use strict";
const assert = require("node:assert/strict");
const { OpenAI } = require("openai");

const base = process.argv[2];
const key = process.env.CHARRNN_TEST_KEY; // the daemon runs with --api-key-file
const client = new OpenAI({ apiKey: key, baseURL: base + "/v1", maxRetries: 0 });
let failures = 0;

async function native(path, body) {
  const r = await fetch(base + path, {
    method: "POST",
    headers: { "Content-Type": "application/json", "Authorization": "Bearer " + key },
    body: JSON.stringify(body),
  });
  assert.equal(r.status, 200, path);
  return r.json();
}

async function check(name, fn) {
  try {
    await fn();
    console.log("ok   " + name);
  } catch (e) {
    failures++;
    console.log("FAIL " + name + "\n" + (e && e.stack || e));
  }
}

(async () => {
  await check("apiKey: a wrong key is the client's AuthenticationError", async () => {
    const wrong = new OpenAI({ apiKey: key + "x", baseURL: base + "/v1", maxRetries: 0 });
    await assert.rejects(wrong.completions.create({ model: "tiny", prompt: "the", max_tokens: 3 }),
      (e) => e instanceof OpenAI.AuthenticationError && e.status === 401 &&
        e.code === "invalid_api_key");
    const r = await client.completions.create({ model: "tiny", prompt: "the", max_tokens: 3 });
    assert.equal(r.choices[0].text.length, 3);
  });

  await check("models.list", async () => {
    const ids = [];
    for await (const m of client.models.list()) ids.push(m.id);
    assert.deepEqual(ids, ["tiny"]);
    const one = await client.models.retrieve("tiny");
    assert.equal(one.object, "model");
  });

  const plainReq = { model: "tiny", prompt: "the ", max_tokens: 40, seed: 5, temperature: 0.8 };
  let plain;
  await check("completions.create plain = /sample", async () => {
    plain = await client.completions.create(plainReq);
    assert.equal(plain.object, "text_completion");
    assert.match(plain.id, /^cmpl-/);
    assert.equal(plain.choices.length, 1);
    assert.equal([...plain.choices[0].text].length, 40);
    assert.equal(plain.choices[0].finish_reason, "length");
    const { prompt_tokens_details: cached, ...counts } = plain.usage;
    assert.deepEqual(counts, { prompt_tokens: 4, completion_tokens: 40, total_tokens: 44 });
    // prompt characters resumed from the daemon's prefix-state cache
    assert.ok(Number.isInteger(cached.cached_tokens) && cached.cached_tokens <= 4);
    const s = await native("/sample", { prime: "the ", length: 40, seed: 5, temperature: 0.8 });
    assert.equal(plain.choices[0].text, s.text);
  });

  await check("completions.create streamed", async () => {
    const stream = await client.completions.create({
      ...plainReq, stream: true, stream_options: { include_usage: true } });
    let text = "", finish = null, usage = null, chunks = 0;
    for await (const chunk of stream) {
      chunks++;
      if (chunk.usage) usage = chunk.usage;
      for (const c of chunk.choices) {
        text += c.text;
        if (c.finish_reason) finish = c.finish_reason;
      }
    }
    assert.ok(chunks >= 2, "chunks: " + chunks);
    assert.equal(text, plain.choices[0].text);
    assert.equal(finish, "length");
    // the same prompt again: every prompt character comes from the cache
    assert.deepEqual(usage, { ...plain.usage, prompt_tokens_details: { cached_tokens: 4 } });
  });

  await check("completions.create with logprobs", async () => {
    const r = await client.completions.create({ ...plainReq, logprobs: 3 });
    const lp = r.choices[0].logprobs;
    assert.equal(r.choices[0].text, plain.choices[0].text);
    assert.equal(lp.tokens.join(""), r.choices[0].text);
    assert.equal(lp.token_logprobs.length, 40);
    lp.top_logprobs.forEach((top, i) => {
      const keys = Object.keys(top);
      assert.ok(keys.length === 3 || keys.length === 4, JSON.stringify(top));
      assert.equal(top[lp.tokens[i]], lp.token_logprobs[i]);
    });
    assert.deepEqual(lp.text_offset, [...Array(40).keys()].map((i) => i + 4));
    const s = await native("/sample", { prime: "the ", length: 40, seed: 5, temperature: 0.8,
                                        logprobs: 3 });
    assert.deepEqual(lp.token_logprobs, s.logprobs.map((x) => x.logprob));
  });

  await check("completions.create echo scoring = /score", async () => {
    const text = "the quick brown fox jumps over the lazy dog 7 times;";
    const r = await client.completions.create({ model: "tiny", prompt: text, max_tokens: 0,
                                                echo: true, logprobs: 0 });
    const lp = r.choices[0].logprobs;
    assert.equal(r.choices[0].text, text);
    assert.equal(lp.token_logprobs[0], null);
    assert.equal(r.usage.completion_tokens, 0);
    const s = await native("/score", { text });
    assert.deepEqual(lp.token_logprobs, s.logprobs.map((x) => x.logprob));
    const bits = -lp.token_logprobs.slice(1).reduce((a, b) => a + b, 0) /
      (lp.token_logprobs.length - 1) / Math.LN2;
    assert.ok(Math.abs(bits - s.bits_per_char) < 1e-6, bits + " vs " + s.bits_per_char);
  });

  // A seed the server draws must survive a JavaScript client: JSON numbers
  // are doubles there, exact only below 2^53. Eight draws: with 64-bit seeds
  // all eight would be exact with probability 2^-88.
  await check("a seed the server chose, sent back, gives the same text", async () => {
    const { seed: _, ...noSeed } = plainReq;
    for (let i = 0; i < 8; i++) {
      const r = await client.completions.create(noSeed);
      assert.ok(Number.isSafeInteger(r.seed), "seed " + r.seed + " is not exact in JavaScript");
      const again = await client.completions.create({ ...noSeed, seed: r.seed });
      assert.equal(again.choices[0].text, r.choices[0].text);
    }
    for (let i = 0; i < 8; i++) { // /sample: the body's seed and the exact X-Seed header agree
      const r = await fetch(base + "/sample", {
        method: "POST",
        headers: { "Content-Type": "application/json", "Authorization": "Bearer " + key },
        body: JSON.stringify({ prime: "the ", length: 20 }),
      });
      const b = await r.json();
      assert.ok(Number.isSafeInteger(b.seed), "seed " + b.seed);
      assert.equal(BigInt(r.headers.get("X-Seed")), BigInt(b.seed));
      const again = await native("/sample", { prime: "the ", length: 20, seed: b.seed });
      assert.equal(again.text, b.text);
    }
  });

  await check("completions.create n: 2 (choice i uses seed + i)", async () => {
    const r = await client.completions.create({ ...plainReq, n: 2 });
    assert.deepEqual(r.choices.map((c) => c.index), [0, 1]);
    assert.equal(r.choices[0].text, plain.choices[0].text);
    const s1 = await native("/sample", { prime: "the ", length: 40, seed: 6, temperature: 0.8 });
    assert.equal(r.choices[1].text, s1.text);
    assert.notEqual(r.choices[1].text, r.choices[0].text);
  });

  await check("presence_penalty and frequency_penalty = /sample's, and they change the text",
    async () => {
      const req = { ...plainReq, max_tokens: 80, presence_penalty: 1.5, frequency_penalty: 0.5 };
      const r = await client.completions.create(req);
      const s = await native("/sample", { prime: "the ", length: 80, seed: 5, temperature: 0.8,
        presence_penalty: 1.5, frequency_penalty: 0.5 });
      assert.equal(r.choices[0].text, s.text);
      const base = await client.completions.create({ ...plainReq, max_tokens: 80 });
      assert.notEqual(r.choices[0].text, base.choices[0].text);
      // a negative frequency penalty makes repeats likelier: fewer distinct characters
      const rep = await client.completions.create({ ...plainReq, max_tokens: 80,
        frequency_penalty: -2, presence_penalty: -2 });
      const distinct = (t) => new Set([...t]).size;
      assert.ok(distinct(rep.choices[0].text) < distinct(r.choices[0].text),
        JSON.stringify([rep.choices[0].text, r.choices[0].text]));
    });

  await check("a penalty out of range is a BadRequestError naming it", async () => {
    for (const field of ["presence_penalty", "frequency_penalty"]) {
      await assert.rejects(client.completions.create({ ...plainReq, [field]: 2.5 }), (e) => {
        assert.ok(e instanceof OpenAI.BadRequestError, e.constructor.name);
        assert.equal(e.param, field);
        return true;
      });
    }
  });

  await check("best_of: the n of best_of candidates with the highest mean logprob", async () => {
    const mean = (c) => {
      const lp = c.logprobs.token_logprobs.filter((x) => x !== null);
      return lp.reduce((a, b) => a + b, 0) / lp.length;
    };
    const all = await client.completions.create({ ...plainReq, n: 4, logprobs: 0 });
    const ranked = all.choices.map((c, j) => [mean(c), j]).sort((a, b) => b[0] - a[0] || a[1] - b[1]);
    const r = await client.completions.create({ ...plainReq, n: 2, best_of: 4, logprobs: 0 });
    assert.deepEqual(r.choices.map((c) => c.index), [0, 1]);
    assert.deepEqual(r.choices.map((c) => c.text), ranked.slice(0, 2).map(([, j]) => all.choices[j].text));
    assert.equal(r.usage.completion_tokens, all.usage.completion_tokens);
    await assert.rejects(client.completions.create({ ...plainReq, best_of: 3, stream: true }), (e) => {
      assert.ok(e instanceof OpenAI.BadRequestError, e.constructor.name);
      assert.equal(e.param, "best_of");
      return true;
    });
  });

  await check("bad temperature is a BadRequestError with its param", async () => {
    await assert.rejects(client.completions.create({ ...plainReq, temperature: 11 }), (e) => {
      assert.ok(e instanceof OpenAI.BadRequestError, e.constructor.name);
      assert.equal(e.status, 400);
      assert.equal(e.param, "temperature");
      assert.match(e.message, /temperature/);
      return true;
    });
  });

  await check("unknown model is a NotFoundError", async () => {
    await assert.rejects(client.completions.create({ ...plainReq, model: "nope" }), (e) => {
      assert.ok(e instanceof OpenAI.NotFoundError, e.constructor.name);
      assert.equal(e.status, 404);
      assert.equal(e.code, "model_not_found");
      return true;
    });
    await assert.rejects(client.models.retrieve("nope"), OpenAI.NotFoundError);
  });

  console.log(failures ? failures + " failed" : "all passed");
  process.exitCode = failures ? 1 : 0;
})().catch((e) => { console.error(e); process.exitCode = 1; });
