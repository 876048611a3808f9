// Browser scenario for the tenant login entry (tests/console/test_tenant_browser.py), run like
// scenarios.mjs:   node tenant_login.mjs NAME '{"baseUrl": ..., "idp": ..., "chromium": ..., "artifacts": ...}'
// Prints one JSON line {ok, steps, a11y, csp, pages, error} (harness.mjs runs it). Every
// visited console page is screenshotted into `artifacts` and scanned with axe-core (WCAG 2
// A/AA); the tenant IdP's own pages (`idp`) are screenshotted only.
import { TIMEOUT, capture, idpLogin, params, runScenario, step, visit } from './harness.mjs';

const rows = (page) => page.locator('[data-testid=list] tbody tr[data-name]').count();

/** Alice logs in through acme's own IdP at /console/t/acme/ and sees only acme. */
async function tenantIdpLogin(page) {
  await page.goto(`${params.baseUrl}/console/t/${params.tenant}/`);
  await page.getByRole('heading', { name: `Sign in to ${params.tenant}` }).waitFor();
  await capture(page, 'tenant-login');
  const buttons = await page.getByRole('button', { name: /^Sign in with/ }).allTextContents();
  step(`login buttons: ${buttons.join(' | ')}`);
  await page.getByRole('button', { name: `Sign in with ${new URL(params.idp).host}` }).click();
  await idpLogin(page, 'alice', params.idp, 'idp-login');
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

await runScenario(SCENARIOS, { idp: params.idp });
