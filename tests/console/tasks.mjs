// Browser scenarios for the console's task pages (tests/console/test_tasks.py), run like
// scenarios.mjs:   node tasks.mjs NAME '{"baseUrl": ..., "issuer": ..., "chromium": ..., "artifacts": ...}'
// Prints one JSON line {ok, steps, a11y, csp, pages, data, error} (harness.mjs runs it);
// `data` carries what the test parses itself (the downloaded kubeconfig). Every visited page is screenshotted into
// `artifacts` and scanned with axe-core (WCAG 2 A/AA).
import { readFileSync } from 'node:fs';
import { join } from 'node:path';

import {
  TIMEOUT, capture, oidcLogin, params, result, runScenario, step, tokenLogin as pasteToken,
} from './harness.mjs';

const tokenLogin = (page) => pasteToken(page, params.adminToken);

/** Navigate inside the app (no reload: the session's token stays in memory as it would). */
async function open(page, path) {
  await page.evaluate((to) => { window.history.pushState(null, '', to); window.dispatchEvent(new PopStateEvent('popstate')); }, path);
}

async function taskLinks(page) {
  await page.locator('[data-testid=task-nav][data-settled=true]').waitFor({ state: 'attached', timeout: TIMEOUT });
  return page.locator('[data-testid=task-nav] a').allTextContents().catch(() => []);
}

const stepStates = (page) => page.locator('[data-testid=steps] li').evaluateAll(
  (items) => items.map((li) => `${li.dataset.condition}=${li.dataset.status}`).join(' '));

/** The cloud admin onboards a tenant and watches its steps turn True, without a reload. */
async function onboarding(page) {
  await tokenLogin(page);
  step(`task links: ${(await taskLinks(page)).join(', ')}`);
  await open(page, '/console/tasks/onboarding');
  await page.getByTestId('onboarding-form').waitFor();
  await capture(page, 'onboarding-form');
  // invalid first: no display name; the server's 422 names the field
  await page.fill('#t-name', params.tenant);
  await page.getByRole('button', { name: 'Create tenant' }).click();
  await page.locator('#t-display-error').waitFor({ timeout: TIMEOUT });
  step(`field error beside display name: ${await page.locator('#t-display-error').textContent()}`);
  await capture(page, 'onboarding-field-error');

  await page.fill('#t-display', 'Initech');
  await page.fill('#t-contact', `ops@${params.tenant}.example`);
  await page.fill('#t-admins', params.admin);
  await page.fill('#t-q-namespaces', '3');
  await page.fill('#t-q-instances', '4');
  const origin = await page.evaluate(() => performance.timeOrigin);
  await page.getByRole('button', { name: 'Create tenant' }).click();
  await page.waitForURL(`**/console/tasks/onboarding/${params.tenant}`);
  const seen = [];
  const deadline = Date.now() + 60_000;
  for (;;) {
    const states = await stepStates(page).catch(() => '');
    if (states && states !== seen[seen.length - 1]) seen.push(states);
    if (states.includes('Ready=True') || Date.now() > deadline) break;
    await page.waitForTimeout(25);
  }
  result.data.onboardingStates = seen;
  result.data.readyHistory = await page.getByTestId('onboarding-state').getAttribute('data-history');
  step(`ready without reload: ${origin === await page.evaluate(() => performance.timeOrigin)}`);
  step(`page says: ${await page.getByTestId('onboarding-state').textContent()}`);
  await capture(page, 'onboarding-ready');

  await open(page, '/console/tasks/status');
  await page.locator('[data-testid=components] li').first().waitFor({ timeout: TIMEOUT });
  await capture(page, 'status-admin');
  await open(page, `/console/tasks/usage`);
  await page.locator('#usage-tenant').waitFor();
  await capture(page, 'usage-admin');
}

/** A tenant admin's task pages: overview, server, cluster (+ kubeconfig), status, usage. */
async function tenantTasks(page) {
  await oidcLogin(page, params.user);
  const ns = params.namespace;
  step(`task links: ${(await taskLinks(page)).join(', ')}`);

  await open(page, '/console/tasks/tenants');
  await page.getByTestId('quota-bars').waitFor({ timeout: TIMEOUT });
  step(`overview url: ${new URL(page.url()).pathname}`);
  const quota = await page.locator('[data-quota]').evaluateAll((bars) =>
    Object.fromEntries(bars.map((b) => [b.dataset.quota, `${b.dataset.used}/${b.dataset.limit}`])));
  result.data.quota = quota;
  result.data.people = await page.locator('[data-testid=people] dd[data-count]').evaluateAll(
    (dds) => dds.map((d) => Number(d.dataset.count)));
  await capture(page, 'tenant-overview');

  await open(page, `/console/tasks/servers?namespace=${ns}`);
  await page.locator(`[data-testid=servers] tr[data-name="${params.server}"]`).waitFor({ timeout: TIMEOUT });
  await capture(page, 'servers');
  await page.locator(`[data-testid=servers] tr[data-name="${params.server}"] a`).click();
  await page.locator('[data-testid=server-state][data-ready=true]').waitFor({ timeout: 60_000 });
  step(`server flavor ${await page.getByTestId('flavor').textContent()}, image ${await page.getByTestId('image').textContent()}`);
  step(`server addresses: ${(await page.locator('[data-testid=addresses] code').allTextContents()).join(',')}`);
  step(`server power: ${await page.getByTestId('power').textContent()}`);
  await page.locator('.title-bar[data-settled=true]').waitFor();
  const serverButtons = await page.locator('.title-bar').locator('a.button, button').allTextContents();
  step(`server actions: ${serverButtons.join(',')}`);
  await capture(page, 'server');

  await open(page, `/console/tasks/clusters/${params.cluster}?namespace=${ns}`);
  await page.locator('[data-testid=pools] tr[data-pool]').first().waitFor({ timeout: TIMEOUT });
  step(`cluster endpoint: ${await page.getByTestId('endpoint').textContent()}`);
  const pools = await page.locator('[data-testid=pools] tr[data-pool]').evaluateAll(
    (rows) => rows.map((r) => [...r.querySelectorAll('td')].map((td) => td.textContent).join('|')));
  step(`pools: ${pools.join('; ')}`);
  const downloading = page.waitForEvent('download');
  await page.getByRole('button', { name: 'Download kubeconfig' }).click();
  const download = await downloading;
  const saved = join(params.artifacts, download.suggestedFilename());
  await download.saveAs(saved);
  result.data.kubeconfigFile = download.suggestedFilename();
  result.data.kubeconfigUrl = download.url().replace(/[0-9a-f-]{36}$/, '<uuid>');
  result.data.kubeconfig = readFileSync(saved, 'utf8');
  await page.getByTestId('kubeconfig-saved').waitFor();
  const adminDownloading = page.waitForEvent('download');
  await page.getByRole('button', { name: 'Download admin kubeconfig' }).click();
  const adminDownload = await adminDownloading;
  const adminSaved = join(params.artifacts, adminDownload.suggestedFilename());
  await adminDownload.saveAs(adminSaved);
  result.data.adminKubeconfigFile = adminDownload.suggestedFilename();
  result.data.adminKubeconfig = readFileSync(adminSaved, 'utf8');
  await page.getByText('its credential expires at').waitFor();
  const stored = await page.evaluate(() => JSON.stringify({ ...sessionStorage }) + JSON.stringify({ ...localStorage }));
  step(`kubeconfig in storage: ${stored.includes('certificate-authority-data')}`);
  await capture(page, 'cluster');

  await open(page, '/console/tasks/status');
  await page.locator(`[data-testid=components] li[data-component="${params.component}"]`).waitFor({ timeout: TIMEOUT });
  const severity = await page.locator(`li[data-component="${params.component}"]`).getAttribute('data-severity');
  step(`component ${params.component} severity ${severity}`);
  const active = await page.locator('[data-testid=active-incidents] > li').evaluateAll((lis) => lis.map((li) => li.dataset.incident));
  step(`active incidents: ${active.join(',')}`);
  const updates = await page.locator(`[data-testid=active-incidents] li[data-incident="${params.incident}"] [data-update]`).count();
  step(`updates shown: ${updates}`);
  await capture(page, 'status');

  await open(page, '/console/tasks/usage');
  await readUsage(page);
  await capture(page, 'usage');
}

/** What the usage page shows: charts drawn, the summary's rows and the hourly rows. */
async function readUsage(page) {
  await page.locator('[data-testid=time-chart], [data-testid=no-usage], [role=alert]').first().waitFor({ timeout: TIMEOUT });
  const alert = await page.getByRole('alert').first().textContent({ timeout: 500 }).catch(() => '');
  if (alert) step(`usage alert: ${alert}`);
  const bars = await page.locator('[data-testid=time-chart] rect.bar-rect').count();
  const totals = await page.locator('[data-testid=total-chart] rect.bar-rect').count();
  step(`usage chart bars: ${bars > 0}, total bars: ${totals > 0}`);
  result.data.usageRows = await page.locator('[data-testid=usage-table] tbody tr').evaluateAll(
    (rows) => rows.map((r) => [...[...r.querySelectorAll('td')].map((td) => td.textContent).slice(0, 3), Number(r.dataset.quantity)]));
  result.data.hourly = await page.locator('[data-testid=hourly-table] tbody tr').evaluateAll(
    (rows) => rows.map((r) => [...[...r.querySelectorAll('td')].map((td) => td.textContent).slice(0, 2), Number(r.dataset.quantity)]));
  step(`usage unit shown: ${await page.locator('#usage-unit').inputValue()}`);
  step(`usage covers: ${await page.getByTestId('covers').textContent()}`);
}

/** The cloud admin's usage page of a tenant (records listed across namespaces). */
async function adminUsage(page) {
  await tokenLogin(page);
  await open(page, '/console/tasks/usage');
  await page.locator('#usage-tenant').waitFor();
  await page.locator(`#usage-tenant option[value="${params.tenant}"]`).waitFor({ state: 'attached' });
  await page.selectOption('#usage-tenant', params.tenant);
  await readUsage(page);
  await capture(page, 'usage-admin');
  await open(page, '/console/tasks/servers');
  await page.locator('[data-testid=servers] tr[data-name]').first().waitFor();
  const everywhere = await page.locator('[data-testid=servers] tr[data-name]').evaluateAll(
    (rows) => rows.map((r) => `${r.querySelector('td').textContent}/${r.dataset.name}`));
  step(`servers everywhere: ${everywhere.join(',')}`);
  await capture(page, 'servers-all-namespaces');
}

/** Another tenant's admin: no onboarding, nothing of the first tenant's servers. */
async function outsider(page) {
  await oidcLogin(page, params.user);
  step(`task links: ${(await taskLinks(page)).join(', ')}`);
  await open(page, `/console/tasks/servers/${params.server}?namespace=${params.namespace}`);
  const alert = await page.getByRole('alert').first().textContent({ timeout: TIMEOUT }).catch(() => '');
  step(`foreign server: ${alert}`);
  await capture(page, 'foreign-server');
  await open(page, '/console/tasks/onboarding');
  const refusal = await page.getByRole('alert').first().textContent({ timeout: TIMEOUT }).catch(() => '');
  step(`onboarding: ${refusal}`);
  await capture(page, 'onboarding-refused');
}

/** A server without kaas, status and metering: no links to their pages, a clear notice. */
async function disabledServices(page) {
  await tokenLogin(page);
  step(`task links: ${(await taskLinks(page)).join(', ')}`);
  await capture(page, 'home-few-services');
  for (const [label, path] of [['clusters', '/console/tasks/clusters?namespace=default'],
    ['status', '/console/tasks/status'], ['usage', '/console/tasks/usage']]) {
    await open(page, path);
    const notice = page.getByText(/service is not enabled/);
    await notice.waitFor({ timeout: TIMEOUT });
    step(`${label}: ${await notice.textContent()}`);
    await capture(page, `${label}-disabled`);
  }
}

/** A viewer (pasted ServiceAccount token): the pages, without edit, delete or kubeconfigs. */
async function viewer(page) {
  await pasteToken(page, params.token);
  await open(page, `/console/tasks/servers/${params.server}?namespace=${params.namespace}`);
  await page.getByTestId('server-state').waitFor();
  step(`server ready: ${await page.getByTestId('server-state').getAttribute('data-ready')}`);
  await page.locator('.title-bar[data-settled=true]').waitFor(); // the access reviews answered
  step(`server actions: ${(await page.locator('.title-bar').locator('a.button, button').allTextContents()).join(',')}`);
  await capture(page, 'viewer-server');
  await open(page, `/console/tasks/clusters/${params.cluster}?namespace=${params.namespace}`);
  const refused = page.getByText('You may not download kubeconfigs');
  await refused.waitFor({ timeout: TIMEOUT });
  step(`access: ${await refused.textContent()}`);
  step(`cluster buttons: ${(await page.locator('main button, .title-bar a.button').allTextContents()).join(',')}`);
  await capture(page, 'viewer-cluster');
}

const SCENARIOS = { onboarding, tenantTasks, outsider, disabledServices, viewer, adminUsage };

await runScenario(SCENARIOS, { extra: { data: {} }, context: { acceptDownloads: true } });
