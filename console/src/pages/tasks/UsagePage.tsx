// Usage from metering: a tenant's sums over a period (the UsageSummary review) drawn as
// bars per kind and flavor, and its usage records folded into hourly quantities drawn over
// time; both also as tables (the accessible view of the same numbers).
import { useEffect, useMemo, useState } from 'react';
import { api, type ApiError, type KObject } from '../../lib/api';
import { useConsole } from '../../lib/context';
import { collectionPath, type ResourceKind } from '../../lib/discovery';
import { fmt, METERING, Problem, readableTenants, served, TENANCY } from './common';
import { TimeBars, TotalBars, type TimeBucket } from './Charts';
import './tasks.css';

const PERIODS: [string, number][] = [['Last 24 hours', 1], ['Last 7 days', 7], ['Last 30 days', 30]];
const HOUR = 3_600_000;
const PAGE = 500;

interface SummaryItem { kind: string; flavor: string; unit: string; quantity: number }
interface RecordSpec { kind: string; name: string; flavor: string; start: string; end: string; open: boolean;
  quantities: { unit: string; quantity: number; flavor: string }[] }

async function listAll(path: string, selector: string): Promise<RecordSpec[]> {
  const found: RecordSpec[] = [];
  let token = '';
  do {
    const page = await api<{ items: KObject[]; metadata: { continue?: string } }>(
      `${path}?limit=${PAGE}&labelSelector=${encodeURIComponent(selector)}${token ? `&continue=${encodeURIComponent(token)}` : ''}`);
    for (const item of page.items) found.push(item.spec as unknown as RecordSpec);
    token = page.metadata.continue ?? '';
  } while (token);
  return found;
}

/** A tenant's usage records: across all namespaces for who may list them there (a cloud
 * admin), else those of the namespaces the Tenant reports (and the one chosen above). The
 * second list can miss a namespace made since the Tenant was last reconciled, so the page
 * names what it covers. */
async function recordsOf(kind: ResourceKind, tenant: string, namespaces: string[]): Promise<{ rows: RecordSpec[]; covers: string }> {
  const selector = `${METERING}/tenant=${tenant}`;
  try {
    return { rows: await listAll(collectionPath(kind), selector), covers: 'all namespaces' };
  } catch (e) {
    if ((e as ApiError).code !== 403) throw e;
  }
  const lists = await Promise.all(namespaces.map((ns) => listAll(collectionPath(kind, ns), selector).catch(() => [])));
  return { rows: lists.flat(), covers: `namespace${namespaces.length === 1 ? '' : 's'} ${namespaces.join(', ')}` };
}

function hourLabel(ms: number): string {
  return new Date(ms).toLocaleString('en', { month: 'short', day: 'numeric', hour: '2-digit', minute: '2-digit', hour12: false });
}

export function UsagePage() {
  const { kinds, namespace } = useConsole();
  const records = served(kinds, METERING, 'usagerecords');
  const tenantsKind = served(kinds, TENANCY, 'tenants');
  const [tenants, setTenants] = useState<KObject[] | null>(null);
  const [tenant, setTenant] = useState('');
  const [days, setDays] = useState(1);
  const [summary, setSummary] = useState<SummaryItem[] | null>(null);
  const [rows, setRows] = useState<RecordSpec[] | null>(null);
  const [covers, setCovers] = useState('');
  const [unit, setUnit] = useState('');
  const [error, setError] = useState<ApiError | null>(null);
  const [to] = useState(() => Math.ceil(Date.now() / HOUR) * HOUR);
  const from = to - days * 24 * HOUR;

  useEffect(() => {
    if (!tenantsKind) return;
    readableTenants(tenantsKind).then((list) => {
      setTenants(list);
      setTenant((t) => t || list[0]?.metadata.name || '');
    });
  }, [tenantsKind]);

  useEffect(() => {
    const chosen = tenants?.find((t) => t.metadata.name === tenant);
    if (!records || !chosen) return;
    let live = true;
    setSummary(null);
    setRows(null);
    setError(null);
    const load = async () => {
      const review = await api<{ status?: { items?: SummaryItem[] } }>(`/apis/${METERING}/${records.version}/usagesummaries`, {
        method: 'POST',
        body: { apiVersion: `${METERING}/${records.version}`, kind: 'UsageSummary',
          spec: { tenant, from: new Date(from).toISOString(), to: new Date(to).toISOString() } },
      });
      const namespaces = new Set((chosen.status?.namespaces as string[] | undefined) ?? []);
      if (namespace) namespaces.add(namespace);
      const found = await recordsOf(records, tenant, [...namespaces].sort());
      if (!live) return;
      setSummary(review.status?.items ?? []);
      setRows(found.rows.filter((r) => Date.parse(r.end) > from && Date.parse(r.start) < to));
      setCovers(found.covers);
    };
    load().catch((e: ApiError) => live && setError(e));
    return () => { live = false; };
  }, [records, tenants, tenant, from, to, namespace]);

  const units = useMemo(() => [...new Set([...(summary ?? []).map((s) => s.unit),
    ...(rows ?? []).flatMap((r) => r.quantities.map((q) => q.unit))])].sort(), [summary, rows]);
  const shownUnit = units.includes(unit) ? unit : units.includes('instance-hours') ? 'instance-hours' : units[0] ?? '';

  const { buckets, series } = useMemo(() => {
    const byHour = new Map<number, Record<string, number>>();
    const names = new Set<string>();
    for (const r of rows ?? []) {
      const hour = Math.floor(Date.parse(r.start) / HOUR) * HOUR;
      for (const q of r.quantities) {
        if (q.unit !== shownUnit) continue;
        const values = byHour.get(hour) ?? {};
        values[q.flavor] = (values[q.flavor] ?? 0) + q.quantity;
        byHour.set(hour, values);
        names.add(q.flavor);
      }
    }
    const list: TimeBucket[] = [...byHour.entries()].sort(([a], [b]) => a - b)
      .map(([hour, values]) => ({ label: hourLabel(hour), values }));
    return { buckets: list, series: [...names].sort() };
  }, [rows, shownUnit]);

  if (!records) return <p>The metering service is not enabled on this server.</p>;
  if (!tenantsKind) return <p>The tenancy service is not enabled on this server.</p>;
  const items = summary ?? []; // the ledger's rows and the open parts up to now
  const totals = items.filter((s) => s.unit === shownUnit)
    .map((s) => ({ label: `${s.kind}${s.flavor ? ` ${s.flavor}` : ''}`, value: s.quantity }));
  return (
    <>
      <h1>Usage</h1>
      <form className="filter" onSubmit={(e) => e.preventDefault()} aria-label="Usage period">
        <label htmlFor="usage-tenant">Tenant</label>
        <select id="usage-tenant" value={tenant} onChange={(e) => setTenant(e.target.value)}>
          {(tenants ?? []).map((t) => <option key={t.metadata.name} value={t.metadata.name}>{t.metadata.name}</option>)}
        </select>
        <label htmlFor="usage-period">Period</label>
        <select id="usage-period" value={days} onChange={(e) => setDays(Number(e.target.value))}>
          {PERIODS.map(([label, d]) => <option key={d} value={d}>{label}</option>)}
        </select>
        <label htmlFor="usage-unit">Unit</label>
        <select id="usage-unit" value={shownUnit} onChange={(e) => setUnit(e.target.value)} disabled={!units.length}>
          {units.map((u) => <option key={u} value={u}>{u}</option>)}
        </select>
      </form>
      <Problem error={error} />
      {tenants && tenants.length === 0 && <p>You may read no tenant's usage.</p>}
      {tenant && !summary && !error && <p>Loading…</p>}
      {summary && rows && (units.length === 0 ? <p data-testid="no-usage">No metered usage in this period.</p> : (
        <>
          <h2>{shownUnit} per hour</h2>
          <p className="help" data-testid="covers">From the usage records of {covers}.</p>
          <TimeBars title={`${shownUnit} per hour, ${tenant}`} buckets={buckets} series={series} unit={shownUnit} />
          <h2>Totals for the period</h2>
          <p className="help">All of the tenant's namespaces, running objects up to now.</p>
          <TotalBars title={`${shownUnit} by kind and flavor, ${tenant}`} rows={totals} unit={shownUnit} />
          <h2>As a table</h2>
          <table data-testid="usage-table">
            <caption>Usage of {tenant} from {new Date(from).toLocaleString()} to {new Date(to).toLocaleString()} (running objects up to now)</caption>
            <thead><tr><th scope="col">Kind</th><th scope="col">Flavor or type</th><th scope="col">Unit</th><th scope="col">Quantity</th></tr></thead>
            <tbody>
              {items.map((s) => (
                <tr key={`${s.kind} ${s.flavor} ${s.unit}`} data-unit={s.unit} data-quantity={s.quantity}>
                  <td>{s.kind}</td><td>{s.flavor || '–'}</td><td>{s.unit}</td><td>{fmt(s.quantity)}</td>
                </tr>
              ))}
            </tbody>
          </table>
          <table data-testid="hourly-table">
            <caption>{shownUnit} per hour and flavor</caption>
            <thead><tr><th scope="col">Hour</th><th scope="col">Flavor</th><th scope="col">Quantity</th></tr></thead>
            <tbody>
              {buckets.flatMap((b) => Object.entries(b.values).map(([flavor, v]) => (
                <tr key={`${b.label} ${flavor}`} data-quantity={v}><td>{b.label}</td><td>{flavor || '–'}</td><td>{fmt(v)}</td></tr>
              )))}
            </tbody>
          </table>
        </>
      ))}
    </>
  );
}
