// The status page: every component with its current severity (derived by the status
// controller from the active incidents), the active incidents, and all incidents with their
// updates; live by watch on the status.scs.community kinds.
import type { KObject } from '../../lib/api';
import { useConsole } from '../../lib/context';
import { Problem, served, STATUS, useObjects } from './common';
import './tasks.css';

interface Impact { component: string; impactType: string; severity: number }
interface Update { order: number; displayName?: string; description?: string; createdAt?: string }

function active(incident: KObject, now: number): boolean {
  const spec = (incident.spec ?? {}) as { beganAt?: string | null; endedAt?: string | null };
  const began = spec.beganAt ? Date.parse(spec.beganAt) : -Infinity;
  const ended = spec.endedAt ? Date.parse(spec.endedAt) : Infinity;
  return began <= now && now < ended;
}

/** Severity bands colour the components: operational, maintenance (0), then by value. */
function level(value: number | null | undefined): string {
  if (value === null || value === undefined) return 'operational';
  if (value === 0) return 'maintenance';
  return value >= 75 ? 'outage' : value >= 35 ? 'degraded' : 'minor';
}

export function StatusPage() {
  const { kinds } = useConsole();
  const components = useObjects(served(kinds, STATUS, 'components'));
  const incidents = useObjects(served(kinds, STATUS, 'incidents'));
  if (!served(kinds, STATUS, 'components')) return <p>The status service is not enabled on this server.</p>;
  const now = Date.now();
  const all = [...(incidents.items ?? [])].sort((a, b) =>
    String(b.spec?.beganAt ?? '').localeCompare(String(a.spec?.beganAt ?? '')));
  const current = all.filter((i) => active(i, now));
  const past = all.filter((i) => !active(i, now));
  const names = new Map((components.items ?? []).map((c) => [c.metadata.name, String(c.spec?.displayName ?? '') || c.metadata.name]));
  return (
    <>
      <h1>Status</h1>
      <Problem error={components.error ?? incidents.error} />
      <h2>Components</h2>
      {components.items?.length === 0 && <p>No components are defined.</p>}
      <ul className="components" data-testid="components">
        {(components.items ?? []).map((c) => {
          const status = (c.status ?? {}) as { severity?: number | null; severityName?: string; activeIncidents?: string[] };
          const lvl = level(status.severity);
          return (
            <li key={c.metadata.name} className={`component ${lvl}`} data-component={c.metadata.name} data-severity={status.severity ?? ''}>
              <span className="component-name">{String(c.spec?.displayName ?? '') || c.metadata.name}</span>
              <span className="component-state">{status.severityName || (lvl === 'operational' ? 'Operational' : lvl)}
                {status.severity !== null && status.severity !== undefined && ` (${status.severity})`}</span>
              {!!status.activeIncidents?.length && <span className="help">{status.activeIncidents.length} active incident(s)</span>}
            </li>
          );
        })}
      </ul>

      <h2>Active incidents</h2>
      {current.length === 0 ? <p data-testid="no-active">No active incidents.</p> : (
        <IncidentList incidents={current} names={names} testid="active-incidents" />
      )}
      <h2>Past and planned incidents</h2>
      {past.length === 0 ? <p>None recorded.</p> : <IncidentList incidents={past} names={names} testid="past-incidents" />}
    </>
  );
}

function IncidentList({ incidents, names, testid }: { incidents: KObject[]; names: Map<string, string>; testid: string }) {
  return (
    <ul className="incidents" data-testid={testid}>
      {incidents.map((i) => {
        const spec = (i.spec ?? {}) as { displayName?: string; description?: string; beganAt?: string; endedAt?: string; affects?: Impact[]; updates?: Update[] };
        const updates = [...(spec.updates ?? [])].sort((a, b) => b.order - a.order);
        return (
          <li key={i.metadata.name} data-incident={i.metadata.name}>
            <article aria-labelledby={`${testid}-${i.metadata.name}`}>
              <h3 id={`${testid}-${i.metadata.name}`}>{spec.displayName || i.metadata.name}</h3>
              <p className="help">
                {spec.beganAt ? `since ${new Date(spec.beganAt).toLocaleString()}` : 'start not known'}
                {spec.endedAt && `, until ${new Date(spec.endedAt).toLocaleString()}`}
                {!!spec.affects?.length && ` · affects ${spec.affects.map((a) => `${names.get(a.component) ?? a.component} (${a.impactType}, severity ${a.severity})`).join(', ')}`}
              </p>
              {spec.description && <p>{spec.description}</p>}
              {updates.length > 0 && (
                <ol className="updates" reversed aria-label="Updates">
                  {updates.map((u) => (
                    <li key={u.order} data-update={u.order}>
                      <strong>{u.displayName}</strong>{u.createdAt && <> <time dateTime={u.createdAt}>{new Date(u.createdAt).toLocaleString()}</time></>}
                      {u.description && <p>{u.description}</p>}
                    </li>
                  ))}
                </ol>
              )}
            </article>
          </li>
        );
      })}
    </ul>
  );
}
