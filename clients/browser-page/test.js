// Opens the demo's live page (GET /) in a real browser, Debian's Chromium driven
// headless by playwright-core, and checks what a user would see: the list renders
// from the socket's state, changes made by plain REST requests from here and by a
// batch sent from the page's own box show up as they happen, the page reconnects
// when its socket closes, and its EventSource follows item 2 over /events. Usage: node test.js http://127.0.0.1:PORT
// CHROMIUM names the browser (default /usr/bin/chromium); with SCREENSHOT=path, a
// PNG of the page after the changes is saved there (docs/images/demo-page.png).
"use strict";

const { chromium } = require("playwright-core");

const base = process.argv[2];
const WAIT = 10000; // ms: a generous bound for anything the page must show
let passed = 0;
let failed = 0;

function check(name, ok, detail) {
  if (ok) {
    passed += 1;
  } else {
    failed += 1;
    console.log(`FAIL browser-page: ${name}: ${detail}`);
  }
}

// A plain REST request to the application, not through the page.
async function rest(method, path, body) {
  const init = { method };
  if (body !== undefined) {
    init.headers = { "content-type": "application/json" };
    init.body = JSON.stringify(body);
  }
  const response = await fetch(`${base}${path}`, init);
  const text = await response.text();
  return { status: response.status, body: text ? JSON.parse(text) : null };
}

// Waits until `predicate(arg)` holds in the page: false after WAIT, not an exception.
async function waitFor(page, predicate, arg) {
  try {
    await page.waitForFunction(predicate, arg, { timeout: WAIT, polling: 50 });
    return true;
  } catch {
    return false;
  }
}

// What the page shows as item `id`'s name, for failure messages. Functions run in
// the page are sent as source: each stands alone.
function nameOf(id) {
  return document.querySelector(`#items li[data-id="${id}"] .name`)?.textContent ?? null;
}

async function shown(page, id) {
  return page.evaluate(nameOf, id);
}

// The page shows item `id` named `name`.
function rowNamed([id, name]) {
  return document.querySelector(`#items li[data-id="${id}"] .name`)?.textContent === name;
}

function live() {
  return document.getElementById("status").dataset.state === "open" && document.querySelectorAll("#items li").length > 0;
}

async function main() {
  // Chromium's sandbox refuses to run as root; a CI container often is root.
  const args = process.getuid && process.getuid() === 0 ? ["--no-sandbox"] : [];
  const browser = await chromium.launch({
    executablePath: process.env.CHROMIUM || "/usr/bin/chromium",
    headless: true,
    args,
    timeout: 60000,
  });
  try {
    const page = await browser.newPage({ viewport: { width: 900, height: 600 } });
    const errors = [];
    page.on("pageerror", (err) => errors.push(String(err)));
    page.on("console", (message) => {
      if (message.type() === "error") errors.push(message.text());
    });

    const response = await page.goto(`${base}/`);
    check(
      "GET / is the page",
      response.status() === 200 && response.headers()["content-type"] === "text/html; charset=utf-8",
      `${response.status()} ${response.headers()["content-type"]}`,
    );
    const status = () => page.evaluate(() => document.getElementById("status").textContent);
    check("subscribed, list rendered", await waitFor(page, live), `status ${await status()}`);
    const ids = await page.$$eval("#items li", (rows) => rows.map((li) => li.dataset.id));
    check("the list is the first 10 items", ids.length === 10 && ids[0] === "1", JSON.stringify(ids));

    // A change made by a plain request, in and out of the list.
    const doomed = await rest("POST", "/items", { name: "short-lived" });
    check("POST /items", doomed.status === 201, JSON.stringify(doomed));
    const doomedShown = await waitFor(page, rowNamed, [doomed.body.id, "short-lived"]);
    check("a created item appears", doomedShown, `row ${doomed.body.id}: ${await shown(page, doomed.body.id)}`);
    const removed = await rest("DELETE", `/items/${doomed.body.id}`);
    check("DELETE /items/{id}", removed.status === 204, JSON.stringify(removed));
    const gone = await waitFor(page, (id) => !document.querySelector(`#items li[data-id="${id}"]`), doomed.body.id);
    check("a deleted item disappears", gone, `row ${doomed.body.id}: ${await shown(page, doomed.body.id)}`);

    // The socket closes: the page says so, reconnects and follows changes again.
    await page.evaluate(() => socket.close());
    check(
      "reconnects after its socket closed",
      await waitFor(page, () => document.getElementById("status").dataset.state !== "open") && (await waitFor(page, live)),
      `status ${await status()}`,
    );

    // The batch box: the example batch creates "pen" and renames item 2 to "ink".
    await page.click("#send");
    const answered = await waitFor(page, () => document.getElementById("results").dataset.status === "200");
    const resultsText = await page.evaluate(() => document.getElementById("results").textContent);
    check("the batch box shows a 200", answered, resultsText);
    let results = [];
    try {
      results = JSON.parse(resultsText.slice(resultsText.indexOf("\n") + 1)).results;
    } catch (err) {
      check("the batch results are pretty-printed JSON", false, `${err}: ${resultsText}`);
    }
    const statuses = results.map((result) => result.status);
    check("the batch results are shown", JSON.stringify(statuses) === "[201,200,404,424]", resultsText);
    const pen = results[0]?.body?.id;
    check("the batch's create appears", await waitFor(page, rowNamed, [pen, "pen"]), `row ${pen}: ${await shown(page, pen)}`);
    check("the batch's patch appears", await waitFor(page, rowNamed, [2, "ink"]), `row 2: ${await shown(page, 2)}`);
    const sse = () => page.evaluate(() => `${document.getElementById("sse").dataset.state} ${document.getElementById("sse").textContent}`);
    check(
      "the EventSource follows item 2 over Server-Sent Events",
      await waitFor(page, () => {
        const el = document.getElementById("sse");
        return el.dataset.state === "open" && el.textContent === "ink";
      }),
      await sse(),
    );

    // The changes the screenshot shows: a rename and a new item, both by plain requests.
    const target = ids[7];
    const renamed = await rest("PATCH", `/items/${target}`, { name: "renamed over REST" });
    check("PATCH /items/{id}", renamed.status === 200, JSON.stringify(renamed));
    check(
      "a renamed item shows its new name",
      await waitFor(page, rowNamed, [target, "renamed over REST"]),
      `row ${target}: ${await shown(page, target)}`,
    );
    const highlighted = await page.evaluate((id) => document.querySelector(`#items li[data-id="${id}"]`)?.classList.contains("flash"), target);
    check("the changed row is highlighted", highlighted === true, `row ${target} has no flash class`);
    const created = await rest("POST", "/items", { name: "created over REST" });
    check(
      "a created item appears",
      await waitFor(page, rowNamed, [created.body.id, "created over REST"]),
      `row ${created.body.id}: ${await shown(page, created.body.id)}`,
    );
    const logged = await page.$$eval("#events li", (rows) => rows.map((li) => li.dataset.type));
    check("the change log lists every event", logged.length >= 6 && logged[0] === "create" && logged[1] === "patch", JSON.stringify(logged));
    check("no errors in the page", errors.length === 0, errors.join("; "));

    if (process.env.SCREENSHOT) await page.screenshot({ path: process.env.SCREENSHOT });
  } finally {
    await browser.close();
  }
}

main()
  .catch((err) => {
    failed += 1;
    console.log(`FAIL browser-page: ${err.stack || err}`);
  })
  .finally(() => {
    console.log(`browser-page: ${passed} passed, ${failed} failed`);
    process.exitCode = failed === 0 ? 0 : 1;
  });
