// Every kind the server serves, from aggregated discovery (two requests: /api and /apis),
// so kinds added later and operators' CRDs get pages without new UI code.
import { api } from './api';

const AGGREGATED = 'application/json;g=apidiscovery.k8s.io;v=v2;as=APIGroupDiscoveryList';

export interface ResourceKind {
  group: string; // '' for the core group
  version: string;
  resource: string; // plural, as in the URL
  kind: string;
  namespaced: boolean;
  verbs: string[];
  categories: string[];
}

interface DiscoveryList {
  items: {
    metadata: { name?: string };
    versions: {
      version: string;
      resources: {
        resource: string;
        responseKind: { kind: string };
        scope: 'Namespaced' | 'Cluster';
        verbs: string[];
        categories?: string[];
      }[];
    }[];
  }[];
}

export async function discover(): Promise<ResourceKind[]> {
  const [core, groups] = await Promise.all([
    api<DiscoveryList>('/api', { accept: AGGREGATED }),
    api<DiscoveryList>('/apis', { accept: AGGREGATED }),
  ]);
  const kinds: ResourceKind[] = [];
  for (const group of [...core.items, ...groups.items]) {
    const preferred = group.versions[0];
    if (!preferred) continue;
    for (const r of preferred.resources) {
      if (!r.verbs.includes('list')) continue; // reviews and other create-only kinds
      kinds.push({
        group: group.metadata.name ?? '',
        version: preferred.version,
        resource: r.resource,
        kind: r.responseKind.kind,
        namespaced: r.scope === 'Namespaced',
        verbs: r.verbs,
        categories: r.categories ?? [],
      });
    }
  }
  return kinds.sort((a, b) => a.kind.localeCompare(b.kind) || a.group.localeCompare(b.group));
}

/** The collection URL of a kind, in a namespace when it is namespaced. */
export function collectionPath(k: ResourceKind, namespace?: string): string {
  const base = k.group ? `/apis/${k.group}/${k.version}` : `/api/${k.version}`;
  return k.namespaced && namespace
    ? `${base}/namespaces/${encodeURIComponent(namespace)}/${k.resource}`
    : `${base}/${k.resource}`;
}

export function objectPath(k: ResourceKind, name: string, namespace?: string): string {
  return `${collectionPath(k, namespace)}/${encodeURIComponent(name)}`;
}

export function apiVersion(k: ResourceKind): string {
  return k.group ? `${k.group}/${k.version}` : k.version;
}
