// Tenant onboarding (cloud admin): create a Tenant with the fields that matter, then follow
// the onboarding controller's steps live (watch) until Ready, each step's reason and message
// shown. The server validates; its 422 causes appear beside their fields.
import { useRef, useState, type FormEvent, type ReactNode } from 'react';
import { api, type ApiError, type KObject } from '../../lib/api';
import { kindRoute, useConsole } from '../../lib/context';
import { collectionPath, type ResourceKind } from '../../lib/discovery';
import { linkProps, navigate } from '../../lib/router';
import { useObject } from '../../lib/useObject';
import { Problem, ready, served, StepList, TENANCY, useAllowed } from './common';
import './tasks.css';

/** The onboarding controller's steps in order (controllers/tenants.py), then Ready. */
export const ONBOARDING_STEPS = ['NamespaceReady', 'DomainReady', 'AdminsReady', 'QuotasApplied', 'CredentialsReady', 'Ready'];
const SERVICES = ['iaas', 'kaas', 'iam', 'status', 'metering'];
const QUOTAS: [string, string][] = [['namespaces', 'Namespaces'], ['instances', 'Servers'], ['cores', 'vCPUs'],
  ['ramMiB', 'RAM (MiB)'], ['volumes', 'Volumes'], ['gigabytes', 'Block storage (GiB)'], ['clusters', 'Clusters']];

/** What the page created last, shown at once while the watch starts. */
const created = new Map<string, KObject>();

export function TenantOnboarding({ name }: { name?: string }) {
  const { kinds } = useConsole();
  const tenants = served(kinds, TENANCY, 'tenants');
  const mayCreate = useAllowed(tenants ? { verb: 'create', kind: tenants } : null);
  if (!tenants) return <p>The tenancy service is not enabled on this server.</p>;
  if (name) return <FollowTenant kind={tenants} name={name} />;
  if (mayCreate === null) return <p>Loading…</p>;
  if (!mayCreate) return <><h1>Tenant onboarding</h1><p role="alert">Only a cloud administrator may onboard tenants.</p></>;
  return <OnboardingForm kind={tenants} />;
}

interface Draft {
  name: string;
  displayName: string;
  contact: string;
  admins: string;
  services: string[];
  quotas: Record<string, string>;
}

function OnboardingForm({ kind }: { kind: ResourceKind }) {
  const [draft, setDraft] = useState<Draft>({ name: '', displayName: '', contact: '', admins: '', services: ['iaas', 'iam'], quotas: {} });
  const [errors, setErrors] = useState<Record<string, string>>({});
  const [problem, setProblem] = useState('');
  const [busy, setBusy] = useState(false);
  const set = (patch: Partial<Draft>) => setDraft({ ...draft, ...patch });

  const submit = async (e: FormEvent) => {
    e.preventDefault();
    setBusy(true);
    setErrors({});
    setProblem('');
    const quotas = Object.fromEntries(Object.entries(draft.quotas).filter(([, v]) => v.trim() !== '')
      .map(([k, v]) => [k, Number(v)]));
    const body = {
      apiVersion: `${TENANCY}/${kind.version}`, kind: 'Tenant', metadata: { name: draft.name.trim() },
      spec: {
        displayName: draft.displayName, contact: draft.contact, quotas, enabledServices: draft.services,
        admins: draft.admins.split(/[\s,]+/).filter(Boolean),
      },
    };
    try {
      const tenant = await api<KObject>(collectionPath(kind), { method: 'POST', body });
      created.set(tenant.metadata.name, tenant);
      navigate(`/console/tasks/onboarding/${encodeURIComponent(tenant.metadata.name)}`);
    } catch (err) {
      const failure = err as ApiError;
      const byField: Record<string, string> = {};
      for (const c of failure.causes ?? []) if (c.field) byField[c.field] = [byField[c.field], c.message].filter(Boolean).join('; ');
      setErrors(byField);
      setProblem(failure.message);
    } finally {
      setBusy(false);
    }
  };

  const field = (id: string, label: string, path: string, input: ReactNode, help = '') => (
    <div className="field">
      <label htmlFor={id}>{label}</label>
      {input}
      {help && <span className="help" id={`${id}-help`}>{help}</span>}
      {errors[path] && <span className="field-error" id={`${id}-error`}>{errors[path]}</span>}
    </div>
  );
  const described = (id: string, path: string, help = true) => ({
    id, 'aria-invalid': errors[path] ? true : undefined,
    'aria-describedby': [help ? `${id}-help` : '', errors[path] ? `${id}-error` : ''].filter(Boolean).join(' ') || undefined,
  });

  return (
    <>
      <h1>Onboard a tenant</h1>
      <p>Creates the Tenant; the onboarding controller then sets up its namespace, identity
        domain, admins, quotas and credentials, step by step.</p>
      <form className="resource-form" onSubmit={submit} noValidate data-testid="onboarding-form">
        {field('t-name', 'Name', 'metadata.name',
          <input {...described('t-name', 'metadata.name')} value={draft.name} required onChange={(e) => set({ name: e.target.value })} />,
          'A DNS label: also the name of its first namespace.')}
        {field('t-display', 'Display name', 'spec.displayName',
          <input {...described('t-display', 'spec.displayName', false)} value={draft.displayName} required onChange={(e) => set({ displayName: e.target.value })} />)}
        {field('t-contact', 'Contact e-mail', 'spec.contact',
          <input {...described('t-contact', 'spec.contact', false)} type="email" value={draft.contact} onChange={(e) => set({ contact: e.target.value })} />)}
        {field('t-admins', 'Admins', 'spec.admins',
          <input {...described('t-admins', 'spec.admins')} value={draft.admins} onChange={(e) => set({ admins: e.target.value })} />,
          'User names or e-mails, separated by commas: they become the tenant admins.')}
        <fieldset>
          <legend>Enabled services</legend>
          {SERVICES.map((s) => (
            <label key={s} className="inline">
              <input type="checkbox" checked={draft.services.includes(s)}
                onChange={(e) => set({ services: e.target.checked ? [...draft.services, s] : draft.services.filter((x) => x !== s) })} /> {s}
            </label>
          ))}
          {errors['spec.enabledServices'] && <span className="field-error">{errors['spec.enabledServices']}</span>}
        </fieldset>
        <fieldset>
          <legend>Quotas (empty: the operator's default)</legend>
          <div className="quota-grid">
            {QUOTAS.map(([key, label]) => field(`t-q-${key}`, label, `spec.quotas.${key}`,
              <input {...described(`t-q-${key}`, `spec.quotas.${key}`, false)} type="number" min={0} inputMode="numeric"
                value={draft.quotas[key] ?? ''} onChange={(e) => set({ quotas: { ...draft.quotas, [key]: e.target.value } })} />))}
          </div>
        </fieldset>
        <Problem error={problem} />
        <div className="actions"><button type="submit" className="primary" disabled={busy}>Create tenant</button></div>
      </form>
    </>
  );
}

function FollowTenant({ kind, name }: { kind: ResourceKind; name: string }) {
  const live = useObject(kind, name, '');
  const tenant = live.object ?? created.get(name) ?? null;
  const history = useRef<string[]>([]); // the Ready states this page has shown, in order
  if (live.error) return <Problem error={live.error} />;
  if (!tenant) return <p>Loading…</p>;
  const isReady = ready(tenant)?.status === 'True';
  const shown = ready(tenant)?.status ?? 'Unknown';
  if (history.current[history.current.length - 1] !== shown) history.current.push(shown);
  const status = tenant.status ?? {};
  const namespaces = (status.namespaces as string[] | undefined) ?? [];
  return (
    <>
      <h1>Onboarding tenant {name}</h1>
      <p role="status" data-testid="onboarding-state" data-ready={isReady} data-history={history.current.join(',')}>
        {isReady ? 'The tenant is ready.' : 'Onboarding… the steps update as the controller works.'}</p>
      <StepList label="Onboarding steps" conditions={tenant.status?.conditions ?? []} order={ONBOARDING_STEPS} />
      <dl className="facts">
        <dt>Namespaces</dt><dd>{namespaces.join(', ') || '–'}</dd>
        <dt>Identity</dt><dd>{String(status.identity ?? '') || '–'}</dd>
        <dt>Domain</dt><dd>{String(status.domainID ?? '') || '–'}</dd>
      </dl>
      <p>
        <a {...linkProps(`/console/tasks/tenants/${encodeURIComponent(name)}`)}>Tenant overview</a>{' · '}
        <a {...linkProps(kindRoute(kind, `/${encodeURIComponent(name)}`))}>Tenant object</a>{' · '}
        <a {...linkProps('/console/tasks/onboarding')}>Onboard another tenant</a>
      </p>
    </>
  );
}
