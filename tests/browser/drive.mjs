// Drives Debian's chromium with playwright-core for tests/test_html_browser.py: loads a
// report, logs every request the page makes, runs the steps given as JSON on stdin and
// prints what the page shows after each, as JSON.
import { chromium } from "playwright-core";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";

const spec = JSON.parse(readFileSync(0, "utf8"));
const profile = mkdtempSync(join(tmpdir(), "keyscope-chromium-"));
const context = await chromium.launchPersistentContext(profile, {
  executablePath: spec.chromium || "/usr/bin/chromium",
  headless: true,
  args: ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
    "--disable-component-update", "--disable-sync", "--no-first-run"],
  viewport: spec.viewport || { width: 1280, height: 900 },
  colorScheme: spec.colorScheme || "light",
});
const requests = [];
const errors = [];
context.on("request", (r) => requests.push(r.url()));
const page = context.pages()[0] || (await context.newPage());
page.on("pageerror", (e) => errors.push(String(e)));
page.on("console", (m) => { if (m.type() === "error") errors.push(m.text()); });

async function snapshot() {
  return page.evaluate(() => ({
    count: document.getElementById("f-count")?.textContent ?? null,
    accounts: [...document.querySelectorAll("article.card")].map((c) => c.dataset.account),
    cards: document.querySelectorAll("article.card").length,
    timelines: [...document.querySelectorAll("svg.timeline")].map((s) => s.getAttribute("aria-label")),
    landmarks: [...document.querySelectorAll("body > header, main, [role=search], section[aria-labelledby]")].map((e) => e.getAttribute("role") || e.tagName.toLowerCase()),
    headings: [...document.querySelectorAll("h1, h2, h3")].map((e) => e.tagName.toLowerCase() + " " + e.textContent),
    layers: [...document.querySelectorAll("svg.layers")].map((s) => s.getAttribute("aria-label")),
    validity: [...document.querySelectorAll("svg.validity")].map((s) => s.getAttribute("aria-label")),
    text: document.getElementById("app")?.innerText ?? "",
    notice: document.getElementById("secrets-notice")?.innerText ?? null,
    secrets: [...document.querySelectorAll(".secret code")].map((c) => c.textContent),
    links: [...document.querySelectorAll("ul.locations a")].map((a) => a.getAttribute("href")),
    focused: document.activeElement ? document.activeElement.id : null,
    checked: [...document.querySelectorAll("ol.checklist input:checked")].map((c) => c.id),
    background: getComputedStyle(document.body).backgroundColor,
    outline: document.activeElement ? getComputedStyle(document.activeElement).outlineStyle : null,
    report: window.keyscopeReport ? { renderMs: window.keyscopeReport.renderMs, interactiveAt: window.keyscopeReport.interactiveAt, applyMs: window.keyscopeReport.applyMs ?? null } : null,
  }));
}

const out = { steps: [] };
try {
  await page.goto(spec.url, { waitUntil: "load" });
  await page.waitForSelector("body[data-ready='1']", { timeout: 20000 });
  out.load = await snapshot();
  if (spec.screenshot) await page.screenshot({ path: spec.screenshot, fullPage: !!spec.fullPage });
  for (const step of spec.steps || []) {
    const t = Date.now();
    if (step.fill !== undefined) await page.fill(step.fill, step.value);
    if (step.check !== undefined) await page.setChecked(step.check, step.value);
    if (step.select !== undefined) await page.selectOption(step.select, step.value);
    if (step.press !== undefined) await page.keyboard.press(step.press);
    if (step.focus !== undefined) await page.focus(step.focus);
    if (step.click !== undefined) await page.click(step.click);
    if (step.scroll) await page.evaluate(() => window.scrollTo(0, document.body.scrollHeight));
    await page.waitForTimeout(step.wait ?? 250);
    const snap = await snapshot();
    snap.ms = Date.now() - t;
    if (step.screenshot) await page.screenshot({ path: step.screenshot, fullPage: !!step.fullPage });
    out.steps.push(snap);
  }
  if (spec.pdf) await page.pdf({ path: spec.pdf }).catch((e) => errors.push("pdf: " + e));
} finally {
  out.requests = requests;
  out.errors = errors;
  await context.close();
  rmSync(profile, { recursive: true, force: true });
}
process.stdout.write(JSON.stringify(out));
