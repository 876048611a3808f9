// The console's pages by URL. To add a page: write it in pages/, add a line to ROUTES
// (first match wins), and link to it from the navigation in components/Shell.tsx.
import type { ReactNode } from 'react';
import { findKind, useConsole } from './lib/context';
import { useLocation } from './lib/router';
import { HomePage } from './pages/HomePage';
import { ResourceDetail } from './pages/ResourceDetail';
import { ResourceForm } from './pages/ResourceForm';
import { ResourceList } from './pages/ResourceList';
import { TASK_ROUTES } from './pages/tasks/routes';
import type { ResourceKind } from './lib/discovery';

type Params = Record<string, string>;
type Page = (params: Params, kind: ResourceKind | undefined) => ReactNode;

const KIND = '/console/r/:group/:version/:resource';
const ROUTES: [string, Page][] = [
  ['/console/', () => <HomePage />],
  ...TASK_ROUTES,
  [`${KIND}/_new`, (_p, k) => k && <ResourceForm kind={k} />],
  [`${KIND}/:name/_edit`, (p, k) => k && <ResourceForm kind={k} name={p.name} />],
  [`${KIND}/:name`, (p, k) => k && <ResourceDetail kind={k} name={p.name} />],
  [KIND, (_p, k) => k && <ResourceList kind={k} />],
];

function match(pattern: string, path: string): Params | null {
  const want = pattern.split('/');
  const got = path.split('/');
  if (want.length !== got.length) return null;
  const params: Params = {};
  for (let i = 0; i < want.length; i++) {
    if (want[i].startsWith(':')) params[want[i].slice(1)] = decodeURIComponent(got[i]);
    else if (want[i] !== got[i]) return null;
  }
  return params;
}

export function Routed() {
  const { path } = useLocation();
  const { kinds } = useConsole();
  for (const [pattern, page] of ROUTES) {
    const params = match(pattern, path);
    if (!params) continue;
    const kind = params.resource ? findKind(kinds, params.group, params.version, params.resource) : undefined;
    const shown = page(params, kind);
    if (shown) return shown;
  }
  return <><h1>Not found</h1><p>No page at {path}, or the server does not serve that kind.</p></>;
}
