// The playground's Inside view in a real browser (headless chromium,
// playwright-core), with POST /inspect asked from node as the oracle. For a
// pasted text: the layer and state pickers offer the model's layers and
// states; the discovered units listed are the API's `found` (layer, state,
// unit, feature, r, in order); every character's value (data-v, and the
// tooltip) is the API's value for the unit shown, and its colour is the
// documented function of that value, written again here; clicking a
// discovered unit and setting the pickers show those units. A span dragged
// with the mouse sends a match for exactly that span, the page underlines
// exactly the API's other spans and the status line counts units and spans,
// or says "none". Generated text goes to Inside with its "Look inside"
// button; back from another view, the unit is drawn again. Errors (a text
// over the limit, a unit out of range) are the API's own messages in the
// status line, and a unit out of range does not stop Generate. The
// screenshot is kept.
// usage: node inside.test.js BASE_URL SCREENSHOT_PATH
"use strict";
const { launch, openPlayground, until } = require("./browser");

const [base, shot] = process.argv.slice(2);
const WAIT_MS = 120000; // a bound against hanging (sanitizer builds are slow), not a measurement
const FEATURES = ["line_position", "word_position", "quote", "bracket_depth", "indent"];
function fail(msg) { console.error("FAIL: " + msg); process.exitCode = 1; }

// Inside the test model's vocabulary (lowercase, digits, " ;\n"): lines of
// different lengths, so that line_position has units to find.
const TEXT = "the quick brown fox jumps over the lazy dog 7 times;\nthe lazy dog 12 times;\n" +
  "the quick brown fox jumps over the lazy dog 105 times;\nthe fox;\nthe quick brown fox";

// The page's colour scale as docs/http-api.md states it: |v| clamped to 1
// moves the background from white towards rgb(255, 55, 55) for v >= 0 and
// towards rgb(55, 55, 255) below 0.
function colour(v) {
  const a = Math.min(Math.abs(v), 1), mix = (end) => Math.round(255 + (end - 255) * a);
  const [r, g, b] = v >= 0 ? [255, mix(55), mix(55)] : [mix(55), mix(55), 255];
  return `rgb(${r}, ${g}, ${b})`;
}

// The oracle: the daemon's answer to the same body, asked from node.
async function inspect(body) {
  const r = await fetch(base + "/inspect", {
    method: "POST", headers: { "Content-Type": "application/json" }, body: JSON.stringify(body),
  });
  return { status: r.status, msg: await r.json() };
}
async function inspectOk(body) {
  const { status, msg } = await inspect(body);
  if (status !== 200) throw new Error(`API ${status}: ${JSON.stringify(msg)}`);
  return msg;
}

const status = (page) => page.textContent("#status");
// Waits for the status line to start with prefix, or for an error.
// (until's predicate runs in the page and takes no argument: the prefix goes there first.)
async function settled(page, prefix, what) {
  await page.evaluate((p) => { window.__prefix = p; }, prefix);
  try {
    await until(page, () => {
      const s = document.getElementById("status");
      return s.textContent.startsWith(window.__prefix) || s.className === "error";
    }, WAIT_MS);
  } catch (e) { /* reported below */ }
  const s = await status(page);
  if (!s.startsWith(prefix)) { fail(`${what}: status "${s}", not "${prefix}..."`); return false; }
  return true;
}

// The unit shown is (layer, state, unit) of text: characters, values and colours equal the API's.
async function checkUnit(page, text, layer, state, unit, what) {
  const prefix = `layer ${layer} ${state} unit ${unit}: ${[...text].length} characters`;
  if (!(await settled(page, prefix, what))) return;
  const got = await page.evaluate(() => {
    const b = document.getElementById("inside");
    return { key: [b.dataset.layer, b.dataset.state, b.dataset.unit],
             pickers: ["in-layer", "in-state", "in-unit"].map((id) => document.getElementById(id).value),
             chars: [...b.children].map((s) => [s.textContent, s.dataset.v, s.style.backgroundColor]) };
  });
  const values = (await inspectOk({ text, layer, state, units: [unit] })).units[0].values;
  const key = [String(layer), state, String(unit)];
  if (JSON.stringify(got.key) !== JSON.stringify(key) || JSON.stringify(got.pickers) !== JSON.stringify(key))
    return fail(`${what}: shown ${got.key}, pickers ${got.pickers}, not ${key}`);
  if (got.chars.map((c) => c[0]).join("") !== text) return fail(`${what}: the coloured characters are not the text`);
  let bad = 0, clamped = 0;
  for (const [i, [ch, v, bg]] of got.chars.entries()) {
    if (Number(v) !== values[i] || bg !== colour(values[i])) {
      if (!bad++) fail(`${what}: char ${i} ${JSON.stringify(ch)}: page ${v} ${bg}, API ${values[i]} ${colour(values[i])}`);
    }
    if (Math.abs(values[i]) > 1) clamped++;
  }
  if (bad) return fail(`${what}: ${bad} of ${got.chars.length} characters differ from the API`);
  // the tooltip gives the true value, also where the colour is clamped
  const far = values.reduce((k, v, i) => (Math.abs(v) > Math.abs(values[k]) ? i : k), 0);
  for (const i of [1, far]) {
    await page.hover(`#inside .ch:nth-child(${i + 1})`);
    await page.waitForSelector("#tip", { state: "visible", timeout: 5000 });
    const tip = await page.textContent("#tip .head");
    if (!tip.endsWith(`layer ${layer} ${state} unit ${unit}: ${values[i]}`))
      fail(`${what}: char ${i}: tooltip "${tip}" lacks the API's ${values[i]}`);
  }
  await page.mouse.move(1, 1);
  console.log(`ok: ${what}: ${prefix}: every value and colour equals the API's ` +
              `(${clamped} beyond [-1, 1], tooltip ${values[far]})`);
}

// The discovered units listed equal the API's `found` for the text.
async function checkFound(page, text, what) {
  const want = (await inspectOk({ text, find: FEATURES })).found;
  const got = await page.$$eval("#in-found button", (bs) => bs.map((b) => ({
    layer: Number(b.dataset.layer), state: b.dataset.state, unit: Number(b.dataset.unit),
    feature: b.dataset.feature, r: Number(b.dataset.r) })));
  if (JSON.stringify(got) !== JSON.stringify(want))
    fail(`${what}: listed ${JSON.stringify(got.slice(0, 3))}... (${got.length}), API ${JSON.stringify(want.slice(0, 3))}... (${want.length})`);
  else console.log(`ok: ${what}: the ${got.length} discovered units equal the API's found (best: ` +
                   `${want[0].feature} layer ${want[0].layer} ${want[0].state} ${want[0].unit} r ${want[0].r})`);
  return want;
}

// Drags the mouse from the left edge of character start to the right edge of
// character end - 1, as a user selects [start, end).
async function drag(page, start, end) {
  const a = await page.locator("#inside .ch").nth(start).boundingBox();
  const z = await page.locator("#inside .ch").nth(end - 1).boundingBox();
  await page.mouse.move(a.x + 1, a.y + a.height / 2);
  await page.mouse.down();
  await page.mouse.move(z.x + z.width - 1, z.y + z.height / 2, { steps: 8 });
  await page.mouse.up();
}

// Spans of TEXT whose match (in the shown layer and state, at the page's
// threshold) finds units and other spans, and one that finds no unit.
async function spansToTry(layer, state, threshold) {
  let hit = null, none = null;
  for (const m of TEXT.matchAll(/[a-z]+/g)) {
    const span = { start: m.index, end: m.index + m[0].length };
    const got = (await inspectOk({ text: TEXT, layer, state, match: { ...span, threshold } })).match;
    if (!hit && got.matched_units && got.matched_spans) hit = { ...span, want: got };
    if (!none && !got.matched_units) none = { ...span, want: got };
    if (hit && none) break;
  }
  return { hit, none };
}

async function checkMatch(page, span, layer, state, threshold, what) {
  let sent = null;
  const grab = (r) => { if (r.url().endsWith("/inspect") && /"match"/.test(r.postData() || "")) sent = JSON.parse(r.postData()); };
  page.on("request", grab);
  await drag(page, span.start, span.end);
  const ok = await settled(page, `span [${span.start}, ${span.end}) of layer ${layer} ${state}: `, what);
  page.off("request", grab);
  if (!ok) return;
  if (!sent || sent.match.start !== span.start || sent.match.end !== span.end || sent.match.threshold !== threshold ||
      sent.layer !== layer || sent.state !== state || sent.text !== TEXT)
    return fail(`${what}: the page sent ${JSON.stringify(sent && { ...sent, text: undefined })} for [${span.start}, ${span.end})`);
  const marks = await page.evaluate(() => {
    const idx = (cls) => [...document.querySelectorAll("#inside .ch")].filter((s) => s.classList.contains(cls))
      .map((s) => Number(s.dataset.i));
    return { sel: idx("sel"), hit: idx("hit") };
  });
  const want = span.want, wantHit = [];
  for (const s of want.spans) for (let i = s.start; i < s.end; i++) wantHit.push(i);
  const wantSel = Array.from({ length: span.end - span.start }, (_, k) => span.start + k);
  const text = await status(page);
  if (JSON.stringify(marks.sel) !== JSON.stringify(wantSel)) fail(`${what}: marked as selected ${marks.sel}`);
  else if (JSON.stringify(marks.hit) !== JSON.stringify(wantHit))
    fail(`${what}: underlined ${JSON.stringify(marks.hit)}, the API's spans ${JSON.stringify(want.spans)}`);
  else if (want.matched_units
    ? !text.includes(`: ${want.matched_units} unit`) || !text.includes(`; ${want.matched_spans} other span`)
    : !/: none;/.test(text))
    fail(`${what}: status "${text}" does not count the API's ${want.matched_units} units, ${want.matched_spans} spans`);
  else console.log(`ok: ${what}: sent [${sent.match.start}, ${sent.match.end}), ${JSON.stringify(TEXT.slice(span.start, span.end))}, ` +
                   `underlined the API's ${want.spans.length} spans: ${text}`);
}

(async () => {
  const browser = await launch();
  try {
    const page = await openPlayground(browser, base);
    const model = (await (await fetch(base + "/models")).json()).models.find((m) => m.default);
    await page.click("#tab-inside");

    // The pickers offer the model's layers, states and units.
    const pickers = await page.evaluate(() => ({
      layers: [...document.getElementById("in-layer").options].map((o) => o.value),
      states: [...document.getElementById("in-state").options].map((o) => o.value),
      units: document.getElementById("in-units").textContent }));
    const layers = Array.from({ length: model.num_layers }, (_, i) => String(i + 1));
    const states = model.cell === "lstm"
      ? ["cell", "hidden", "input_gate", "forget_gate", "cell_gate", "output_gate"] : ["hidden"];
    if (JSON.stringify(pickers) !== JSON.stringify({ layers, states, units: `0..${model.hidden_size - 1}` }))
      fail(`pickers ${JSON.stringify(pickers)} for a ${model.num_layers}x${model.hidden_size} ${model.cell}`);
    else console.log(`ok: pickers: layers ${layers}, states ${states}, units ${pickers.units}`);

    // Pasted text: the units found, the best one shown.
    await page.fill("#in-text", TEXT);
    await page.click("#in-look");
    await settled(page, "layer ", "look inside");
    const found = await checkFound(page, TEXT, "pasted text");
    if (!found.length) throw new Error("the API found no unit: nothing to show");
    await checkUnit(page, TEXT, found[0].layer, found[0].state, found[0].unit, "best unit shown");

    // Clicking a discovered unit (one in another layer or state if there is one) shows it.
    let k = found.findIndex((f) => f.layer !== found[0].layer || f.state !== found[0].state);
    if (k < 0) k = found.length - 1;
    await page.click(`#in-found li:nth-child(${k + 1}) button`);
    await checkUnit(page, TEXT, found[k].layer, found[k].state, found[k].unit, `discovered unit ${k} clicked`);

    // The pickers: layer 1, the hidden state, unit 3 (Enter, as a user would).
    await page.selectOption("#in-layer", "1");
    await page.selectOption("#in-state", "hidden");
    await page.fill("#in-unit", "3");
    await page.press("#in-unit", "Enter");
    await checkUnit(page, TEXT, 1, "hidden", 3, "pickers");
    if (model.cell === "lstm") { // a gate, by the pickers
      await page.selectOption("#in-state", "forget_gate");
      await checkUnit(page, TEXT, 1, "forget_gate", 3, "a gate picked");
    }

    // A span selected with the mouse: the last layer's first state, at a threshold set here.
    const layer = model.num_layers, state = states[0], threshold = 0.3;
    await page.selectOption("#in-layer", String(layer));
    await page.selectOption("#in-state", state);
    await page.fill("#in-threshold", String(threshold));
    await checkUnit(page, TEXT, layer, state, 3, "before the span selection");
    const { hit, none } = await spansToTry(layer, state, threshold);
    if (!hit) fail(`no word of the text has units and other spans at ${threshold} in layer ${layer} ${state}`);
    else await checkMatch(page, hit, layer, state, threshold, "span with units");
    await page.screenshot({ path: shot, fullPage: true }); // the status line and the list too
    if (!none) fail(`every word of the text has units at ${threshold}: no "none" case`);
    else await checkMatch(page, none, layer, state, threshold, "span without units");

    // Errors: the API's own messages in the status line.
    await page.fill("#in-unit", String(model.hidden_size));
    await page.press("#in-unit", "Enter");
    const badUnit = await inspect({ text: TEXT, layer, state, units: [model.hidden_size] });
    const long = "a".repeat(10001);
    await settled(page, badUnit.msg.error.message, `unit ${model.hidden_size} (API ${badUnit.status})`);
    await page.fill("#in-text", long);
    await page.click("#in-look");
    const tooLong = await inspect({ text: long, find: FEATURES });
    if (tooLong.status !== 413) fail(`the API answered ${tooLong.status} to ${long.length} characters`);
    if (await settled(page, tooLong.msg.error.message, `${long.length} characters (API ${tooLong.status})`))
      console.log(`ok: errors: "${badUnit.msg.error.message}"; "${tooLong.msg.error.message}"`);

    // Generated text goes to Inside, prime included.
    const req = { prime: "the ", length: 200, temperature: 0.9, seed: 5 };
    await page.click("#tab-generate");
    await page.fill("#prime", req.prime);
    await page.fill("#length", String(req.length));
    await page.fill("#temperature", String(req.temperature));
    await page.fill("#seed", String(req.seed));
    await page.click("#run");
    await settled(page, `${req.length} characters in `, "generation");
    const sample = await (await fetch(base + "/sample", {
      method: "POST", headers: { "Content-Type": "application/json" }, body: JSON.stringify(req) })).json();
    const generated = req.prime + sample.text;
    await page.click("#to-inside");
    if (!(await page.isVisible("#view-inside")) || await page.inputValue("#in-text") !== generated)
      fail(`Look inside: the Inside text is not the prime and the API's sample for seed ${req.seed}`);
    await settled(page, "layer ", "generated text");
    const foundGen = await checkFound(page, generated, "generated text");
    if (!foundGen.length) return;
    const best = [generated, foundGen[0].layer, foundGen[0].state, foundGen[0].unit];
    await checkUnit(page, ...best, "generated text's best unit");
    // Another view writes in the same pane; back in Inside, the unit is drawn again.
    await page.click("#tab-score");
    await page.click("#score");
    await settled(page, `${[...(await page.inputValue("#score-text"))].length} characters: `, "score");
    await page.click("#tab-inside");
    await checkUnit(page, ...best, "back from the Score view");
  } finally {
    await browser.close();
  }
})().catch((e) => { fail(String(e && e.stack || e)); });
