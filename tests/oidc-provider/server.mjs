// A real OpenID provider for the SCS Central API's tests: panva's certified oidc-provider,
// configured like a company IdP that kubectl users would log in with (device flow for CLIs,
// authorization code + PKCE for loopback redirects, refresh tokens, groups in the ID token).
//
//   node server.mjs CONFIG.json
//
// CONFIG.json (written by tests/oidc.py):
//   port        TCP port on 127.0.0.1
//   issuer      issuer URL to announce (normally http://127.0.0.1:PORT; a different value
//               lets a test check that clients refuse a discovery document for another issuer)
//   idTokenTtl  seconds an ID token lives (short values exercise `scs token` refreshing)
//   deviceFlow  whether the device authorization endpoint exists (false: clients must fall
//               back to authorization code + PKCE)
//   users       {login: {email, groups}}; any other login also signs in, with no groups
//   interval    device-flow polling interval announced to clients, seconds
//   extraKeys   private JWKs to publish as well (tests sign their crafted tokens with them)
//   tls         {cert, key}: PEM file paths; serve HTTPS (a tenant's IdP must be https)
//   consoleRedirectUris  redirect URIs of the web console's public client "scs-console"
//               (authorization code + PKCE from a browser; CORS allowed from their origins)
//
// Signing keys (one RSA, one P-256) are generated on every start, so restarting the provider
// on the same port is a key rotation with new key ids.
//
// Login uses oidc-provider's development interactions (a plain HTML login form accepting any
// password, then a consent form); tests/oidc.py scripts those forms like a browser would.
import { generateKeyPairSync, randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { createServer } from 'node:https';

import Provider from 'oidc-provider';

const config = JSON.parse(readFileSync(process.argv[2], 'utf8'));
const users = config.users || {};
const interval = config.interval ?? 1;

function signingKey(type, options, alg) {
  const { privateKey } = generateKeyPairSync(type, options);
  const jwk = privateKey.export({ format: 'jwk' });
  return { ...jwk, alg, use: 'sig', kid: `${alg.toLowerCase()}-${randomBytes(6).toString('hex')}` };
}

const grantTypes = ['authorization_code', 'refresh_token'];
if (config.deviceFlow !== false) grantTypes.push('urn:ietf:params:oauth:grant-type:device_code');

// Public native clients (no secret; PKCE is then mandatory in oidc-provider). Native loopback
// redirect URIs match on any port (RFC 8252 section 7.3), so the CLI may pick a free one.
const client = (clientId, alg) => ({
  client_id: clientId,
  application_type: 'native',
  token_endpoint_auth_method: 'none',
  grant_types: grantTypes,
  response_types: ['code'],
  redirect_uris: ['http://127.0.0.1/callback'],
  id_token_signed_response_alg: alg,
});

// The web console: a public browser client (PKCE, no secret) of the server's own origin.
const consoleClient = (redirectUris) => ({
  client_id: 'scs-console',
  application_type: 'web',
  token_endpoint_auth_method: 'none',
  grant_types: ['authorization_code', 'refresh_token'],
  response_types: ['code'],
  redirect_uris: redirectUris,
  post_logout_redirect_uris: redirectUris,
  id_token_signed_response_alg: 'RS256',
});

const provider = new Provider(config.issuer, {
  clients: [client('scs-cli', 'RS256'), client('scs-cli-es256', 'ES256'),
    ...(config.consoleRedirectUris?.length ? [consoleClient(config.consoleRedirectUris)] : [])],
  jwks: {
    keys: [
      signingKey('rsa', { modulusLength: 2048 }, 'RS256'),
      signingKey('ec', { namedCurve: 'P-256' }, 'ES256'),
      // Keys the tests hold the private half of (published, never chosen for signing: no
      // client uses their algorithm).
      ...(config.extraKeys || []),
    ],
  },
  cookies: { keys: [randomBytes(32).toString('hex')] },
  claims: {
    openid: ['sub'],
    email: ['email', 'email_verified'],
    groups: ['groups'],
  },
  // Put the claims of the granted scopes into the ID token itself: the Central API (like
  // kube-apiserver) only ever sees the ID token, never the userinfo endpoint.
  conformIdTokenClaims: false,
  async findAccount(ctx, id) {
    const user = users[id] || {};
    return {
      accountId: id,
      async claims() {
        return {
          sub: id,
          email: user.email || `${id}@example.test`,
          email_verified: true,
          groups: user.groups || [],
        };
      },
    };
  },
  features: {
    devInteractions: { enabled: true },
    deviceFlow: { enabled: config.deviceFlow !== false },
    revocation: { enabled: true },
  },
  // A CLI asks for refresh tokens without offline_access (kubelogin-style); issue them to any
  // client allowed the grant.
  async issueRefreshToken(ctx, clientEntity) {
    return clientEntity.grantTypeAllowed('refresh_token');
  },
  ttl: {
    IdToken: config.idTokenTtl ?? 300,
    AccessToken: config.idTokenTtl ?? 300,
    DeviceCode: 600,
    RefreshToken: 24 * 3600,
    Grant: 24 * 3600,
    Interaction: 600,
    Session: 3600,
  },
  // Grants without an explicit consent screen for repeat logins would hide the consent form
  // from tests; keep the default policy (login, then consent).
});

// The device authorization response carries no polling interval in oidc-provider; announce
// one (RFC 8628 section 3.2) so clients do not have to assume the 5 s default.
provider.use(async (ctx, next) => {
  await next();
  if (ctx.method === 'POST' && ctx.path === '/device/auth' && ctx.body && ctx.body.device_code) {
    ctx.body = { ...ctx.body, interval };
  }
});

provider.on('server_error', (ctx, err) => { console.error('server_error', err); });

const listening = () => {
  console.log(`oidc-provider listening on 127.0.0.1:${config.port}, issuer ${config.issuer}`);
};
const server = config.tls
  ? createServer({ cert: readFileSync(config.tls.cert), key: readFileSync(config.tls.key) },
    provider.callback()).listen(config.port, '127.0.0.1', listening)
  : provider.listen(config.port, '127.0.0.1', listening);

for (const signal of ['SIGTERM', 'SIGINT']) {
  process.on(signal, () => server.close(() => process.exit(0)));
}
