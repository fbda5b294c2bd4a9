// The playground against a daemon with --api-key-file: the page asks for the
// key when the server answers 401 (a prompt), sends it from then on as
// "Authorization: Bearer", so the model list loads and a generation runs; a
// wrong key is asked for again; the key is kept in the page's memory only
// (nothing in localStorage, sessionStorage or cookies), so a reload asks again.
// usage: node keys.test.js BASE_URL KEY
"use strict";
const { launch, until } = require("./browser");

const [base, key] = process.argv.slice(2);
function fail(msg) { console.error("FAIL: " + msg); process.exitCode = 1; }


(async () => {
  const browser = await launch();
  try {
    const page = await browser.newPage();
    const answers = ["wrong-key-0123456789", key]; // first a wrong one, then the right one
    const asked = [];
    page.on("dialog", async (d) => {
      asked.push(d.message());
      await d.accept(answers.shift() || "");
    });
    const sent = [];
    page.on("request", (r) => { if (r.url().startsWith(base + "/sample")) sent.push(r.headers()); });
    await page.goto(base + "/", { waitUntil: "load" });
    await until(page, () => document.querySelectorAll("#model option").length > 0, 30000, "the page");
    if (asked.length !== 2 || !/needs an API key/.test(asked[0]) || !/refused/.test(asked[1]))
      fail("the page asked: " + JSON.stringify(asked));
    await page.fill("#prime", "the ");
    await page.fill("#length", "20");
    await page.click("#run");
    await until(page, () => [...document.querySelector("#out").textContent].length >= 20, 30000, "the page");
    if (asked.length !== 2) fail("asked again for a key it had: " + JSON.stringify(asked));
    if (!sent.length || sent.some((h) => h.authorization !== "Bearer " + key))
      fail("/sample without the key: " + JSON.stringify(sent.map((h) => h.authorization)));
    const stored = await page.evaluate(() => JSON.stringify([localStorage.length,
                                                             sessionStorage.length,
                                                             document.cookie]));
    if (stored !== JSON.stringify([0, 0, ""])) fail("the key was stored: " + stored);
    answers.push(key);
    await page.reload({ waitUntil: "load" });
    await until(page, () => document.querySelectorAll("#model option").length > 0, 30000, "the page");
    if (asked.length !== 3) fail("after a reload the page did not ask again: " + asked.length);
    if (!process.exitCode) console.log("ok   playground asks for the API key and uses it");
  } finally {
    await browser.close();
  }
})().catch((e) => { console.error(e); process.exitCode = 1; });
