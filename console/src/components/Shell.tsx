// The logged-in frame: header (who am I, namespace switcher, logout), the navigation of
// every kind the user may list, and the routed page.
import { useCallback, useEffect, useMemo, useState } from 'react';
import { api, ApiError } from '../lib/api';
import { ConsoleContext, kindRoute, useConsole, type ConsoleState } from '../lib/context';
import { discover, type ResourceKind } from '../lib/discovery';
import { allows, forgetAccess, rulesIn, type ResourceRule } from '../lib/rbac';
import { linkProps, navigate, useLocation } from '../lib/router';
import { logout } from '../lib/session';
import { whoAmI, type UserInfo } from '../lib/whoami';
import { Routed } from '../routes';
import { TaskNav } from '../pages/tasks/TaskNav';

const NS_KEY = 'scs-console.namespace';
const TENANCY = 'tenancy.scs.community';

interface Choices {
  names: string[];
  all: boolean; // may list across namespaces
}

/** The namespaces to offer: all of them for whoever may list namespaces; for a tenant
 * admin, the namespaces of the tenants the rules review names (Tenant.status.namespaces);
 * null when neither is known (the switcher is then a text field). */
async function namespaceChoices(): Promise<Choices | null> {
  try {
    const list = await api<{ items: { metadata: { name: string } }[] }>('/api/v1/namespaces');
    return { names: list.items.map((n) => n.metadata.name), all: true };
  } catch {
    const rules = await rulesIn('default').catch(() => []);
    const tenants = rules.filter((r) => r.verbs.includes('get') && r.apiGroups?.includes(TENANCY)
      && r.resources?.includes('tenants')).flatMap((r) => r.resourceNames ?? []);
    if (!tenants.length) return null;
    const owned = await Promise.all(tenants.map((t) =>
      api<{ status?: { namespaces?: string[] } }>(`/apis/${TENANCY}/v1alpha1/tenants/${encodeURIComponent(t)}`)
        .then((tenant) => tenant.status?.namespaces ?? [], () => [])));
    return { names: [...new Set(owned.flat())].sort(), all: false };
  }
}

export function Shell() {
  const { query } = useLocation();
  const [kinds, setKinds] = useState<ResourceKind[] | null>(null);
  const [user, setUser] = useState<UserInfo | null>(null);
  const [namespaces, setNamespaces] = useState<Choices | null | undefined>(undefined); // undefined: asking
  const [rules, setRules] = useState<ResourceRule[]>([]);
  const [error, setError] = useState('');
  const chosen = query.get('namespace') ?? sessionStorage.getItem(NS_KEY) ?? '';
  // Without the right to list across namespaces, "all namespaces" is not a choice.
  const namespace = chosen || (namespaces && !namespaces.all ? namespaces.names[0] ?? '' : '');

  useEffect(() => {
    Promise.all([discover(), whoAmI()])
      .then(([k, u]) => { setKinds(k); setUser(u); })
      .catch((e: ApiError) => setError(e.message));
    namespaceChoices().then(setNamespaces);
  }, []);

  useEffect(() => {
    rulesIn(namespace || 'default').then(setRules, () => setRules([]));
  }, [namespace]);

  const setNamespace = useCallback((ns: string) => {
    sessionStorage.setItem(NS_KEY, ns);
    const url = new URL(window.location.href);
    if (ns) url.searchParams.set('namespace', ns);
    else url.searchParams.delete('namespace');
    navigate(url.pathname + url.search, true);
  }, []);

  const state = useMemo<ConsoleState | null>(() => (kinds && user
    ? { kinds, user, namespace, setNamespace } : null), [kinds, user, namespace, setNamespace]);

  const signOut = async () => {
    forgetAccess();
    await logout();
    navigate('/console/', true);
  };

  if (error) return <main className="centered"><p role="alert" className="error">{error}</p>
    <button type="button" onClick={signOut}>Sign out</button></main>;
  if (!state) return <main className="centered"><p>Loading…</p></main>;

  // system:masters passes every check without a rule, so its rules review lists none.
  const everything = user!.groups.includes('system:masters');
  const visible = kinds!.filter((k) => everything || allows(rules, 'list', k));
  return (
    <ConsoleContext.Provider value={state}>
      <header className="top">
        <a className="brand" {...linkProps('/console/')}>SCS Console</a>
        <NamespaceSwitcher choices={namespaces} refresh={() => namespaceChoices().then(setNamespaces)} />
        <span className="whoami" data-testid="whoami" title={user!.groups.join(', ')}>{user!.username}</span>
        <button type="button" onClick={signOut}>Sign out</button>
      </header>
      <div className="frame">
        <nav aria-label="Kinds">
          <TaskNav />
          <KindNav kinds={visible} namespace={namespace} />
        </nav>
        <main id="content"><Routed /></main>
      </div>
    </ConsoleContext.Provider>
  );
}

function NamespaceSwitcher({ choices, refresh }: { choices: Choices | null | undefined; refresh: () => void }) {
  const { namespace, setNamespace } = useConsole();
  const [typed, setTyped] = useState(namespace);
  if (choices === undefined) return <span className="switcher">Namespace {namespace}</span>;
  if (choices) {
    const names = choices.names.includes(namespace) || !namespace ? choices.names : [namespace, ...choices.names];
    return (
      <label className="switcher">Namespace{' '}
        <select value={namespace} onChange={(e) => setNamespace(e.target.value)} onFocus={refresh}
          data-testid="namespace">
          {choices.all && <option value="">All namespaces</option>}
          {names.map((n) => <option key={n} value={n}>{n}</option>)}
        </select>
      </label>
    );
  }
  return (
    <form className="switcher" onSubmit={(e) => { e.preventDefault(); setNamespace(typed.trim()); }}>
      <label htmlFor="ns-input">Namespace</label>
      <input id="ns-input" value={typed} onChange={(e) => setTyped(e.target.value)} data-testid="namespace" />
      <button type="submit">Switch</button>
    </form>
  );
}

function KindNav({ kinds, namespace }: { kinds: ResourceKind[]; namespace: string }) {
  const groups = new Map<string, ResourceKind[]>();
  for (const k of kinds) groups.set(k.group || 'core', [...(groups.get(k.group || 'core') ?? []), k]);
  return (
    <>
      {[...groups.entries()].sort(([a], [b]) => a.localeCompare(b)).map(([group, list]) => (
        <section key={group}>
          <h2>{group}</h2>
          <ul>
            {list.map((k) => (
              <li key={k.resource}><a {...linkProps(kindRoute(k, '', namespace))}>{k.kind}</a></li>
            ))}
          </ul>
        </section>
      ))}
    </>
  );
}
