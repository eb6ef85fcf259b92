// Sends one batch to the demo server with the unmodified Microsoft Graph JS SDK
// (BatchRequestContent builds it, BatchResponseContent parses the answer) and checks
// what the SDK itself parsed. Usage: node test.js http://127.0.0.1:PORT
// With CAPTURE_DIR set, the request and response bodies are saved there (fixtures).
"use strict";

const fs = require("fs");
const path = require("path");
const { BatchRequestContent, BatchResponseContent } = require("@microsoft/microsoft-graph-client");

const base = process.argv[2];
let passed = 0;
let failed = 0;

function check(name, ok, detail) {
  if (ok) {
    passed += 1;
  } else {
    failed += 1;
    console.log(`FAIL graph-js: ${name}: ${detail}`);
  }
}

function step(id, url, init, dependsOn) {
  const s = { id, request: new Request(`${base}${url}`, init) };
  if (dependsOn) s.dependsOn = [dependsOn];
  return s;
}

async function main() {
  const json = { "Content-Type": "application/json" };
  // The SDK accepts only parallel, same-target or serial dependency shapes: this
  // batch is serial, each step depends on the one before it.
  const steps = [
    step("get", "/items/1", { method: "GET" }),
    step("create", "/items", { method: "POST", headers: json, body: JSON.stringify({ name: "from graph sdk" }) }, "get"),
    step("rename", "/items/2", { method: "PATCH", headers: json, body: JSON.stringify({ name: "renamed by graph sdk" }) }, "create"),
    step("remove", "/items/3", { method: "DELETE" }, "rename"),
    step("missing", "/items/999999", { method: "GET" }, "remove"),
    step("after-missing", "/items/1", { method: "GET" }, "missing"),
  ];
  const content = await new BatchRequestContent(steps).getContent();
  const requestBody = JSON.stringify(content);
  const reply = await fetch(`${base}/batch`, {
    method: "POST",
    headers: { "Content-Type": "application/json" },
    body: requestBody,
  });
  const replyText = await reply.text();
  if (process.env.CAPTURE_DIR) {
    fs.writeFileSync(path.join(process.env.CAPTURE_DIR, "sdk-request.json"), requestBody);
    fs.writeFileSync(path.join(process.env.CAPTURE_DIR, "demo-response.json"), replyText);
  }
  check("batch status", reply.status === 200, `got ${reply.status}: ${replyText}`);
  const responses = new BatchResponseContent(JSON.parse(replyText));

  const get = responses.getResponseById("get");
  const item = await get.json();
  check("GET /items/1", get.status === 200 && item.name === "item-1", `${get.status} ${JSON.stringify(item)}`);
  check("Content-Type parsed", get.headers.get("content-type") === "application/json", get.headers.get("content-type"));

  const create = responses.getResponseById("create");
  const created = await create.json();
  check("POST /items", create.status === 201 && created.name === "from graph sdk" && created.id > 1000, `${create.status} ${JSON.stringify(created)}`);
  check("POST location", create.headers.get("location") === `/items/${created.id}`, create.headers.get("location"));

  const rename = responses.getResponseById("rename");
  const renamed = await rename.json();
  check("PATCH /items/2", rename.status === 200 && renamed.name === "renamed by graph sdk", `${rename.status} ${JSON.stringify(renamed)}`);

  const remove = responses.getResponseById("remove");
  const removedBody = await remove.text();
  check("DELETE /items/3", remove.status === 204 && removedBody === "", `${remove.status} ${JSON.stringify(removedBody)}`);

  const missing = responses.getResponseById("missing");
  const missingBody = await missing.json();
  check("404", missing.status === 404 && missingBody.error === "not found", `${missing.status} ${JSON.stringify(missingBody)}`);

  const after = responses.getResponseById("after-missing");
  const afterBody = await after.json();
  check("424 after a failed dependency", after.status === 424 && afterBody.dependency === "missing", `${after.status} ${JSON.stringify(afterBody)}`);

  check("every response parsed", responses.getResponses().size === steps.length, `${responses.getResponses().size}`);
}

main()
  .catch((err) => {
    failed += 1;
    console.log(`FAIL graph-js: ${err.stack || err}`);
  })
  .finally(() => {
    console.log(`graph-js: ${passed} passed, ${failed} failed`);
    process.exitCode = failed === 0 ? 0 : 1;
  });
