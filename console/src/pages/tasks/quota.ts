// A tenant's quota use, counted from its objects the way the server's admission counts it
// (auth/cluster_quota.py: a server's flavor, else its resources; a cluster's non-hosted
// control plane as SCS-2V-4 nodes and every pool at autoscaling.max, else replicas). The
// server enforces the quotas; this only shows how close the tenant is.
import type { KObject } from '../../lib/api';

const FLAVOR = /^SCS-([1-9][0-9]*)[LVTC]i?-([0-9]+(?:\.[0-9]+)?)u?o?(?:-(?:[1-9][0-9]*x)?[0-9]+[nhsp]?)?(?:_[A-Za-z0-9_.-]+)?$/;
const CONTROL_PLANE_FLAVOR = 'SCS-2V-4';

export interface Used {
  namespaces: number;
  instances: number;
  cores: number;
  ramMiB: number;
  volumes: number;
  gigabytes: number;
  floatingIPs: number;
  networks: number;
  clusters: number;
}

/** vCPUs and RAM (MiB) an SCS flavor name states (scs-0100), null for other names. */
export function flavorSize(name: string): { cores: number; ramMiB: number } | null {
  const m = FLAVOR.exec(name);
  return m ? { cores: Number(m[1]), ramMiB: Math.round(Number(m[2]) * 1024) } : null;
}

function nodes(count: number, flavor: string) {
  const size = flavorSize(flavor);
  return size ? { cores: count * size.cores, ramMiB: count * size.ramMiB } : { cores: 0, ramMiB: 0 };
}

type Obj = Record<string, any>;

export function serverDemand(server: KObject) {
  const spec: Obj = server.spec ?? {};
  const flavor = String((server.status as Obj | undefined)?.flavor || spec.flavor || '');
  if (flavor) return nodes(1, flavor);
  return { cores: Number(spec.resources?.cpu ?? 0), ramMiB: Number(spec.resources?.memoryMiB ?? 0) };
}

export function clusterDemand(cluster: KObject) {
  const spec: Obj = cluster.spec ?? {};
  const total = { cores: 0, ramMiB: 0 };
  const add = (d: { cores: number; ramMiB: number }) => { total.cores += d.cores; total.ramMiB += d.ramMiB; };
  if (!spec.controlPlane?.hosted) add(nodes(Number(spec.controlPlane?.replicas ?? 1), CONTROL_PLANE_FLAVOR));
  for (const pool of (spec.nodePools ?? []) as Obj[]) {
    add(nodes(Number(pool.autoscaling ? pool.autoscaling.max ?? 0 : pool.replicas ?? 0), String(pool.flavor ?? '')));
  }
  return total;
}

export interface TenantObjects {
  namespaces: string[];
  servers: KObject[];
  clusters: KObject[];
  volumes: KObject[];
  floatingIPs: KObject[];
  networks: KObject[];
}

export function used(objects: TenantObjects): Used {
  const sum = { cores: 0, ramMiB: 0 };
  for (const d of [...objects.servers.map(serverDemand), ...objects.clusters.map(clusterDemand)]) {
    sum.cores += d.cores;
    sum.ramMiB += d.ramMiB;
  }
  return {
    namespaces: objects.namespaces.length,
    instances: objects.servers.length,
    ...sum,
    volumes: objects.volumes.length,
    gigabytes: objects.volumes.reduce((n, v) => n + Number((v.spec as Obj | undefined)?.sizeGiB ?? 0), 0),
    floatingIPs: objects.floatingIPs.length,
    networks: objects.networks.length,
    clusters: objects.clusters.length,
  };
}
