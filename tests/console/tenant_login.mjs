// Browser scenario for the tenant login entry (tests/console/test_tenant_browser.py), run like
// scenarios.mjs:   node tenant_login.mjs NAME '{"baseUrl": ..., "idp": ..., "chromium": ..., "artifacts": ...}'
// Prints one JSON line {ok, steps, a11y, csp, pages, error}. Every visited console page is
// screenshotted into `artifacts` and scanned with axe-core (WCAG 2 A/AA); the IdP's own
// pages are screenshotted only.
import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { join } from 'node:path';

import { chromium } from 'playwright-core';

const require = createRequire(import.meta.url);
const AXE = readFileSync(require.resolve('axe-core/axe.min.js'), 'utf8');
const TIMEOUT = 30_000;

const [name, rawParams] = process.argv.slice(2);
const params = JSON.parse(rawParams);
const result = { ok: false, steps: [], a11y: [], csp: [], pages: [], error: null };
const step = (text) => result.steps.push(text);

async function capture(page, label) {
  await page.waitForLoadState('load');
  await page.waitForFunction(() => !document.body.innerText.includes('Loading…'), null,
    { timeout: 10_000 }).catch(() => undefined);
  const file = `${String(result.pages.length + 1).padStart(2, '0')}-${label}.png`;
  await page.screenshot({ path: join(params.artifacts, file), fullPage: true });
  if (!page.url().startsWith(params.idp)) { // the tenant IdP's pages are not ours to scan
    await page.evaluate(AXE); // through DevTools: the console's CSP forbids eval, rightly
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

async function visit(page, path, label) {
  await page.goto(`${params.baseUrl}${path}`);
  await page.getByTestId('whoami').waitFor({ timeout: TIMEOUT });
  await capture(page, label);
  return new URL(page.url()).pathname;
}

const rows = (page) => page.locator('[data-testid=list] tbody tr[data-name]').count();

/** Alice logs in through acme's own IdP at /console/t/acme/ and sees only acme. */
async function tenantIdpLogin(page) {
  await page.goto(`${params.baseUrl}/console/t/${params.tenant}/`);
  await page.getByRole('heading', { name: `Sign in to ${params.tenant}` }).waitFor();
  await capture(page, 'tenant-login');
  const buttons = await page.getByRole('button', { name: /^Sign in with/ }).allTextContents();
  step(`login buttons: ${buttons.join(' | ')}`);
  await page.getByRole('button', { name: `Sign in with ${new URL(params.idp).host}` }).click();
  await page.waitForURL((url) => url.href.startsWith(params.idp));
  await capture(page, 'idp-login');
  await page.fill('input[name=login]', 'alice');
  await page.fill('input[name=password]', 'correct horse');
  await page.click('button[type=submit]');
  await page.waitForLoadState();
  if (page.url().startsWith(params.idp)) await page.click('button[type=submit]'); // consent
  await page.waitForURL((url) => url.href.startsWith(`${params.baseUrl}/console/`));
  await page.getByTestId('whoami').waitFor({ timeout: TIMEOUT });
  step(`logged in as ${await page.getByTestId('whoami').textContent()}`);
  step(`address after login: ${new URL(page.url()).pathname}${new URL(page.url()).search}`);
  await capture(page, 'tenant-home');

  // a reload elsewhere goes back through the tenant's entry (its CSP) and returns here
  const own = `/console/r/iaas.scs.community/v1alpha1/networks?namespace=${params.tenant}`;
  const landed = await visit(page, own, 'own-networks');
  step(`after a reload at the networks list: ${landed}`);
  await page.locator('[data-access-checked=true]').waitFor().catch(() => undefined);
  step(`create offered: ${await page.getByText('Create Network').count() > 0}`);
  const options = await page.locator('select[data-testid=namespace] option').allTextContents()
    .catch(() => []);
  step(`namespaces offered: ${options.join(',')}`);
  step(`page mentions ${params.other}: ${(await page.locator('body').textContent()).includes(params.other)}`);

  await visit(page, `/console/r/iaas.scs.community/v1alpha1/servers?namespace=${params.other}`,
    'foreign-servers');
  const alert = await page.getByRole('alert').first().textContent({ timeout: TIMEOUT })
    .catch(() => '');
  step(`${params.other}'s servers: ${await rows(page)} row(s), alert: ${alert}`);

  await page.getByRole('button', { name: 'Sign out' }).click();
  await page.getByRole('heading', { name: 'SCS Console' }).waitFor({ timeout: TIMEOUT });
  const left = await page.evaluate(() => Object.keys(sessionStorage)
    .filter((k) => k.startsWith('scs-console.') || k.startsWith('oidc.')));
  step(`after logout: ${left.length} keys in sessionStorage`);
  await capture(page, 'logged-out');
}

const SCENARIOS = { tenantIdpLogin };

async function main() {
  const browser = await chromium.launch({
    executablePath: params.chromium, headless: true,
    args: ['--no-sandbox', '--disable-dev-shm-usage'],
  });
  let page;
  try {
    // the server's and the IdP's certificates are from their own test CAs
    const context = await browser.newContext({ ignoreHTTPSErrors: true, viewport: { width: 1280, height: 800 } });
    page = await context.newPage();
    page.setDefaultTimeout(TIMEOUT);
    page.on('console', (msg) => {
      if (/Content Security Policy|Refused to/.test(msg.text())) result.csp.push(msg.text());
    });
    page.on('pageerror', (err) => result.steps.push(`page error: ${err.message}`));
    await SCENARIOS[name](page);
    result.ok = true;
  } catch (err) {
    result.error = String(err?.stack ?? err);
    await page?.screenshot({ path: join(params.artifacts, 'failure.png'), fullPage: true })
      .catch(() => undefined);
  } finally {
    await browser.close();
  }
}

await main();
console.log(JSON.stringify(result));
