// The example dApp and the relayer's dashboard, driven in Debian's headless Chromium by
// playwright-core against a running demo network (tools/test-browser starts it).
// Usage: node web/test/browser.mjs NETWORK_INFO.json ARTIFACT_DIR
import assert from "node:assert/strict";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { chromium } from "playwright-core";
import { preview } from "vite";

const [infoFile, artifacts] = process.argv.slice(2);
if (!infoFile || !artifacts) {
  console.error("usage: node web/test/browser.mjs NETWORK_INFO.json ARTIFACT_DIR");
  process.exit(2);
}
const info = JSON.parse(readFileSync(infoFile, "utf8"));
const web = fileURLToPath(new URL("..", import.meta.url));
const root = join(web, "..");
// A Rust source file: magika calls it "rust", as `make demo` shows for the same file.
const FILE = join(root, "sdk", "src", "lib.rs");
const EXPECTED_LABEL = "rust";

const started = Date.now();
const log = (msg) => console.log(`  ${((Date.now() - started) / 1000).toFixed(1).padStart(5)} s  ${msg}`);

// The built dApp (web/dist), served as `vite preview` serves it.
const server = await preview({ root: web, logLevel: "warn", preview: { host: "127.0.0.1", port: 0, strictPort: false, open: false } });
const dappUrl = server.resolvedUrls?.local[0];
assert.ok(dappUrl, "vite preview did not report its URL");

const profile = mkdtempSync(join(tmpdir(), "attesta-chromium-"));
const context = await chromium.launchPersistentContext(profile, {
  executablePath: "/usr/bin/chromium",
  headless: true,
  // Without the background-networking flags Chromium keeps dialling Google, which this
  // machine's closed network refuses.
  args: [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
  ],
  viewport: { width: 1100, height: 900 },
});

const errors = [];
let failed = false;
try {
  const page = context.pages()[0] ?? (await context.newPage());
  page.on("pageerror", (e) => errors.push(`page error: ${e.message}`));
  // HTTP errors are judged by URL below; the console's "Failed to load resource" repeats them.
  page.on("console", (m) => {
    if (m.type() === "error" && !m.text().startsWith("Failed to load resource")) errors.push(`console: ${m.text()}`);
  });
  // Expected 404s only: a job the relayer has not seen yet, a result not settled yet, the icon.
  const expected404 = [/\/v1\/jobs\/\d+$/, /\/v1\/jobs\/\d+\/result$/, /\/favicon\.ico$/];
  page.on("response", (r) => {
    const path = new URL(r.url()).pathname;
    if (r.status() >= 400 && !(r.status() === 404 && expected404.some((p) => p.test(path)))) {
      errors.push(`HTTP ${r.status()} for ${r.request().method()} ${r.url()}`);
    }
  });

  // 1. The dApp: pick a file, pay, watch it settle, see the verified answer.
  const query = new URLSearchParams({
    rpc: info.rpcUrl,
    relayer: info.relayerUrl,
    model: info.modelId,
    deployment: JSON.stringify(info.deployment),
    devKey: info.clientPrivateKey,
    fee: info.fee,
  });
  await page.goto(`${dappUrl}?${query}`);
  log(`dApp at ${dappUrl}`);
  await page.setInputFiles("#file", FILE);
  await page.click("#submit");
  await page.waitForSelector("#job-id:not(:empty)", { timeout: 60_000 });
  const jobId = await page.textContent("#job-id");
  log(`job ${jobId} created from the page`);
  await page.screenshot({ path: join(artifacts, "dapp-created.png"), fullPage: true });
  await page.waitForSelector("#verified[data-verified='true']", { timeout: 120_000 }).catch(async (e) => {
    await page.screenshot({ path: join(artifacts, "dapp-timeout.png"), fullPage: true });
    throw new Error(`no verified result: ${(await page.textContent("#error")) || e.message}`);
  });
  const label = (await page.textContent("#label"))?.trim();
  const status = await page.getAttribute("#status", "data-status");
  const signers = await page.locator("#signers li").allTextContents();
  const copy = await page.textContent("#relayer-copy");
  log(`settled: label "${label}", status ${status}, ${signers.length} signers; ${copy}`);
  await page.screenshot({ path: join(artifacts, "dapp-settled.png"), fullPage: true });
  assert.equal(label, EXPECTED_LABEL, "the decoded label");
  assert.ok(["Settled", "Released"].includes(status ?? ""), `status ${status}`);
  assert.ok(signers.length >= info.threshold, `${signers.length} signers, M = ${info.threshold}`);
  assert.equal(new Set(signers).size, signers.length, "distinct signers");
  assert.match(await page.textContent("#verified"), new RegExp(`threshold M = ${info.threshold}`));
  assert.equal((await page.textContent("#error"))?.trim(), "", "no error shown");
  assert.match(copy ?? "", /copy of the output matches/, "the relayer's copy checks out against the chain");

  // 2. The relayer's dashboard lists the job, its state and who attested it.
  await page.goto(info.dashboardUrl);
  const row = page.locator(`tr.job[data-job-id='${jobId}']`);
  await row.waitFor({ timeout: 30_000 });
  const rowStatus = await row.getAttribute("data-status");
  assert.ok(["settled", "released"].includes(rowStatus ?? ""), `dashboard shows job ${jobId} as ${rowStatus}`);
  const operators = await page.locator("#operators tbody tr").count();
  assert.equal(operators, 4, "four active operators");
  assert.equal((await page.textContent("#c-threshold"))?.trim(), String(info.threshold));
  await row.click();
  const attestations = page.locator("#job-attestations tbody tr");
  await attestations.first().waitFor({ timeout: 10_000 });
  const attested = await attestations.allTextContents();
  assert.ok(attested.length >= info.threshold, `${attested.length} attestations listed`);
  for (const signer of signers) {
    assert.ok(attested.some((t) => t.toLowerCase().includes(signer.toLowerCase())), `signer ${signer} listed`);
  }
  assert.equal((await page.textContent("#error"))?.trim(), "", "the dashboard shows no error");
  log(`dashboard lists job ${jobId} (${rowStatus}) with ${attested.length} attestations`);
  await page.screenshot({ path: join(artifacts, "dashboard.png"), fullPage: true });

  assert.deepEqual(errors, [], "no errors in the browser console");
  log(`passed; screenshots in ${artifacts}`);
} catch (e) {
  failed = true;
  console.error(e);
  if (errors.length) console.error(errors.join("\n"));
} finally {
  await context.close();
  await new Promise((resolve) => server.httpServer.close(resolve));
  rmSync(profile, { recursive: true, force: true });
}
process.exit(failed ? 1 : 0);
