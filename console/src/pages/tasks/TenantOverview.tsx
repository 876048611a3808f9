// Tenant overview (tenant admin, cloud admin): quota used versus limit as bars, the people
// (admins, IAM users and groups), and recent changes in the tenant's namespaces.
import { useEffect, useState } from 'react';
import { api, type ApiError, type Condition, type KObject } from '../../lib/api';
import { useConsole } from '../../lib/context';
import { collectionPath, type ResourceKind } from '../../lib/discovery';
import { linkProps, navigate } from '../../lib/router';
import { fmt, IAAS, IAM, KAAS, Problem, readableTenants, ready, served, TENANCY, UsageBar } from './common';
import { used, type TenantObjects, type Used } from './quota';
import './tasks.css';

const REFRESH_MS = 5000;
const BARS: [keyof Used, string, string][] = [['namespaces', 'Namespaces', ''], ['instances', 'Servers', ''],
  ['cores', 'vCPUs', ''], ['ramMiB', 'RAM', ' MiB'], ['volumes', 'Volumes', ''], ['gigabytes', 'Block storage', ' GiB'],
  ['floatingIPs', 'Floating IPs', ''], ['networks', 'Networks', ''], ['clusters', 'Clusters', '']];

/** Without a name: the tenants the user may read; one of them is shown. */
export function TenantOverview({ name }: { name?: string }) {
  const { kinds } = useConsole();
  const tenants = served(kinds, TENANCY, 'tenants');
  const [choices, setChoices] = useState<string[] | null>(null);
  useEffect(() => {
    if (!tenants || name) return;
    readableTenants(tenants).then((list) => {
      const names = list.map((t) => t.metadata.name);
      if (names.length === 1) navigate(`/console/tasks/tenants/${encodeURIComponent(names[0])}`, true);
      else setChoices(names);
    });
  }, [tenants, name]);
  if (!tenants) return <p>The tenancy service is not enabled on this server.</p>;
  if (name) return <Overview kind={tenants} name={name} />;
  if (!choices) return <p>Loading…</p>;
  return (
    <>
      <h1>Tenants</h1>
      {choices.length === 0 ? <p>You administer no tenant.</p> : (
        <ul data-testid="tenant-choices">
          {choices.map((t) => <li key={t}><a {...linkProps(`/console/tasks/tenants/${encodeURIComponent(t)}`)}>{t}</a></li>)}
        </ul>
      )}
    </>
  );
}

async function listIn(kind: ResourceKind | undefined, namespaces: string[]): Promise<KObject[]> {
  if (!kind) return [];
  const lists = await Promise.all(namespaces.map((ns) =>
    api<{ items: KObject[] }>(collectionPath(kind, ns)).then((l) => l.items, () => [] as KObject[])));
  return lists.flat();
}

interface Snapshot {
  tenant: KObject;
  objects: TenantObjects;
  users: number;
  groups: number;
}

function Overview({ kind, name }: { kind: ResourceKind; name: string }) {
  const { kinds } = useConsole();
  const [shot, setShot] = useState<Snapshot | null>(null);
  const [error, setError] = useState<ApiError | null>(null);

  useEffect(() => {
    let live = true;
    const load = async () => {
      const tenant = await api<KObject>(`${collectionPath(kind)}/${encodeURIComponent(name)}`);
      const namespaces = (tenant.status?.namespaces as string[] | undefined) ?? [];
      const of = (group: string, resource: string) => listIn(served(kinds, group, resource), namespaces);
      const [servers, clusters, volumes, floatingIPs, networks, users, groups] = await Promise.all([
        of(IAAS, 'servers'), of(KAAS, 'clusters'), of(IAAS, 'volumes'), of(IAAS, 'floatingips'),
        of(IAAS, 'networks'), of(IAM, 'users'), of(IAM, 'groups')]);
      if (live) {
        setShot({ tenant, objects: { namespaces, servers, clusters, volumes, floatingIPs, networks }, users: users.length, groups: groups.length });
        setError(null);
      }
    };
    const tick = () => load().catch((e: ApiError) => live && setError(e));
    tick();
    const timer = window.setInterval(tick, REFRESH_MS);
    return () => { live = false; clearInterval(timer); };
  }, [kind, name, kinds]);

  if (!shot) return error ? <Problem error={error} /> : <p>Loading…</p>;
  const { tenant, objects } = shot;
  const spec = (tenant.spec ?? {}) as { displayName?: string; admins?: string[]; quotas?: Record<string, number>; enabledServices?: string[] };
  const quotas = spec.quotas ?? {};
  const counted = used(objects);
  const apiUsage = (tenant.status?.apiUsage ?? null) as { objects?: number; bytes?: number } | null;
  const state = ready(tenant);
  return (
    <>
      <h1>{spec.displayName || name} <small>tenant {name}</small></h1>
      <p data-testid="tenant-ready">{state?.status === 'True' ? 'Ready' : `Not ready: ${state?.message ?? 'onboarding'}`}
        {' · '}services: {(spec.enabledServices ?? []).join(', ') || 'none'}</p>
      <Problem error={error} />

      <h2>Quota used versus limit</h2>
      <p className="help">Counted from the tenant's objects as admission counts them; the cloud enforces the limits.</p>
      <div className="usage-bars" data-testid="quota-bars">
        {BARS.map(([key, label, unit]) => <UsageBar key={key} label={label} used={counted[key]} limit={quotas[key]} unit={unit} />)}
        {apiUsage && <UsageBar label="API objects" used={apiUsage.objects ?? 0} limit={quotas.apiObjects} />}
        {apiUsage && <UsageBar label="API storage" used={Math.round((apiUsage.bytes ?? 0) / 1024)} unit=" KiB"
          limit={quotas.apiBytes ? Math.round(quotas.apiBytes / 1024) : undefined} />}
      </div>

      <h2>People</h2>
      <dl className="facts" data-testid="people">
        <dt>Admins</dt><dd data-count={spec.admins?.length ?? 0}>{fmt(spec.admins?.length ?? 0)} ({(spec.admins ?? []).join(', ') || 'none'})</dd>
        <dt>IAM users</dt><dd data-count={shot.users}>{fmt(shot.users)}</dd>
        <dt>IAM groups</dt><dd data-count={shot.groups}>{fmt(shot.groups)}</dd>
        <dt>Namespaces</dt><dd>{objects.namespaces.join(', ') || 'none'}</dd>
      </dl>

      <h2>Recent changes</h2>
      <RecentChanges tenant={tenant} objects={objects} />
    </>
  );
}

interface Change {
  what: string;
  condition: Condition;
}

/** The server keeps no Events: the latest condition transitions of the tenant and its
 * servers and clusters stand in for them. */
function RecentChanges({ tenant, objects }: { tenant: KObject; objects: TenantObjects }) {
  const changes: Change[] = [];
  const collect = (what: string, obj: KObject) => {
    for (const c of obj.status?.conditions ?? []) if (c.lastTransitionTime) changes.push({ what, condition: c });
  };
  collect(`Tenant ${tenant.metadata.name}`, tenant);
  for (const s of objects.servers) collect(`Server ${s.metadata.namespace}/${s.metadata.name}`, s);
  for (const c of objects.clusters) collect(`Cluster ${c.metadata.namespace}/${c.metadata.name}`, c);
  changes.sort((a, b) => (b.condition.lastTransitionTime ?? '').localeCompare(a.condition.lastTransitionTime ?? ''));
  if (!changes.length) return <p>No changes recorded yet.</p>;
  return (
    <table data-testid="recent">
      <caption className="sr-only">Latest condition changes</caption>
      <thead><tr><th scope="col">When</th><th scope="col">Object</th><th scope="col">Condition</th><th scope="col">Reason</th></tr></thead>
      <tbody>
        {changes.slice(0, 10).map((ch, i) => (
          <tr key={i}>
            <td><time dateTime={ch.condition.lastTransitionTime}>{new Date(ch.condition.lastTransitionTime!).toLocaleString()}</time></td>
            <td>{ch.what}</td>
            <td>{ch.condition.type}={ch.condition.status}</td>
            <td>{ch.condition.reason}</td>
          </tr>
        ))}
      </tbody>
    </table>
  );
}
