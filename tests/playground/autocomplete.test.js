// The playground's Autocomplete view in a real browser (headless chromium,
// playwright-core). Types a few hundred characters one key at a time and, at
// several points, waits for the suggestion for the text typed so far and
// asserts that its raw text (the page's data-raw) is byte for byte what
// POST /sample returns from here for the same text and the page's default
// parameters, and that the grey text shown is that cut at a word boundary as
// the page documents it. Also: Tab appends the suggestion and the next one
// follows; Escape dismisses; an answer that comes back after the text changed
// is never shown; usage.cached_chars, when the answer has it, is in the status
// line with the latency; a character outside the vocabulary is an error in the status
// line and the page goes on working. The screenshot is kept.
// usage: node autocomplete.test.js BASE_URL SCREENSHOT_PATH
"use strict";
const { launch, until } = require("./browser");

const [base, shot] = process.argv.slice(2);
const PARAMS = { length: 40, temperature: 0, seed: 1 }; // the view's defaults
const WAIT_MS = 120000; // a bound against hanging (sanitizer builds are slow), not a measurement
function fail(msg) { console.error("FAIL: " + msg); process.exitCode = 1; }
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

// The cut as the page's hint and comments describe it, written here on its
// own: drop the last whitespace character and everything after it (a word
// not finished), then trailing whitespace; if no word is left, the whole text.
function cut(raw) {
  let i = raw.length - 1;
  while (i >= 0 && !/\s/.test(raw[i])) i--;
  if (i < 0) return raw;
  let end = i;
  while (end > 0 && /\s/.test(raw[end - 1])) end--;
  return end > 0 ? raw.slice(0, end) : raw;
}

// The oracle: the daemon's answer to the same request, asked from node.
async function api(prime, model) {
  const r = await fetch(base + "/sample", {
    method: "POST", headers: { "Content-Type": "application/json" },
    body: JSON.stringify({ prime, model, ...PARAMS }),
  });
  const msg = await r.json();
  if (!r.ok) throw new Error(`API ${r.status}: ${JSON.stringify(msg)}`);
  return msg;
}

// Waits for the suggestion for the textarea's current text and checks it.
async function checkpoint(page, what) {
  try {
    await until(page, () => document.getElementById("ac-ghost").dataset.for ===
                                     document.getElementById("ac-text").value, WAIT_MS);
  } catch (e) {
    fail(`${what}: no suggestion for the current text; status "${await page.textContent("#status")}"`);
    return null;
  }
  const got = await page.evaluate(() => {
    const g = document.getElementById("ac-ghost");
    return { text: document.getElementById("ac-text").value, raw: g.dataset.raw, shown: g.textContent,
             model: document.getElementById("model").value, status: document.getElementById("status").textContent };
  });
  const answer = await api(got.text, got.model), want = answer.text;
  // the daemon's own count differs (the page asked first), but not whether there is one
  const cacheSaid = /, \d+ chars from cache$/.test(got.status);
  if (got.raw !== want) fail(`${what}: page's suggestion ${JSON.stringify(got.raw)} != API ${JSON.stringify(want)}`);
  else if (got.shown !== cut(want)) fail(`${what}: shown ${JSON.stringify(got.shown)} != cut ${JSON.stringify(cut(want))}`);
  else if (!(await page.isVisible("#ac-ghost"))) fail(`${what}: the suggestion is not visible`);
  else if (!/^suggestion in \d+ ms/.test(got.status)) fail(`${what}: status "${got.status}" has no latency`);
  else if (cacheSaid !== ("cached_chars" in answer.usage))
    fail(`${what}: status "${got.status}" but the API's usage is ${JSON.stringify(answer.usage)}`);
  else console.log(`ok: ${what}: after ${got.text.length} chars, ${JSON.stringify(got.shown)} ` +
                   `(raw ${JSON.stringify(want)}) equals the API; ${got.status}`);
  return got;
}

// A few hundred characters inside the test model's vocabulary (lowercase, digits, " ;\n").
const TYPED = [
  "the quick brown fox jumps over the lazy dog 7 times;\nthe qu",
  "ick brown fox jumps over the lazy dog 81 times;\nthe quick brown",
  " fox jumps over the la",
  "zy dog 19 times;\nthe quick brown fox jumps over the lazy dog 120 times;\n",
  "the quick brown fox jumps over ",
];

(async () => {
  const browser = await launch();
  try {
    const page = await browser.newPage({ viewport: { width: 1100, height: 760 } });
    let requests = 0;
    page.on("request", (r) => { if (r.url().endsWith("/sample")) requests++; });
    await page.goto(base + "/", { waitUntil: "load" });
    await until(page, () => document.querySelectorAll("#model option").length > 0, 10000);
    await page.click("#tab-complete");
    if (!(await page.isVisible("#ac-text")) || await page.isVisible("#out")) fail("the editor does not replace the output");
    // Every suggestion ever shown must be for the text in the textarea at that moment.
    await page.evaluate(() => {
      const g = document.getElementById("ac-ghost"), ta = document.getElementById("ac-text");
      window.__shown = 0;
      window.__stale = [];
      new MutationObserver(() => {
        if (g.dataset.for === undefined) return;
        window.__shown++;
        if (g.dataset.for !== ta.value) window.__stale.push([g.dataset.for.length, ta.value.length]);
      }).observe(g, { attributes: true, attributeFilter: ["data-for"] });
    });
    await page.focus("#ac-text");
    let keys = 0;
    for (const [i, chunk] of TYPED.entries()) {
      // alternately faster and slower than the page's debounce
      await page.keyboard.type(chunk, { delay: i % 2 ? 70 : 15 });
      keys += chunk.length;
      await checkpoint(page, `chunk ${i + 1}`);
    }
    await page.screenshot({ path: shot });

    // Tab appends the shown suggestion, keeps the focus, and the next suggestion follows.
    const before = await checkpoint(page, "before Tab");
    await page.keyboard.press("Tab");
    const after = await page.inputValue("#ac-text");
    if (!before || after !== before.text + before.shown)
      fail(`Tab: text ends ${JSON.stringify(after.slice(-60))}, not the suggestion appended`);
    else console.log(`ok: Tab appended ${JSON.stringify(before.shown)}`);
    if (await page.evaluate(() => document.activeElement.id) !== "ac-text") fail("Tab moved the focus");
    await checkpoint(page, "after Tab");

    // Answers held back 150 ms each arrive after the text changed: none may be shown.
    let answered = 0;
    await page.route("**/sample", async (route) => {
      const response = await route.fetch();
      await sleep(150);
      answered++;
      await route.fulfill({ response });
    });
    const shownBefore = await page.evaluate(() => window.__shown);
    await page.keyboard.type(" the lazy dog 5 times;\nthe", { delay: 50 });
    keys += 26;
    await checkpoint(page, "slow answers");
    await page.unroute("**/sample");
    const shownSlow = (await page.evaluate(() => window.__shown)) - shownBefore;
    if (answered <= shownSlow) fail(`slow answers: ${answered} answered, ${shownSlow} shown: none was stale`);
    else console.log(`ok: slow answers: ${answered} answered, ${answered - shownSlow} stale ones not shown`);

    // Escape dismisses, the text and the focus stay.
    const text = await page.inputValue("#ac-text");
    await page.keyboard.press("Escape");
    const ghost = await page.textContent("#ac-ghost");
    if (ghost !== "" || await page.inputValue("#ac-text") !== text) fail(`Escape: ghost "${ghost}" or the text changed`);
    else console.log("ok: Escape dismissed the suggestion");

    // The text changes while an older answer is in flight, and that answer is
    // in before the page's debounce timer fires: the current text is asked
    // for once, not again when the timer fires. The page's fetch is held by
    // hand here (after the real answer is in), so the order is the same on
    // every run; a second ask let an answer re-show a suggestion just
    // dismissed with Escape.
    const asked = await page.evaluate(async () => {
      const ta = document.getElementById("ac-text"), real = window.fetch;
      const held = [], primes = [];
      let open = false; // once set, nothing is held
      const pause = (ms) => new Promise((r) => setTimeout(r, ms));
      const type = (c) => { ta.value += c; ta.dispatchEvent(new Event("input")); };
      window.fetch = async (url, opts) => {
        primes.push(JSON.parse(opts.body).prime);
        const response = await real(url, opts);
        if (!open) await new Promise((release) => held.push(release));
        return response;
      };
      const waitHeld = async (n) => { while (held.length < n) await pause(5); };
      try {
        type("x");
        await waitHeld(1); // the answer for "x" is in and held
        type("y");
        await pause(200); // the timer for "y" fired while "x" is in flight
        type("z");
        held[0](); // "x" lands (stale) before the timer for "z" fires; "xyz" is asked
        await waitHeld(2);
        await pause(200); // the timer for "z" fires while "xyz" is in flight
        held[1]();
        await pause(200); // a second ask for "xyz" would be made by now
      } finally {
        open = true;
        held.forEach((release) => release());
        window.fetch = real;
      }
      return { primes: primes.map((p) => p.slice(-3)), text: ta.value };
    });
    if (asked.primes.length !== 2 || !asked.primes[0].endsWith("x") || asked.primes[1] !== "xyz")
      fail(`the page asked for ${JSON.stringify(asked.primes)} (the text's last 3 characters), not "...x" then "xyz" once`);
    else console.log(`ok: an answer in flight for an older text: the current text asked for once (${JSON.stringify(asked.primes)})`);
    keys += 3;
    await checkpoint(page, "after an answer in flight");

    // A usage.cached_chars (the daemon's prefix cache) is shown; one is put into the answers here.
    await page.route("**/sample", async (route) => {
      const msg = await (await route.fetch()).json();
      msg.usage.cached_chars = 4242;
      await route.fulfill({ json: msg });
    });
    await page.keyboard.type("t");
    keys += 1;
    try {
      await until(page, () => / 4242 chars from cache$/.test(document.getElementById("status").textContent), WAIT_MS);
      console.log("ok: cached_chars shown: " + await page.textContent("#status"));
    } catch (e) {
      fail(`usage.cached_chars not shown: status "${await page.textContent("#status")}"`);
    }
    await page.unroute("**/sample");

    // Outside the vocabulary: the daemon's 400 in the status line, then back to work.
    await page.keyboard.type("Q");
    try {
      await until(page, () => document.getElementById("status").className === "error", WAIT_MS);
      console.log("ok: out of vocabulary: " + await page.textContent("#status"));
    } catch (e) {
      fail("a character outside the vocabulary did not show an error");
    }
    await page.keyboard.press("Backspace");
    await page.keyboard.type(" ", { delay: 70 });
    keys += 3;
    await checkpoint(page, "after the last keystroke");

    const stale = await page.evaluate(() => window.__stale);
    if (stale.length) fail(`suggestions shown for another text (for, current lengths): ${JSON.stringify(stale)}`);
    else console.log(`ok: ${keys} keystrokes, ${requests} requests, no suggestion shown for another text`);
    await page.click("#tab-generate");
    if (!(await page.isVisible("#out")) || await page.isVisible("#ac-text")) fail("Generate does not bring the output back");
  } finally {
    await browser.close();
  }
})().catch((e) => { fail(String(e && e.stack || e)); });
