// The task pages' routes (spliced into ROUTES in src/routes.tsx). Each page is its own
// lazily loaded chunk: the first load of the console does not pay for them.
import { lazy, Suspense, type ReactNode } from 'react';

const TenantOnboarding = lazy(() => import('./TenantOnboarding').then((m) => ({ default: m.TenantOnboarding })));
const TenantOverview = lazy(() => import('./TenantOverview').then((m) => ({ default: m.TenantOverview })));
const ServerPage = lazy(() => import('./ServerPage').then((m) => ({ default: m.ServerPage })));
const ClusterPage = lazy(() => import('./ClusterPage').then((m) => ({ default: m.ClusterPage })));
const StatusPage = lazy(() => import('./StatusPage').then((m) => ({ default: m.StatusPage })));
const UsagePage = lazy(() => import('./UsagePage').then((m) => ({ default: m.UsagePage })));

const load = (page: ReactNode) => <Suspense fallback={<p>Loading…</p>}>{page}</Suspense>;

export const TASK_ROUTES: [string, (params: Record<string, string>) => ReactNode][] = [
  ['/console/tasks/onboarding', () => load(<TenantOnboarding />)],
  ['/console/tasks/onboarding/:name', (p) => load(<TenantOnboarding key={p.name} name={p.name} />)],
  ['/console/tasks/tenants', () => load(<TenantOverview />)],
  ['/console/tasks/tenants/:name', (p) => load(<TenantOverview key={p.name} name={p.name} />)],
  ['/console/tasks/servers', () => load(<ServerPage />)],
  ['/console/tasks/servers/:name', (p) => load(<ServerPage key={p.name} name={p.name} />)],
  ['/console/tasks/clusters', () => load(<ClusterPage />)],
  ['/console/tasks/clusters/:name', (p) => load(<ClusterPage key={p.name} name={p.name} />)],
  ['/console/tasks/status', () => load(<StatusPage />)],
  ['/console/tasks/usage', () => load(<UsagePage />)],
];
