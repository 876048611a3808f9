// Sign in: one button per OpenID issuer the server trusts, and (for local use) pasting the
// bootstrap admin's token once. At /console/t/<tenant>/ the tenant's own IdPs come first.
import { useState, type FormEvent } from 'react';
import { loginWithIssuer, loginWithToken, type ConsoleConfig } from '../lib/session';

export function LoginPage({ config, error }: { config: ConsoleConfig; error: string }) {
  const [token, setToken] = useState('');
  const [problem, setProblem] = useState(error);
  const tenantIdps = config.issuers.filter((i) => i.tenant);
  const operatorIdps = config.issuers.filter((i) => !i.tenant);

  const submit = (e: FormEvent) => {
    e.preventDefault();
    if (token.trim()) loginWithToken(token);
  };

  return (
    <main className="centered login">
      <h1>SCS Console</h1>
      {problem && <p role="alert" className="error">{problem}</p>}
      {tenantIdps.length > 0 && (
        <section aria-labelledby="tenant-sso">
          <h2 id="tenant-sso">Sign in to {config.tenant}</h2>
          {tenantIdps.map((issuer) => (
            <button key={issuer.issuer} type="button" className="primary"
              onClick={() => loginWithIssuer(issuer).catch((e: Error) => setProblem(e.message))}>
              Sign in with {issuer.name}
            </button>
          ))}
        </section>
      )}
      {operatorIdps.length > 0 && (
        <section aria-labelledby="sso">
          <h2 id="sso">Sign in with your organisation</h2>
          {operatorIdps.map((issuer) => (
            <button key={issuer.issuer} type="button" className="primary"
              onClick={() => loginWithIssuer(issuer).catch((e: Error) => setProblem(e.message))}>
              Sign in with {issuer.name}
            </button>
          ))}
        </section>
      )}
      {config.tokenLogin && (
        <form onSubmit={submit} aria-labelledby="token-login">
          <h2 id="token-login">Sign in with a token</h2>
          <label htmlFor="token">Bearer token (kept in this tab only)</label>
          <input id="token" type="password" autoComplete="off" value={token}
            onChange={(e) => setToken(e.target.value)} />
          <button type="submit">Sign in</button>
        </form>
      )}
    </main>
  );
}
