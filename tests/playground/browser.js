// The one headless browser the playground tests drive: Debian's chromium
// through playwright-core, with the flags that keep it quiet and offline.
// Every page it opens fails its test on a Content-Security-Policy violation:
// the daemon serves the playground under a CSP, and a policy that blocks
// something the page needs must not go unnoticed.
"use strict";
const { chromium } = require("playwright-core");

function cspViolation(text) {
  console.error("FAIL: " + text);
  process.exitCode = 1;
}

exports.launch = async () => {
  const browser = await chromium.launch({
    executablePath: "/usr/bin/chromium",
    args: ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
           "--disable-background-networking", "--disable-component-update", "--disable-sync"],
  });
  const newPage = browser.newPage.bind(browser);
  browser.newPage = async (options) => {
    const page = await newPage(options);
    // Init scripts come through the DevTools protocol, which the CSP does not govern.
    await page.addInitScript(() => document.addEventListener("securitypolicyviolation", (e) =>
      console.error(`Content Security Policy violation: ${e.violatedDirective} ${e.blockedURI}`)));
    page.on("console", (m) => {
      if (m.type() === "error" && m.text().includes("Content Security Policy")) cspViolation(m.text());
    });
    return page;
  };
  return browser;
};

// A page of the playground at base, once its model list is in: what every view needs first.
exports.openPlayground = async (browser, base) => {
  const page = await browser.newPage({ viewport: { width: 1100, height: 760 } });
  await page.goto(base + "/", { waitUntil: "load" });
  await exports.until(page, () => document.querySelectorAll("#model option").length > 0, 10000);
  return page;
};

// Polls fn in the page until it returns true, for at most timeoutMs (a bound
// against hanging, not a measurement). page.waitForFunction cannot serve: it
// compiles its predicate with eval inside the page, which the playground's CSP
// (no 'unsafe-eval') refuses, and it stalls while the page shows a prompt;
// page.evaluate goes through the DevTools protocol, which the CSP does not govern.
exports.until = async (page, fn, timeoutMs = 30000, what = String(fn)) => {
  for (const t0 = Date.now(); ;) {
    if (await page.evaluate(fn)) return;
    if (Date.now() - t0 > timeoutMs) throw new Error("timed out waiting for " + what);
    await new Promise((r) => setTimeout(r, 25));
  }
};
