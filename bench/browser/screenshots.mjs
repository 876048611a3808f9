// The user guide's screenshots (docs/console.md), taken by `python -m bench.console
// --screenshots DIR`, which starts the server and creates the objects shown:
//
//   node screenshots.mjs '{"baseUrl": ..., "token": ..., "spki": ..., "chromium": ..., "out": DIR,
//                         "namespace": "acme", "tenant": "acme", "server": "web-1", "cluster": ...}'
//
// Signs in with the pasted bootstrap admin token, visits each page and saves
// console-<page>.png (the viewport, not the full page: small files for the repository;
// together under 1.5 MB).
// Prints one JSON line: {ok, shots: [file names], error}.
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const HERE = dirname(fileURLToPath(import.meta.url));
const require = createRequire(join(HERE, '..', '..', 'tests', 'console', 'package.json'));
const { chromium } = require('playwright-core');

const params = JSON.parse(process.argv[2]);
const result = { ok: false, shots: [], error: null };
const R = '/console/r';
const IAAS = `${R}/iaas.scs.community/v1alpha1`;
const ns = params.namespace;

async function shot(page, name) {
  // watches keep the network busy, so "idle" may never come: wait a little, not forever
  await page.waitForLoadState('networkidle', { timeout: 2000 }).catch(() => undefined);
  await page.waitForTimeout(300); // lazy chunks and the last watch batch
  const file = `console-${name}.png`;
  await page.screenshot({ path: join(params.out, file) });
  result.shots.push(file);
}

async function visit(page, path, name, ready) {
  await page.goto(`${params.baseUrl}${path}`);
  await page.getByTestId('whoami').waitFor();
  if (ready) await ready(page);
  await shot(page, name);
}

const rows = (page) => page.locator('[data-testid=list] tbody tr[data-name]').first().waitFor();

async function main(page) {
  await page.goto(`${params.baseUrl}/`);
  await page.locator('#token').waitFor();
  await shot(page, 'login');
  await page.fill('#token', params.token);
  await page.getByRole('button', { name: 'Sign in', exact: true }).click();
  await page.getByTestId('whoami').waitFor();
  await shot(page, 'home');

  await visit(page, `${IAAS}/servers?namespace=${ns}`, 'list', rows);
  await visit(page, `${IAAS}/servers/${params.server}?namespace=${ns}`, 'detail',
    (p) => p.locator('[data-condition=Ready][data-status=True]').waitFor({ timeout: 60_000 }));
  await page.getByTestId('yaml').scrollIntoViewIfNeeded();
  await shot(page, 'yaml');
  await page.getByRole('button', { name: 'Delete' }).click();
  await page.getByRole('dialog').waitFor();
  await shot(page, 'delete');
  await page.getByRole('dialog').getByRole('button', { name: 'Cancel' }).click();

  await page.goto(`${params.baseUrl}${IAAS}/servers/_new?namespace=${ns}`);
  await page.getByRole('button', { name: 'Create' }).click(); // nothing filled in: the 422
  await page.locator('.field-error').first().waitFor();
  await page.locator('.field-error').first().scrollIntoViewIfNeeded();
  await shot(page, 'form-errors');

  const tasks = [
    ['/console/tasks/onboarding', 'task-onboarding'],
    [`/console/tasks/onboarding/${params.tenant}`, 'task-onboarding-steps'],
    [`/console/tasks/tenants/${params.tenant}`, 'task-tenant'],
    [`/console/tasks/servers/${params.server}?namespace=${ns}`, 'task-server'],
    [`/console/tasks/clusters/${params.cluster}?namespace=${ns}`, 'task-cluster'],
    ['/console/tasks/status', 'task-status'],
    [`/console/tasks/usage?namespace=${ns}`, 'task-usage'],
  ];
  for (const [path, name] of tasks) {
    if (name === 'task-cluster' && !params.cluster) continue;
    await visit(page, path, name, (p) => p.locator('main h1').first().waitFor());
  }
}

const browser = await chromium.launch({
  executablePath: params.chromium, headless: true,
  args: ['--no-sandbox', '--disable-dev-shm-usage', `--ignore-certificate-errors-spki-list=${params.spki}`],
});
let page;
try {
  const context = await browser.newContext({ viewport: { width: 1100, height: 680 } });
  page = await context.newPage();
  page.setDefaultTimeout(30_000);
  await main(page);
  result.ok = true;
} catch (err) {
  result.error = String(err?.stack ?? err);
  await page?.screenshot({ path: join(params.out, 'failure.png') }).catch(() => undefined);
} finally {
  await browser.close();
}
console.log(JSON.stringify(result));
