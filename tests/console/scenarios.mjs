// Browser scenarios for the console, run by tests/console (conftest.run_scenario):
//
//   node scenarios.mjs NAME '{"baseUrl": ..., "issuer": ..., "chromium": ..., "artifacts": ...}'
//
// Prints one JSON line (harness.mjs runs it):
//   {ok, steps: [what was seen, in order], a11y: [{page, id, impact, help, nodes}],
//    csp: [console messages about blocked content], pages, error}
// Every visited page is screenshotted into `artifacts` and scanned with axe-core (WCAG 2 A
// and AA rules); pytest asserts on the result. To add a scenario, write an async function
// taking the page and add it to SCENARIOS.
import {
  TIMEOUT, capture, oidcLogin, params, runScenario, step, tokenLogin as pasteToken, visit,
} from './harness.mjs';

/** oidcLogin, its form captured; then the code must have left the address, home captured. */
async function login(page, user) {
  const who = await oidcLogin(page, user, `idp-login-${user}`);
  if (page.url().includes('code=') || page.url().includes('state=')) {
    throw new Error(`the authorization response stayed in the URL: ${page.url()}`);
  }
  await capture(page, `home-${user}`);
  return who;
}

async function storedTokens(page) {
  return page.evaluate(() => ({
    session: Object.keys(sessionStorage).filter((k) => k.startsWith('oidc.') || k === 'scs-console.token'),
    sessionValues: Object.values(sessionStorage).filter((v) => v.includes('id_token') || v.split('.').length === 3).length,
    local: Object.keys(localStorage),
  }));
}

async function logout(page) {
  await page.getByRole('button', { name: 'Sign out' }).click();
  await page.getByRole('heading', { name: 'SCS Console' }).waitFor({ timeout: TIMEOUT });
  const stored = await storedTokens(page);
  step(`after logout: ${stored.session.length} token keys in sessionStorage, `
    + `${stored.sessionValues} token values, ${stored.local.length} localStorage keys`);
  await capture(page, 'logged-out');
}

/** Alice (tenant admin of acme): a namespace, a Server that turns Ready live, a field error. */
async function tenantAdmin(page) {
  const who = await login(page, 'alice');
  const stored = await storedTokens(page);
  step(`while logged in: token in sessionStorage ${stored.sessionValues > 0}, `
    + `${stored.local.length} localStorage keys`);

  const ns = params.namespace;
  await visit(page, '/console/r/core/v1/namespaces/_new', 'namespace-form');
  await page.fill('#f-metadata_name', ns);
  await page.fill('#f-metadata_labels', 'tenancy.scs.community/tenant=acme');
  await page.getByRole('button', { name: 'Create' }).click();
  await page.waitForURL(`**/console/r/core/v1/namespaces/${ns}**`);
  step(`namespace ${ns} created`);
  await capture(page, 'namespace-detail');

  await visit(page, `/console/r/iaas.scs.community/v1alpha1/servers/_new?namespace=${ns}`, 'server-form');
  await page.getByRole('button', { name: 'Create' }).click(); // nothing filled in: invalid
  await page.locator('.field-error').first().waitFor({ timeout: TIMEOUT });
  const errors = await page.locator('.field-error').evaluateAll((spans) => spans.map((el) => {
    // the input this message belongs to names it in aria-describedby, and sits beside it
    const input = document.querySelector(`[aria-describedby~="${el.id}"]`);
    const beside = input && el.closest('.field, fieldset') === input.closest('.field, fieldset');
    return `${el.id.replace(/-error$/, '')}${input ? (beside ? ' (beside its input)' : ' (elsewhere)') : ''}`;
  }));
  step(`field errors: ${errors.join(', ')}`);
  await capture(page, 'server-form-errors');

  await visit(page, `/console/r/iaas.scs.community/v1alpha1/networks/_new?namespace=${ns}`, 'network-form');
  await page.fill('#f-metadata_name', 'web');
  await page.getByRole('button', { name: 'Create' }).click();
  await page.waitForURL('**/console/r/iaas.scs.community/v1alpha1/networks/web**');
  step('network web created');
  await visit(page, `/console/r/iaas.scs.community/v1alpha1/subnets/_new?namespace=${ns}`, 'subnet-form');
  await page.fill('#f-metadata_name', 'web');
  await page.fill('#f-spec_networkRef_name', 'web');
  await page.fill('#f-spec_cidr', '10.0.0.0/24');
  await page.getByRole('button', { name: 'Create' }).click();
  await page.waitForURL('**/console/r/iaas.scs.community/v1alpha1/subnets/web**');

  await visit(page, `/console/r/iaas.scs.community/v1alpha1/servers/_new?namespace=${ns}`, 'server-form-again');
  await page.fill('#f-metadata_name', 'web-1');
  await page.getByRole('button', { name: 'Add networks' }).click();
  await page.fill('#f-spec_networks_0__name', 'web');
  await page.fill('#f-spec_flavor', 'SCS-2V-4');
  await page.fill('#f-spec_image', 'ubuntu-24.04');
  await page.getByRole('button', { name: 'Create' }).click();
  await page.waitForURL('**/console/r/iaas.scs.community/v1alpha1/servers/web-1**');
  const loadedAt = await page.evaluate(() => performance.timeOrigin);
  step('server web-1 created');
  await capture(page, 'server-detail-pending');
  await page.locator('[data-condition=Ready][data-status=True]').waitFor({ timeout: 60_000 });
  const sameDocument = loadedAt === await page.evaluate(() => performance.timeOrigin);
  step(`server web-1 Ready without reload: ${sameDocument}`);
  await capture(page, 'server-detail-ready');

  await visit(page, `/console/r/iaas.scs.community/v1alpha1/servers?namespace=${ns}`, 'server-list');
  const rows = await page.locator('[data-testid=list] tbody tr[data-name]').count();
  step(`server list shows ${rows} row(s)`);
  const offered = await page.locator('select[data-testid=namespace] option').allTextContents();
  step(`namespaces offered: ${offered.join(',')}`);

  // edit: a label, through the generated form (PUT with the object's resourceVersion)
  await visit(page, `/console/r/iaas.scs.community/v1alpha1/servers/web-1/_edit?namespace=${ns}`, 'server-edit');
  await page.fill('#f-metadata_labels', 'tier=web');
  await page.getByRole('button', { name: 'Save' }).click();
  await page.waitForURL('**/console/r/iaas.scs.community/v1alpha1/servers/web-1?**');
  await page.getByText('tier=web').first().waitFor();
  step('label tier=web saved');

  // label filter
  await visit(page, `/console/r/iaas.scs.community/v1alpha1/servers?namespace=${ns}`, 'server-list-labelled');
  for (const selector of ['tier=web', 'tier=db']) {
    await page.fill('#selector', selector);
    await page.getByRole('button', { name: 'Filter' }).click();
    await page.waitForTimeout(1000); // the new list and its watch (batched every 250 ms)
    await page.waitForFunction(() => !document.body.innerText.includes('Loading…'), null,
      { timeout: 10_000 }).catch(() => undefined);
    const matching = await page.locator('[data-testid=list] tbody tr[data-name]').count();
    step(`selector ${selector}: ${matching} row(s)`);
  }

  // delete with confirmation; the list loses the row by watch
  await visit(page, `/console/r/iaas.scs.community/v1alpha1/servers/web-1?namespace=${ns}`, 'server-before-delete');
  await page.getByRole('button', { name: 'Delete' }).click();
  await page.getByRole('dialog').waitFor();
  await capture(page, 'delete-confirmation');
  await page.getByRole('dialog').getByRole('button', { name: 'Delete' }).click();
  await page.waitForURL(`**/console/r/iaas.scs.community/v1alpha1/servers?namespace=${ns}`);
  await page.locator('[data-testid=list] tbody tr[data-name]').first()
    .waitFor({ state: 'detached', timeout: 60_000 });
  step('server web-1 gone from the list');
  await capture(page, 'server-list-after-delete');

  await logout(page);
  return who;
}

/** Carol (tenant admin of globex) sees nothing of acme. */
async function otherTenant(page) {
  await login(page, 'carol');
  const ns = params.namespace;
  await visit(page, `/console/r/iaas.scs.community/v1alpha1/servers?namespace=${ns}`, 'foreign-servers');
  const alert = await page.getByRole('alert').first().textContent({ timeout: TIMEOUT }).catch(() => '');
  const rows = await page.locator('[data-testid=list] tbody tr[data-name]').count();
  step(`acme's servers: ${rows} row(s), alert: ${alert}`);
  await visit(page, '/console/r/iaas.scs.community/v1alpha1/servers?namespace=globex', 'own-servers');
  const own = await page.locator('[data-testid=list] tbody tr[data-name]').count();
  step(`globex servers: ${own} row(s)`);
  const options = await page.locator('select[data-testid=namespace] option').allTextContents()
    .catch(() => []);
  step(`namespaces offered: ${options.join(',')}`);
  const body = await page.locator('body').textContent();
  step(`page mentions acme: ${body.includes('acme')}`);
  await logout(page);
}

/** The bootstrap admin pastes the token once. */
async function tokenLogin(page) {
  await pasteToken(page, params.adminToken, 'login');
  await capture(page, 'home-admin');
  await visit(page, '/console/r/tenancy.scs.community/v1alpha1/tenants', 'tenant-list');
  const rows = await page.locator('[data-testid=list] tbody tr[data-name]').allTextContents();
  step(`tenants listed: ${rows.length}`);
  await logout(page);
}

/** Bob may only view in acme: the objects, but no create, edit or delete buttons. */
async function viewer(page) {
  await login(page, 'bob');
  await visit(page, '/console/r/iaas.scs.community/v1alpha1/networks?namespace=acme', 'viewer-list');
  const rows = await page.locator('[data-testid=list] tbody tr[data-name]').allTextContents();
  step(`networks listed: ${rows.length}`);
  await page.locator('[data-access-checked=true]').waitFor(); // the access reviews answered
  step(`create offered: ${await page.getByText('Create Network').count() > 0}`);
  await visit(page, `/console/r/iaas.scs.community/v1alpha1/networks/${params.network}?namespace=acme`, 'viewer-detail');
  await page.getByTestId('yaml').getByText(params.network).first().waitFor();
  await page.locator('[data-access-checked=true]').waitFor();
  const buttons = await page.locator('#content').getByRole('button').allTextContents();
  const links = await page.locator('#content a.button').allTextContents();
  step(`actions offered: ${[...buttons, ...links].join(',') || 'none'}`);
  await logout(page);
}

/** Alice's ID token expires while she works: the console refreshes it and carries on. */
async function refresh(page) {
  await login(page, 'alice');
  const idToken = () => page.evaluate(() => Object.entries(sessionStorage)
    .filter(([k]) => k.startsWith('oidc.user:')).map(([, v]) => JSON.parse(v).id_token)[0] ?? null);
  const first = await idToken();
  await page.waitForTimeout(params.waitSeconds * 1000);
  await visit(page, '/console/r/iaas.scs.community/v1alpha1/networks?namespace=acme', 'after-expiry');
  const alerts = await page.getByRole('alert').allTextContents();
  step(`alerts after expiry: ${alerts.length ? alerts.join(' | ') : 'none'}`);
  const second = await idToken();
  step(`new ID token: ${first !== null && second !== null && first !== second}`);
  const refreshToken = await page.evaluate(() => Object.entries(sessionStorage)
    .filter(([k]) => k.startsWith('oidc.user:')).map(([, v]) => JSON.parse(v).refresh_token)[0]);
  await logout(page);
  const reuse = await fetch(`${params.issuer}/token`, {
    method: 'POST',
    headers: { 'Content-Type': 'application/x-www-form-urlencoded' },
    body: new URLSearchParams({ grant_type: 'refresh_token', refresh_token: refreshToken, client_id: 'scs-console' }),
  });
  step(`refresh token after logout: ${reuse.status} ${(await reuse.json()).error}`);
}

const SCENARIOS = { tenantAdmin, otherTenant, tokenLogin, viewer, refresh };

await runScenario(SCENARIOS);
