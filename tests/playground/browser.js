// The one headless browser the playground tests drive: Debian's chromium
// through playwright-core, with the flags that keep it quiet and offline.
"use strict";
const { chromium } = require("playwright-core");

exports.launch = () => chromium.launch({
  executablePath: "/usr/bin/chromium",
  args: ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync"],
});
