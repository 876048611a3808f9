// What the console's browser scripts (scenarios.mjs, tasks.mjs, tenant_login.mjs) share: each
// is run as   node SCRIPT.mjs NAME '{"baseUrl": ..., "chromium": ..., "artifacts": ..., ...}'
// (tests/console/conftest.run_node), drives Debian's chromium headless with playwright-core
// and prints one JSON line {ok, steps, a11y, csp, pages, error} (plus what a script adds).
// Every visited page is screenshotted into `artifacts` and, unless it is the IdP's own,
// scanned with axe-core (WCAG 2 A/AA); pytest asserts on the result.
import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { join } from 'node:path';

import { chromium } from 'playwright-core';

const require = createRequire(import.meta.url);
const AXE = readFileSync(require.resolve('axe-core/axe.min.js'), 'utf8');
export const TIMEOUT = 30_000;

const [name, rawParams] = process.argv.slice(2);
export const params = JSON.parse(rawParams);
export const result = { ok: false, steps: [], a11y: [], csp: [], pages: [], error: null };
/** Pages under this address are the IdP's: screenshotted, not scanned (runScenario sets it). */
let notOurs = params.issuer;

export const step = (text) => result.steps.push(text);

/** Screenshot and accessibility scan of what the page shows now. */
export async function capture(page, label) {
  // not 'networkidle': a page with a watch keeps a request open for as long as it shows
  await page.waitForLoadState('load');
  await page.waitForFunction(() => !document.body.innerText.includes('Loading…'), null,
    { timeout: 10_000 }).catch(() => undefined);
  const file = `${String(result.pages.length + 1).padStart(2, '0')}-${label}.png`;
  await page.screenshot({ path: join(params.artifacts, file), fullPage: true });
  if (!page.url().startsWith(notOurs)) { // the test IdP's own pages are not ours to scan
    // Evaluated through the DevTools protocol, which the page's CSP does not govern (the
    // console itself forbids inline scripts and eval, and this test must not loosen that).
    await page.evaluate(AXE);
    const scan = await page.evaluate(() => window.axe.run(document, {
      runOnly: { type: 'tag', values: ['wcag2a', 'wcag2aa', 'wcag21a', 'wcag21aa'] },
    }));
    for (const v of scan.violations) {
      result.a11y.push({ page: label, id: v.id, impact: v.impact, help: v.help,
        nodes: v.nodes.slice(0, 3).map((n) => n.target.join(' ')) });
    }
  }
  result.pages.push({ label, url: page.url().replace(/[?#].*$/, ''), screenshot: file });
}

/** Go to a console page by address (a full load) and capture it; the path it ended at. */
export async function visit(page, path, label) {
  await page.goto(`${params.baseUrl}${path}`);
  await page.getByTestId('whoami').waitFor({ timeout: TIMEOUT });
  await capture(page, label);
  return new URL(page.url()).pathname;
}

/** Through the OpenID provider's own login and consent forms (oidc-provider devInteractions),
 * once the console has sent the browser to `idp`; back in the console, who is logged in. */
export async function idpLogin(page, user, idp, formLabel = null) {
  await page.waitForURL((url) => url.href.startsWith(idp));
  if (formLabel) await capture(page, formLabel);
  await page.fill('input[name=login]', user);
  await page.fill('input[name=password]', 'correct horse');
  await page.click('button[type=submit]');
  await page.waitForLoadState();
  if (page.url().startsWith(idp)) await page.click('button[type=submit]'); // consent
  await page.waitForURL((url) => url.href.startsWith(`${params.baseUrl}/console/`));
  await page.getByTestId('whoami').waitFor({ timeout: TIMEOUT });
  const who = await page.getByTestId('whoami').textContent();
  step(`logged in as ${who}`);
  return who;
}

/** The console's start page, its "Sign in with" button, the operator's IdP (`params.issuer`). */
export async function oidcLogin(page, user, formLabel = null) {
  await page.goto(`${params.baseUrl}/`);
  await page.getByRole('button', { name: /Sign in with/ }).click();
  return idpLogin(page, user, params.issuer, formLabel);
}

/** Paste a token into the console's login form (captured first as `formLabel`, if given). */
export async function tokenLogin(page, token, formLabel = null) {
  await page.goto(`${params.baseUrl}/`);
  if (formLabel) await capture(page, formLabel);
  await page.fill('#token', token);
  await page.getByRole('button', { name: 'Sign in', exact: true }).click();
  await page.getByTestId('whoami').waitFor({ timeout: TIMEOUT });
  step(`logged in as ${await page.getByTestId('whoami').textContent()}`);
}

/**
 * Run the scenario named on the command line and print the result. Options: `idp`, the
 * address whose pages are not scanned (default `params.issuer`); `extra`, fields added to the
 * result before the run (tasks.mjs: `data`); `context`, more browser context options.
 */
export async function runScenario(scenarios, { idp = params.issuer, extra = {}, context = {} } = {}) {
  notOurs = idp;
  Object.assign(result, extra);
  const browser = await chromium.launch({
    executablePath: params.chromium, headless: true,
    args: ['--no-sandbox', '--disable-dev-shm-usage'],
  });
  let page;
  try {
    // the server's (and a tenant IdP's) certificates are from their own test CAs
    const ctx = await browser.newContext({ ignoreHTTPSErrors: true,
      viewport: { width: 1280, height: 800 }, ...context });
    page = await ctx.newPage();
    page.setDefaultTimeout(TIMEOUT);
    page.on('console', (msg) => {
      if (/Content Security Policy|Refused to/.test(msg.text())) result.csp.push(msg.text());
    });
    page.on('pageerror', (err) => step(`page error: ${err.message}`));
    await scenarios[name](page);
    result.ok = true;
  } catch (err) {
    result.error = String(err?.stack ?? err);
    await page?.screenshot({ path: join(params.artifacts, 'failure.png'), fullPage: true })
      .catch(() => undefined);
  } finally {
    await browser.close();
  }
  console.log(JSON.stringify(result));
}
