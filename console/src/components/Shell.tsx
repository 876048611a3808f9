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

export function Shell() {
  const { query } = useLocation();
  const [kinds, setKinds] = useState<ResourceKind[] | null>(null);
  const [user, setUser] = useState<UserInfo | null>(null);
  const [namespaces, setNamespaces] = useState<string[] | null>(null);
  const [rules, setRules] = useState<ResourceRule[]>([]);
  const [error, setError] = useState('');
  const namespace = query.get('namespace') ?? sessionStorage.getItem(NS_KEY) ?? '';

  useEffect(() => {
    Promise.all([discover(), whoAmI()])
      .then(([k, u]) => { setKinds(k); setUser(u); })
      .catch((e: ApiError) => setError(e.message));
    api<{ items: { metadata: { name: string } }[] }>('/api/v1/namespaces')
      .then((list) => setNamespaces(list.items.map((n) => n.metadata.name)))
      .catch(() => setNamespaces(null)); // not allowed to list: the switcher is a text field
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
        <NamespaceSwitcher namespaces={namespaces} />
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

function NamespaceSwitcher({ namespaces }: { namespaces: string[] | null }) {
  const { namespace, setNamespace } = useConsole();
  const [typed, setTyped] = useState(namespace);
  if (namespaces) {
    return (
      <label className="switcher">Namespace{' '}
        <select value={namespace} onChange={(e) => setNamespace(e.target.value)} data-testid="namespace">
          <option value="">All namespaces</option>
          {namespaces.map((n) => <option key={n} value={n}>{n}</option>)}
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
