// The browser side of `python -m bench.console` (bench/console.py drives it):
//
//   node measure.mjs '{"baseUrl": ..., "token": ..., "chromium": ..., "small": ns, "big": ns, ...}'
//
// Debian's chromium, headless, through playwright-core (tests/console's node_modules). Measures
// in the page itself (performance.now(), resource timing, PerformanceObserver 'longtask',
// requestAnimationFrame deltas, a MutationObserver that notes when rows and cell values
// appear), so the numbers are what the page experiences, not Playwright's polling.
//
// Phases: cold/warm first loads of a small list; the big list (first rows, 300 frames at a
// wheel's pace, then all of it one screen per frame); then watch updates under load: it prints {"phase": "watch-ready",
// "visible": [row names]} and waits for "go" on stdin (the Python side starts writing) and
// "stop" (writes done and a grace period over). The last stdout line is the JSON result.
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';

const HERE = dirname(fileURLToPath(import.meta.url));
const require = createRequire(join(HERE, '..', '..', 'tests', 'console', 'package.json'));
const { chromium } = require('playwright-core');

const params = JSON.parse(process.argv[2]);
const TOKEN_KEY = 'scs-console.token';
const LIST = '[data-testid=list] tbody tr[data-name]';
const result = { cold: [], warm: [], big: null, wheel: null, scroll: null, watch: null, errors: [] };
const lines = createInterface({ input: process.stdin })[Symbol.asyncIterator]();

/** Installed before any page script (through DevTools, so the console's CSP is untouched):
 * the session token (a signed-in tab being reloaded), a long-task log, and a
 * MutationObserver noting the first table row and, once asked, new "w<n>" cell values. */
function instrument({ token, key }) {
  if (token && !sessionStorage.getItem(key)) sessionStorage.setItem(key, token);
  const b = { firstRow: 0, longtasks: [], seen: {}, column: -1, watching: false };
  window.__bench = b;
  try {
    new PerformanceObserver((list) => {
      for (const e of list.getEntries()) b.longtasks.push([e.startTime, e.duration]);
    }).observe({ type: 'longtask', buffered: true });
  } catch { /* no long task API: reported as none */ }
  const scan = () => {
    const rows = document.querySelectorAll('[data-testid=list] tbody tr[data-name]');
    if (!rows.length) return;
    if (!b.firstRow) b.firstRow = performance.now();
    if (!b.watching) return;
    const now = Date.now();
    for (const tr of rows) {
      const value = tr.cells[b.column]?.textContent ?? '';
      if (value.startsWith('w') && !(value in b.seen)) b.seen[value] = now;
    }
  };
  new MutationObserver(scan).observe(document, { subtree: true, childList: true, characterData: true });
}

function listUrl(ns) {
  return `${params.baseUrl}/console/r/iaas.scs.community/v1alpha1/volumes?namespace=${ns}`;
}

async function newPage(context) {
  const page = await context.newPage();
  page.setDefaultTimeout(params.timeoutMs ?? 120_000);
  page.on('pageerror', (err) => result.errors.push(`page error: ${err.message}`));
  page.on('console', (msg) => {
    if (msg.type() === 'error' || /Content Security Policy|Refused to/.test(msg.text())) {
      result.errors.push(`console: ${msg.text()}`.slice(0, 300));
    }
  });
  return page;
}

/** One load of a list URL: time to the first row, navigation timing, bytes by type. */
async function load(page, url) {
  await page.goto(url, { waitUntil: 'commit' });
  await page.waitForFunction(() => window.__bench?.firstRow > 0, null, { polling: 50 });
  return page.evaluate(() => {
    const nav = performance.getEntriesByType('navigation')[0];
    const bytes = {};
    for (const e of [nav, ...performance.getEntriesByType('resource')]) {
      const path = new URL(e.name).pathname;
      const type = /\.js$/.test(path) ? 'js' : /\.css$/.test(path) ? 'css'
        : e === nav ? 'html' : path.startsWith('/console/') ? 'other' : 'api';
      const t = (bytes[type] ??= { requests: 0, transfer: 0, encoded: 0, decoded: 0 });
      t.requests += 1;
      t.transfer += e.transferSize;
      t.encoded += e.encodedBodySize;
      t.decoded += e.decodedBodySize;
    }
    // every request after the HTML in start order (the waterfall), and the slowest API
    // calls: where the time to the first row went (server or page)
    const waterfall = performance.getEntriesByType('resource').map((e) => ({
      path: new URL(e.name).pathname, startMs: Math.round(e.startTime),
      firstByteMs: Math.round(e.responseStart), endMs: Math.round(e.responseEnd),
      bytes: e.encodedBodySize }));
    const api = waterfall.filter((e) => /^\/(api|apis|openapi)\//.test(e.path))
      .sort((a, b) => (b.endMs - b.startMs) - (a.endMs - a.startMs)).slice(0, 3);
    return {
      firstRowMs: window.__bench.firstRow,
      slowestApi: api,
      waterfall,
      responseEndMs: nav.responseEnd,
      domContentLoadedMs: nav.domContentLoadedEventEnd,
      rows: document.querySelectorAll('[data-testid=list] tbody tr[data-name]').length,
      caption: document.querySelector('[data-testid=list] caption')?.textContent ?? '',
      bytes,
    };
  });
}

async function firstLoads(browser) {
  for (let i = 0; i < params.runs; i += 1) {
    const context = await browser.newContext({ viewport: { width: 1280, height: 800 } });
    await context.addInitScript(instrument, { token: params.token, key: TOKEN_KEY });
    result.cold.push(await load(await newPage(context), listUrl(params.small)));
    // warm: a new tab of the same browser profile (HTTP cache kept; the session token is
    // per tab, so the init script gives it again, as a signed-in user's reload keeps it)
    result.warm.push(await load(await newPage(context), listUrl(params.small)));
    await context.close();
  }
}

/** Scroll the list by `step` px per animation frame (0: one screenful) until the end or
 * `frames` frames, and time every frame. */
function scrollBy({ step, frames }) {
  const el = document.querySelector('[data-testid=list]');
  const b = window.__bench;
  const from = performance.now();
  const deltas = [];
  let last = 0;
  return new Promise((resolve) => {
    const tick = (t) => {
      if (last) deltas.push(t - last);
      last = t;
      if (el.scrollTop + el.clientHeight >= el.scrollHeight - 1 || deltas.length >= frames) {
        requestAnimationFrame(() => requestAnimationFrame(() => {
          const names = [...el.querySelectorAll('tbody tr[data-name]')].map((tr) => tr.dataset.name);
          resolve({ deltas, seconds: (performance.now() - from) / 1000, step: el.clientHeight,
            lastRow: names[names.length - 1] ?? '', longtasks: b.longtasks.filter(([s]) => s >= from) });
        }));
        return;
      }
      el.scrollTop += step || el.clientHeight;
      requestAnimationFrame(tick);
    };
    requestAnimationFrame(tick);
  });
}

async function bigList(browser) {
  const context = await browser.newContext({ viewport: { width: 1280, height: 800 } });
  await context.addInitScript(instrument, { token: params.token, key: TOKEN_KEY });
  const page = await newPage(context);
  result.big = await load(page, listUrl(params.big));
  // a wheel's pace first (100 px, three rows, per frame: 6,000 px/s), then all of it one
  // screenful per frame (the worst case: every frame shows only new rows)
  result.wheel = await page.evaluate(scrollBy, { step: 100, frames: 300 });
  await page.evaluate(() => { document.querySelector('[data-testid=list]').scrollTop = 0; });
  await page.waitForTimeout(500);
  result.scroll = await page.evaluate(scrollBy, { step: 0, frames: 1e9 });
  await page.evaluate(() => { document.querySelector('[data-testid=list]').scrollTop = 0; });
  await page.waitForTimeout(1000);
  const visible = await page.evaluate(() => {
    const b = window.__bench;
    b.column = [...document.querySelectorAll('[data-testid=list] thead th')]
      .findIndex((th) => th.textContent === 'Attached To');
    const el = document.querySelector('[data-testid=list]');
    const top = el.getBoundingClientRect().top;
    const bottom = top + el.clientHeight;
    return [...el.querySelectorAll('tbody tr[data-name]')].filter((tr) => {
      const r = tr.getBoundingClientRect();
      return r.top >= top && r.bottom <= bottom;
    }).map((tr) => tr.dataset.name);
  });
  // watch updates under load: the Python side writes between "go" and "stop"
  console.log(JSON.stringify({ phase: 'watch-ready', visible }));
  if ((await lines.next()).value !== 'go') throw new Error('expected "go" on stdin');
  await page.evaluate(() => {
    const b = window.__bench;
    b.watching = true;
    b.seen = {};
    b.from = performance.now();
    b.frames = [];
    let last = 0;
    const tick = (t) => {
      if (last) b.frames.push(t - last);
      last = t;
      if (b.watching) requestAnimationFrame(tick);
    };
    requestAnimationFrame(tick);
  });
  console.log(JSON.stringify({ phase: 'watching' }));
  if ((await lines.next()).value !== 'stop') throw new Error('expected "stop" on stdin');
  result.watch = await page.evaluate(() => {
    const b = window.__bench;
    b.watching = false;
    const cells = {};
    for (const tr of document.querySelectorAll('[data-testid=list] tbody tr[data-name]')) {
      cells[tr.dataset.name] = tr.cells[b.column]?.textContent ?? '';
    }
    return { seen: b.seen, frames: b.frames, cells, seconds: (performance.now() - b.from) / 1000,
      longtasks: b.longtasks.filter(([s]) => s >= b.from),
      caption: document.querySelector('[data-testid=list] caption')?.textContent ?? '' };
  });
  await context.close();
}

async function main() {
  const browser = await chromium.launch({
    executablePath: params.chromium, headless: true,
    // the server's certificate (from its own test CA) is trusted by its key, so that
    // responses are cached as for any valid certificate (see bench/console.py spki_pin)
    args: ['--no-sandbox', '--disable-dev-shm-usage',
      `--ignore-certificate-errors-spki-list=${params.spki}`],
  });
  try {
    await firstLoads(browser);
    await bigList(browser);
    result.ok = true;
  } catch (err) {
    result.ok = false;
    result.error = String(err?.stack ?? err);
  } finally {
    await browser.close();
  }
  console.log(JSON.stringify(result));
  process.exit(0);
}

await main();
