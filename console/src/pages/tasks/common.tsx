// What the task pages share: lists kept current by watch, the tenants a user may read, the
// condition and quota views; and (re-exported from access.ts) which services are served and
// what the user may do. The generic pages know nothing of these.
import { useEffect, useState } from 'react';
import { api, watch, type ApiError, type Condition, type KObject } from '../../lib/api';
import { collectionPath, type ResourceKind } from '../../lib/discovery';
import { rulesIn } from '../../lib/rbac';
import { TENANCY } from './access';

export * from './access';

/** The tenants the user may read: every Tenant for who may list them (a cloud admin), else
 * the ones the rules review names (a tenant admin may get its own Tenants by name). */
export async function readableTenants(tenants: ResourceKind): Promise<KObject[]> {
  try {
    return (await api<{ items: KObject[] }>(collectionPath(tenants))).items;
  } catch {
    const rules = await rulesIn('default').catch(() => []);
    const names = [...new Set(rules.filter((r) => r.verbs.includes('get') && r.apiGroups?.includes(TENANCY)
      && r.resources?.includes('tenants')).flatMap((r) => r.resourceNames ?? []))].sort();
    const found = await Promise.all(names.map((n) =>
      api<KObject>(`${collectionPath(tenants)}/${encodeURIComponent(n)}`).catch(() => null)));
    return found.filter((t): t is KObject => t !== null);
  }
}

/** Objects of a kind in one namespace (or cluster-wide), kept current by a watch; a watch
 * the user may not open leaves the list as first read. */
export function useObjects(kind: ResourceKind | undefined, namespace = '') {
  const [items, setItems] = useState<KObject[] | null>(null);
  const [error, setError] = useState<ApiError | null>(null);
  useEffect(() => {
    if (!kind) return undefined;
    const abort = new AbortController();
    const byUid = new Map<string, KObject>();
    const show = () => setItems([...byUid.values()].sort((a, b) => a.metadata.name.localeCompare(b.metadata.name)));
    const path = collectionPath(kind, namespace);
    const run = async () => {
      while (!abort.signal.aborted) {
        const list = await api<{ items: KObject[]; metadata: { resourceVersion?: string } }>(path, { signal: abort.signal });
        byUid.clear();
        for (const item of list.items) byUid.set(item.metadata.uid ?? item.metadata.name, item);
        show();
        if (!kind.verbs.includes('watch')) return;
        await watch<KObject>(`${path}?watch=1&resourceVersion=${list.metadata.resourceVersion ?? ''}`,
          'application/json', abort.signal, (event) => {
            const uid = event.object.metadata?.uid ?? event.object.metadata?.name;
            if (event.type === 'DELETED') byUid.delete(uid);
            else if (event.type === 'ADDED' || event.type === 'MODIFIED') byUid.set(uid, event.object);
            else return;
            show();
          });
      }
    };
    run().catch((e: ApiError & { name?: string }) => {
      if (e.name !== 'AbortError' && !abort.signal.aborted) setError(e);
    });
    return () => abort.abort();
  }, [kind, namespace]);
  return { items, error };
}

export function ready(obj: KObject | null | undefined): Condition | undefined {
  return obj?.status?.conditions?.find((c) => c.type === 'Ready');
}

/** A condition's state in words and as a CSS class: done, failed, waiting. */
export function stateOf(c: Condition | undefined): 'done' | 'failed' | 'waiting' {
  if (!c) return 'waiting';
  if (c.status === 'True') return 'done';
  return c.status === 'False' ? 'failed' : 'waiting';
}

const STATE_WORDS = { done: 'done', failed: 'not yet', waiting: 'waiting' };

/** Conditions as a numbered step list (onboarding's steps, a server's or cluster's state):
 * the expected order first, then whatever else the controller reports. */
export function StepList({ conditions, order = [], label }: { conditions: Condition[]; order?: string[]; label: string }) {
  const byType = new Map(conditions.map((c) => [c.type, c]));
  const types = [...order, ...conditions.map((c) => c.type).filter((t) => !order.includes(t))];
  return (
    <ol className="steps" aria-label={label} data-testid="steps">
      {types.map((type) => {
        const c = byType.get(type);
        const state = stateOf(c);
        return (
          <li key={type} className={`step ${state}`} data-condition={type} data-status={c?.status ?? 'Unknown'}>
            <span className="step-mark" aria-hidden="true">{state === 'done' ? '✓' : state === 'failed' ? '!' : '…'}</span>
            <strong>{type}</strong> <span className="sr-only">{STATE_WORDS[state]}</span>
            {c?.reason && <span className="chip">{c.reason}</span>}
            {c?.lastTransitionTime && <time dateTime={c.lastTransitionTime}> {new Date(c.lastTransitionTime).toLocaleTimeString()}</time>}
            {c?.message && <span className="step-message">{c.message}</span>}
          </li>
        );
      })}
    </ol>
  );
}

/** A quantity against its limit as a labelled bar (`<meter>`-like, drawn so it shows in
 * every browser the same way; the numbers are in the text for screen readers). */
export function UsageBar({ label, used, limit, unit = '' }: { label: string; used: number; limit?: number | null; unit?: string }) {
  const has = typeof limit === 'number' && limit > 0;
  const share = has ? Math.min(1, used / (limit as number)) : 0;
  const level = share >= 1 ? 'full' : share >= 0.8 ? 'high' : 'ok';
  const text = has ? `${fmt(used)} of ${fmt(limit as number)}${unit}` : `${fmt(used)}${unit} (no limit set)`;
  return (
    <div className="usage-bar" data-quota={label} data-used={used} data-limit={has ? limit : ''}>
      <span className="usage-label">{label}</span>
      <span className="bar" role="meter" aria-label={label} aria-valuemin={0} aria-valuemax={has ? (limit as number) : used || 1}
        aria-valuenow={used} aria-valuetext={text}>
        <span className={`fill ${level}`} style={{ width: `${Math.round(share * 100)}%` }} />
      </span>
      <span className="usage-text">{text}</span>
    </div>
  );
}

export function fmt(n: number): string {
  return Number.isInteger(n) ? n.toLocaleString('en') : n.toLocaleString('en', { maximumFractionDigits: 3 });
}

export function Problem({ error }: { error: { message: string } | null | string }) {
  if (!error) return null;
  return <p role="alert" className="error">{typeof error === 'string' ? error : error.message}</p>;
}
