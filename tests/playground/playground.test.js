// The playground page in a real browser: Debian's chromium, headless, driven
// by playwright-core. Asserts that text streams into the page (several
// intermediate lengths are seen before the end), that the finish status shows
// a seed, and that "Run again, same seed" reproduces the same text.
// usage: node playground.test.js BASE_URL SCREENSHOT_PATH
"use strict";
const { chromium } = require("playwright-core");

const [base, shot] = process.argv.slice(2);
const LENGTH = 10000; // the daemon's default max_length: long enough to watch it stream
function fail(msg) { console.error("FAIL: " + msg); process.exitCode = 1; }

(async () => {
  const browser = await chromium.launch({
    executablePath: "/usr/bin/chromium",
    args: ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
           "--disable-background-networking", "--disable-component-update", "--disable-sync"],
  });
  try {
    const page = await browser.newPage({ viewport: { width: 1100, height: 760 } });
    await page.goto(base + "/", { waitUntil: "load" });
    await page.waitForFunction(() => document.querySelectorAll("#model option").length > 0,
                               null, { timeout: 10000 });
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
    await page.waitForFunction(() => /finish:|stopped|error|HTTP/i.test(document.getElementById("status").textContent),
                               null, { timeout: 30000 });
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
    await page.waitForFunction(() => /finish:/.test(document.getElementById("status").textContent),
                               null, { timeout: 30000 });
    const second = await page.textContent("#generated");
    if (second !== first) fail("run again with the same seed gave different text");
    else console.log("ok: same seed, same text");
  } finally {
    await browser.close();
  }
})().catch((e) => { fail(String(e && e.stack || e)); });
