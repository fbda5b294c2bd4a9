// The playground page in a real browser: Debian's chromium, headless, driven
// by playwright-core. Asserts that text streams into the page (several
// intermediate lengths are seen before the end), that the finish status shows
// a seed, and that "Run again, same seed" reproduces the same text; that every
// generated character is tinted by its probability and that hovering one shows
// the API's top 5 with the API's numbers; that the Score view shows a heat map
// of the text with the API's bits per character and the same tooltips.
// Screenshots (SCREENSHOT_PATH and its -probs / -score siblings) are kept.
// usage: node playground.test.js BASE_URL SCREENSHOT_PATH
"use strict";
const { launch, openPlayground, until } = require("./browser");

const [base, shot] = process.argv.slice(2);
const LENGTH = 10000; // the daemon's default max_length: long enough to watch it stream
// How long a page may wait for the daemon: a sanitizer build generates those 10,000 characters
// in about 30 s on a shared 2-core machine. A bound against hanging, not a measurement.
const WAIT_MS = 120000;
function fail(msg) { console.error("FAIL: " + msg); process.exitCode = 1; }

// How the page writes a character and its numbers (the tooltip's format).
const shown = (ch) => ch === " " ? "\u2423" : ch === "\n" ? "\u23ce" : ch === "\t" ? "\u21e5" : ch;
const pct = (lp) => (100 * Math.exp(lp)).toFixed(2) + "%";
const rows = (top) => top.map((t) => [shown(t.char), pct(t.logprob), t.logprob.toFixed(4)]);

async function api(page, path, body) {
  return page.evaluate(async ([path, body]) => {
    const r = await fetch(path, { method: "POST", headers: { "Content-Type": "application/json" },
                                  body: JSON.stringify(body) });
    return r.json();
  }, [path, body]);
}

// Hovers the span and returns the tooltip's head and table as text.
async function tooltip(page, selector) {
  await page.hover(selector);
  await page.waitForSelector("#tip", { state: "visible", timeout: 5000 });
  return page.evaluate(() => ({
    head: document.querySelector("#tip .head").textContent,
    rows: [...document.querySelectorAll("#tip tr")].map((r) => [...r.cells].map((c) => c.textContent)),
  }));
}

function sameRows(what, got, want) {
  if (JSON.stringify(got) !== JSON.stringify(want))
    fail(`${what}: tooltip ${JSON.stringify(got)} != API ${JSON.stringify(want)}`);
  else console.log(`ok: ${what}: tooltip equals the API (${JSON.stringify(got[0])} ...)`);
}

async function probabilities(page, shotPath) {
  const req = { prime: "the ", length: 300, seed: "42", temperature: 0.9 };
  await page.fill("#prime", req.prime);
  await page.fill("#length", String(req.length));
  await page.fill("#temperature", String(req.temperature));
  await page.fill("#seed", req.seed);
  await page.click("#run");
  await until(page, () => /finish:/.test(document.getElementById("status").textContent), WAIT_MS);
  const tints = await page.$$eval("#generated .ch", (spans) => spans.map((s) => s.style.backgroundColor));
  if (tints.length !== req.length) fail(`expected ${req.length} character spans, got ${tints.length}`);
  const untinted = tints.filter((t) => !t).length, distinct = new Set(tints).size;
  if (untinted || distinct < 3) fail(`tints: ${untinted} untinted, ${distinct} distinct colours`);
  else console.log(`ok: every generated character tinted (${distinct} distinct colours)`);
  const want = await api(page, "/sample", { ...req, seed: 42, logprobs: 5 });
  for (const i of [0, 10, 123]) {
    const tip = await tooltip(page, `#generated .ch:nth-child(${i + 1})`);
    const rec = want.logprobs[i];
    sameRows(`generated char ${i}`, tip.rows, rows(rec.top));
    if (!tip.head.includes(pct(rec.logprob)) || !tip.head.includes(rec.logprob.toFixed(4)))
      fail(`char ${i}: tooltip head "${tip.head}" lacks ${pct(rec.logprob)} / ${rec.logprob.toFixed(4)}`);
  }
  await page.screenshot({ path: shotPath });
}

async function scoring(page, shotPath) {
  const text = "the quick brown fox jumps over the lazy dog 12 times;\nthe lazy fox";
  await page.click("#tab-score");
  await page.fill("#score-text", text);
  await page.click("#score");
  await until(page, () => /bits\/char|error|HTTP/.test(document.getElementById("status").textContent), WAIT_MS);
  const want = await api(page, "/score", { text, top_logprobs: 5 });
  const status = await page.textContent("#status");
  if (!status.includes(want.bits_per_char.toFixed(3) + " bits/char"))
    fail(`score status "${status}" lacks the API's ${want.bits_per_char.toFixed(3)} bits/char`);
  else console.log("ok: score view: " + status);
  const heat = await page.$$eval("#heat .ch", (spans) => spans.map((s) => [s.textContent, s.style.backgroundColor]));
  if (heat.map((h) => h[0]).join("") !== text) fail("the heat map's characters are not the text");
  if (heat[0][1] || heat.slice(1).some((h) => !h[1])) fail("heat map: the first character is tinted or another is not");
  else console.log(`ok: heat map of ${heat.length} characters, first one untinted`);
  for (const i of [1, 20]) {
    const tip = await tooltip(page, `#heat .ch:nth-child(${i + 1})`);
    sameRows(`scored char ${i}`, tip.rows, rows(want.logprobs[i].top));
  }
  await page.screenshot({ path: shotPath });
}

// The sampling controls: what the page sends is what the fields say, and the
// text it shows is what the API gives for that body.
async function controls(page) {
  const set = { top_k: "7", min_p: "0.05", repetition_penalty: "1.3", presence_penalty: "0.5",
                penalty_window: "32" };
  await page.click("#controls summary");
  await page.fill("#prime", "the ");
  await page.fill("#length", "200");
  await page.fill("#temperature", "1");
  await page.fill("#seed", "7");
  for (const [id, v] of Object.entries(set)) await page.fill("#" + id, v);
  await page.fill("#stop-strings", "\\n\\n\nzzz");
  let sent = null;
  const grab = (req) => { if (req.url().endsWith("/sample") && req.method() === "POST") sent = req.postData(); };
  page.on("request", grab);
  await page.click("#run");
  await until(page, () => /finish:/.test(document.getElementById("status").textContent) ||
                          document.getElementById("status").classList.contains("error"), WAIT_MS);
  page.off("request", grab);
  const status = await page.textContent("#status");
  if (!/finish:/.test(status)) return fail("controls: the generation failed: " + status);
  const body = JSON.parse(sent || "null");
  if (!body) return fail("no /sample request seen");
  for (const [id, v] of Object.entries(set))
    if (body[id] !== Number(v)) fail(`sent ${id} = ${JSON.stringify(body[id])}, the field says ${v}`);
  if (JSON.stringify(body.stop) !== JSON.stringify(["\n\n", "zzz"]))
    fail("stop lines sent as " + JSON.stringify(body.stop));
  if ("top_p" in body || "frequency_penalty" in body || "regex" in body)
    fail("empty fields were sent: " + sent);
  const shownText = await page.textContent("#generated");
  const want = await api(page, "/sample", { ...body, stream: false, seed: 7 });
  if (want.text !== shownText) fail(`page shows ${JSON.stringify(shownText.slice(0, 40))}, API gives ${JSON.stringify(String(want.text).slice(0, 40))}`);
  else console.log(`ok: the controls are sent as set and the page shows the API's text (${[...shownText].length} chars)`);
  for (const id of Object.keys(set)) await page.fill("#" + id, "");
  await page.fill("#stop-strings", "");
}

(async () => {
  const browser = await launch();
  try {
    const page = await openPlayground(browser, base);
    await page.fill("#prime", "the ");
    await page.fill("#length", String(LENGTH));
    await page.fill("#temperature", "0.9");
    await page.fill("#seed", "");
    // Record the generated text's length at every DOM change while it streams.
    await page.evaluate(() => {
      window.__lengths = [];
      new MutationObserver(() => {
        const g = document.getElementById("generated");
        if (g) window.__lengths.push(g.textContent.length);
      }).observe(document.getElementById("out"), { childList: true, subtree: true, characterData: true });
    });
    await page.click("#run");
    await until(page, () => /finish:|stopped|error|HTTP/i.test(document.getElementById("status").textContent), WAIT_MS);
    const status = await page.textContent("#status");
    const seen = new Set(await page.evaluate(() => window.__lengths));
    const partial = [...seen].filter((n) => n > 0 && n < LENGTH);
    if (!/finish: length/.test(status)) fail("no finish status, got: " + status);
    else console.log("ok: finished: " + status);
    if (partial.length < 2) fail("text did not stream: intermediate lengths seen " + JSON.stringify(partial));
    else console.log("ok: streamed, " + partial.length + " intermediate lengths seen");
    console.log("lengths: " + JSON.stringify([...seen].slice(0, 20)));
    const first = await page.textContent("#generated");
    if ([...first].length !== LENGTH) fail(`expected ${LENGTH} characters, got ${[...first].length}`);
    await page.screenshot({ path: shot });
    await page.click("#again");
    await until(page, () => /finish:/.test(document.getElementById("status").textContent), WAIT_MS);
    const second = await page.textContent("#generated");
    if (second !== first) fail("run again with the same seed gave different text");
    else console.log("ok: same seed, same text");
    await probabilities(page, shot.replace(/\.png$/, "-probs.png"));
    await scoring(page, shot.replace(/\.png$/, "-score.png"));
    await page.click("#tab-generate");
    await controls(page);
  } finally {
    await browser.close();
  }
})().catch((e) => { fail(String(e && e.stack || e)); });
