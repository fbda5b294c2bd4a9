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
