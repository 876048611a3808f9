// Who is logged in, and with which bearer token. Tokens live in sessionStorage only (gone
// when the tab closes, never in localStorage or a URL); logout removes every key we wrote.
//
// Two ways in: OpenID Connect authorization code + PKCE (oidc-client-ts) against an issuer
// the server announces in /console/config.json, sending the ID token (the API checks its
// audience like kube-apiserver); or a pasted bearer token (the bootstrap admin's).
// oidc-client-ts is loaded only when an OIDC login is started or restored (a separate chunk):
// token logins and the first paint of the login page do not pay for it.
//
// A tenant's own IdPs (federation) are offered at /console/t/<tenant>/, whose CSP lets the
// page reach them; their redirect URI is /console/t/<tenant>/callback. The tenant of such a
// login is remembered in sessionStorage: a reload elsewhere goes back through its entry (for
// that CSP) and then on to the page it was on.
import type { User, UserManager } from 'oidc-client-ts';

export interface IssuerInfo {
  issuer: string;
  clientId: string;
  name: string;
  scopes: string;
  tenant?: string; // a tenant's own IdP (users become "<tenant>:<name>")
}

export interface ConsoleConfig {
  issuers: IssuerInfo[];
  tokenLogin: boolean;
  tenant?: string; // set at /console/t/<tenant>/ when that tenant has trusted IdPs
}

const TOKEN_KEY = 'scs-console.token';
const ISSUER_KEY = 'scs-console.issuer';
const TENANT_KEY = 'scs-console.tenant';
const RETURN_KEY = 'scs-console.return';
export const CALLBACK_PATH = '/console/callback';
const TENANT_PATH = /^\/console\/t\/([a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?)\//;

let config: ConsoleConfig = { issuers: [], tokenLogin: true };
let manager: UserManager | null = null;
let oidcUser: User | null = null;
const listeners = new Set<() => void>();

/** The tenant of a /console/t/<tenant>/ address, or null. */
function tenantOfPath(): string | null {
  return TENANT_PATH.exec(window.location.pathname)?.[1] ?? null;
}

function tenantBase(tenant: string): string {
  return `/console/t/${tenant}/`;
}

export async function loadConfig(): Promise<ConsoleConfig> {
  const stored = sessionStorage.getItem(TENANT_KEY);
  const tenant = tenantOfPath();
  if (stored && TENANT_PATH.test(tenantBase(stored)) && stored !== tenant) {
    // logged in through a tenant IdP: only its entry's CSP lets us refresh or revoke there
    sessionStorage.setItem(RETURN_KEY, window.location.pathname + window.location.search);
    window.location.replace(tenantBase(stored));
    return new Promise<ConsoleConfig>(() => undefined); // the page is going away
  }
  const url = tenant ? `${tenantBase(tenant)}config.json` : '/console/config.json';
  const response = await fetch(url, { credentials: 'omit' });
  config = (await response.json()) as ConsoleConfig;
  return config;
}

function callbackPath(issuer: IssuerInfo): string {
  return issuer.tenant ? `${tenantBase(issuer.tenant)}callback` : CALLBACK_PATH;
}

/** Off a tenant entry to where the user was (or the home page), keeping this document. */
function leaveTenantEntry(): void {
  const back = sessionStorage.getItem(RETURN_KEY);
  sessionStorage.removeItem(RETURN_KEY);
  const safe = back && back.startsWith('/console/') && !TENANT_PATH.test(back) ? back : '/console/';
  window.history.replaceState(null, '', safe);
}

async function managerFor(issuer: IssuerInfo): Promise<UserManager> {
  const { UserManager, WebStorageStateStore } = await import('oidc-client-ts');
  const store = new WebStorageStateStore({ store: window.sessionStorage });
  return new UserManager({
    authority: issuer.issuer,
    client_id: issuer.clientId,
    redirect_uri: `${window.location.origin}${callbackPath(issuer)}`,
    post_logout_redirect_uri: `${window.location.origin}${issuer.tenant ? tenantBase(issuer.tenant) : '/console/'}`,
    response_type: 'code',
    scope: issuer.scopes,
    userStore: store,
    stateStore: store,
    automaticSilentRenew: false, // refresh on a 401 instead: no iframes (CSP frame-src)
    loadUserInfo: false,
    monitorSession: false,
  });
}

function issuerByUrl(url: string | null): IssuerInfo | undefined {
  return config.issuers.find((i) => i.issuer === url);
}

/** Restore the session of this tab, or finish a login redirect (the callback route). */
export async function restore(): Promise<void> {
  try {
    await restoreIssuer();
  } finally {
    if (tenantOfPath() && loggedIn()) leaveTenantEntry();
  }
}

async function restoreIssuer(): Promise<void> {
  const issuer = issuerByUrl(sessionStorage.getItem(ISSUER_KEY));
  if (!issuer) {
    sessionStorage.removeItem(TENANT_KEY); // its IdP is no longer offered: stop returning
    return;
  }
  manager = await managerFor(issuer);
  if (window.location.pathname === callbackPath(issuer)) {
    try {
      oidcUser = await manager.signinRedirectCallback();
    } finally {
      // The code and state must not stay in the address bar or the history.
      window.history.replaceState(null, '', '/console/');
    }
  } else {
    oidcUser = await manager.getUser();
  }
}

export async function loginWithIssuer(issuer: IssuerInfo): Promise<void> {
  sessionStorage.setItem(ISSUER_KEY, issuer.issuer);
  if (issuer.tenant) sessionStorage.setItem(TENANT_KEY, issuer.tenant);
  else sessionStorage.removeItem(TENANT_KEY);
  manager = await managerFor(issuer);
  await manager.signinRedirect();
}

export function loginWithToken(token: string): void {
  sessionStorage.setItem(TOKEN_KEY, token.trim());
  sessionStorage.removeItem(TENANT_KEY);
  if (tenantOfPath()) leaveTenantEntry();
  notify();
}

/** The bearer token for API calls (the ID token for OIDC logins), or null. */
export function bearer(): string | null {
  if (oidcUser && !oidcUser.expired) return oidcUser.id_token ?? null;
  return sessionStorage.getItem(TOKEN_KEY);
}

export function loggedIn(): boolean {
  return oidcUser !== null || sessionStorage.getItem(TOKEN_KEY) !== null;
}

let refreshing: Promise<boolean> | null = null;

/** Use the refresh token (after a 401, or before a request once the ID token expired).
 * Single flight: the provider rotates refresh tokens and takes a second use of the old one
 * as a replay (revoking the grant), so concurrent requests share one refresh. */
export function refresh(): Promise<boolean> {
  if (!manager || !oidcUser?.refresh_token) return Promise.resolve(false);
  const current = manager;
  refreshing ??= current.signinSilent()
    .then((user) => { oidcUser = user; return user !== null; }, () => false)
    .finally(() => { refreshing = null; });
  return refreshing;
}

/** The bearer token for the next request, refreshed first if it has expired. */
export async function freshBearer(): Promise<string | null> {
  if (oidcUser?.expired) await refresh();
  return bearer();
}

/** Forget every token of this tab (sessionStorage keys of ours and of oidc-client-ts),
 * after revoking the refresh token at the provider. */
export async function logout(): Promise<void> {
  if (manager && oidcUser) {
    // a copied refresh token must not outlive the session: the provider forgets it
    await manager.revokeTokens(['refresh_token', 'access_token']).catch(() => undefined);
  }
  if (manager) await manager.removeUser().catch(() => undefined);
  await manager?.clearStaleState().catch(() => undefined);
  for (const key of Object.keys(sessionStorage)) {
    if (key.startsWith('scs-console.') || key.startsWith('oidc.')) sessionStorage.removeItem(key);
  }
  oidcUser = null;
  manager = null;
  notify();
}

export function subscribe(listener: () => void): () => void {
  listeners.add(listener);
  return () => listeners.delete(listener);
}

function notify(): void {
  for (const listener of listeners) listener();
}
