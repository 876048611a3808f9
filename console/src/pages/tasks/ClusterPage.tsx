// A Kubernetes cluster: version, endpoint, node pools (size, flavor, ready nodes),
// conditions, kept current by watch; and its kubeconfig as a file download. The kubeconfig
// comes from the cluster's kubeconfig subresource (POST) and goes to the user as a Blob:
// never in a URL, never in storage, dropped from memory once handed over.
import { useState } from 'react';
import { api, type ApiError } from '../../lib/api';
import { kindRoute, useConsole } from '../../lib/context';
import { objectPath, type ResourceKind } from '../../lib/discovery';
import { linkProps } from '../../lib/router';
import { useObject } from '../../lib/useObject';
import { KAAS, Problem, ready, served, StepList, useAllowed, useObjects } from './common';
import './tasks.css';

interface Pool {
  name: string;
  flavor?: string;
  replicas?: number;
  autoscaling?: { min: number; max: number };
}

interface PoolStatus {
  name: string;
  desiredReplicas?: number;
  readyReplicas?: number;
}

export function ClusterPage({ name }: { name?: string }) {
  const { kinds, namespace } = useConsole();
  const clusters = served(kinds, KAAS, 'clusters');
  if (!clusters) return <p>The KaaS service is not enabled on this server.</p>;
  if (name && !namespace) return <><h1>Cluster {name}</h1><p>Choose its namespace above.</p></>;
  return name ? <Cluster kind={clusters} name={name} namespace={namespace} /> : <Clusters kind={clusters} namespace={namespace} />;
}

function Clusters({ kind, namespace }: { kind: ResourceKind; namespace: string }) {
  const { items, error } = useObjects(kind, namespace);
  return (
    <>
      <h1>Clusters <small>in {namespace || 'all namespaces'}</small></h1>
      <Problem error={error} />
      {items && items.length === 0 && <p>No clusters in {namespace || 'all namespaces'}.</p>}
      {items && items.length > 0 && (
        <ul data-testid="clusters">
          {items.map((c) => (
            <li key={c.metadata.name}>
              <a {...linkProps(`/console/tasks/clusters/${encodeURIComponent(c.metadata.name)}?namespace=${encodeURIComponent(c.metadata.namespace ?? namespace)}`)}>{c.metadata.name}</a>
              {!namespace && <> in {c.metadata.namespace}</>}
              {' '}{ready(c)?.status === 'True' ? 'Ready' : ready(c)?.reason ?? 'Pending'}
            </li>
          ))}
        </ul>
      )}
    </>
  );
}

/** Hand bytes to the user as a file (an object URL of a Blob, revoked right after). */
function saveFile(content: string, filename: string) {
  const url = URL.createObjectURL(new Blob([content], { type: 'application/yaml' }));
  const link = document.createElement('a');
  link.href = url;
  link.download = filename;
  document.body.append(link);
  link.click();
  link.remove();
  setTimeout(() => URL.revokeObjectURL(url), 0);
}

function decode(base64: string): string {
  const bytes = Uint8Array.from(atob(base64), (ch) => ch.charCodeAt(0));
  return new TextDecoder().decode(bytes);
}

function Cluster({ kind, name, namespace }: { kind: ResourceKind; name: string; namespace: string }) {
  const { object, gone, error } = useObject(kind, name, namespace);
  const mayKubeconfig = useAllowed({ verb: 'create', kind, namespace, subresource: 'kubeconfig', name });
  const mayAdmin = useAllowed({ verb: 'create', kind, namespace, subresource: 'adminkubeconfig', name });
  const mayUpdate = useAllowed({ verb: 'update', kind, namespace, name });
  const [problem, setProblem] = useState('');
  const [busy, setBusy] = useState(false);
  const [saved, setSaved] = useState('');

  const download = async (sub: 'kubeconfig' | 'adminkubeconfig') => {
    setBusy(true);
    setProblem('');
    setSaved('');
    try {
      const body = sub === 'kubeconfig'
        ? { apiVersion: `${KAAS}/${kind.version}`, kind: 'KubeconfigRequest', spec: {} }
        : { apiVersion: `${KAAS}/${kind.version}`, kind: 'AdminKubeconfigRequest', spec: {} };
      const answer = await api<{ status?: { kubeconfig?: string; expirationTimestamp?: string } }>(
        `${objectPath(kind, name, namespace)}/${sub}`, { method: 'POST', body });
      const file = `${namespace}-${name}${sub === 'adminkubeconfig' ? '-admin' : ''}.kubeconfig`;
      saveFile(decode(answer.status?.kubeconfig ?? ''), file);
      setSaved(answer.status?.expirationTimestamp
        ? `Saved ${file}; its credential expires at ${new Date(answer.status.expirationTimestamp).toLocaleString()}.`
        : `Saved ${file}.`);
    } catch (e) {
      setProblem((e as ApiError).message);
    } finally {
      setBusy(false);
    }
  };

  if (error) return <Problem error={error} />;
  if (!object) return <p>Loading…</p>;
  const spec = (object.spec ?? {}) as { kubernetesVersion?: string; nodePools?: Pool[]; controlPlane?: { replicas?: number; hosted?: boolean }; oidc?: unknown };
  const status = (object.status ?? {}) as { kubernetesVersion?: string; apiEndpoint?: string; phase?: string; nodePools?: PoolStatus[];
    clusterClass?: string; provider?: string; maintenance?: { window?: string; pendingVersion?: string; message?: string } };
  const poolStatus = new Map((status.nodePools ?? []).map((p) => [p.name, p]));
  const state = ready(object);
  return (
    <>
      <div className="title-bar">
        <h1>Cluster {name} <small>in {namespace}</small></h1>
        {mayUpdate && <a className="button" {...linkProps(kindRoute(kind, `/${encodeURIComponent(name)}/_edit`, namespace))}>Edit</a>}
      </div>
      {gone && <p role="status" className="notice">This cluster was deleted.</p>}
      <p className={`state ${state?.status === 'True' ? 'ok' : 'pending'}`} data-testid="cluster-state" data-ready={state?.status === 'True'}>
        {state?.status === 'True' ? 'Ready' : `${state?.reason ?? 'Pending'}${state?.message ? `: ${state.message}` : ''}`}
        {status.phase && <> · {status.phase}</>}
      </p>
      <dl className="facts">
        <dt>Version</dt><dd data-testid="version">{status.kubernetesVersion || '–'} (asked: {spec.kubernetesVersion})</dd>
        <dt>Endpoint</dt><dd data-testid="endpoint">{status.apiEndpoint ? <code>{status.apiEndpoint}</code> : 'not reachable yet'}</dd>
        <dt>Control plane</dt><dd>{spec.controlPlane?.hosted ? 'hosted' : `${spec.controlPlane?.replicas ?? 1} node(s)`}</dd>
        <dt>Class</dt><dd>{status.clusterClass || '–'}</dd>
        <dt>Provider</dt><dd>{status.provider || '–'}</dd>
        {status.maintenance?.window && <><dt>Maintenance</dt><dd>{status.maintenance.window} {status.maintenance.message}</dd></>}
      </dl>

      <h2>Node pools</h2>
      <table data-testid="pools">
        <caption className="sr-only">Node pools of {name}</caption>
        <thead><tr><th scope="col">Pool</th><th scope="col">Flavor</th><th scope="col">Size</th><th scope="col">Ready nodes</th></tr></thead>
        <tbody>
          {(spec.nodePools ?? []).map((p) => {
            const s = poolStatus.get(p.name);
            return (
              <tr key={p.name} data-pool={p.name} data-ready={s?.readyReplicas ?? 0}>
                <td>{p.name}</td>
                <td>{p.flavor}</td>
                <td>{p.autoscaling ? `${p.autoscaling.min}–${p.autoscaling.max} (autoscaling)` : p.replicas ?? 0}</td>
                <td>{s?.readyReplicas ?? 0} / {s?.desiredReplicas ?? p.replicas ?? 0}</td>
              </tr>
            );
          })}
        </tbody>
      </table>
      {!spec.nodePools?.length && <p>No node pools.</p>}

      <h2>Access</h2>
      {mayKubeconfig === false && mayAdmin === false && <p>You may not download kubeconfigs of this cluster.</p>}
      <div className="actions start">
        {mayKubeconfig && <button type="button" className="primary" disabled={busy} onClick={() => download('kubeconfig')}
          aria-describedby="kubeconfig-help">Download kubeconfig</button>}
        {mayAdmin && <button type="button" disabled={busy} onClick={() => download('adminkubeconfig')}
          aria-describedby="admin-kubeconfig-help">Download admin kubeconfig</button>}
      </div>
      {mayKubeconfig && <p className="help" id="kubeconfig-help">Signs in with your own login through <code>scs token</code>
        {!spec.oidc && ' (this cluster has no OIDC configured, so the server will refuse it)'}; holds no secret.</p>}
      {mayAdmin && <p className="help" id="admin-kubeconfig-help">A short-lived cluster-admin credential: keep the file secret.</p>}
      {saved && <p role="status" data-testid="kubeconfig-saved">{saved}</p>}
      <Problem error={problem} />

      <h2>Conditions</h2>
      <StepList label="Cluster conditions" conditions={object.status?.conditions ?? []} />
      <p><a {...linkProps(kindRoute(kind, `/${encodeURIComponent(name)}`, namespace))}>Object details and YAML</a></p>
    </>
  );
}
