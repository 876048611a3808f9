// A Server as its user thinks of it: addresses, flavor, image, power state and conditions,
// kept current by watch, with the actions RBAC allows (edit, delete). Without a name: the
// namespace's servers with their state, each linking here.
import { useRef, useState } from 'react';
import { request, type ApiError } from '../../lib/api';
import { kindRoute, useConsole } from '../../lib/context';
import { objectPath, type ResourceKind } from '../../lib/discovery';
import { linkProps, navigate } from '../../lib/router';
import { ConfirmDelete } from '../../components/ConfirmDelete';
import { useObject } from '../../lib/useObject';
import { IAAS, Problem, ready, served, StepList, useAllowed, useObjects } from './common';
import './tasks.css';

export function ServerPage({ name }: { name?: string }) {
  const { kinds, namespace } = useConsole();
  const servers = served(kinds, IAAS, 'servers');
  if (!servers) return <p>The IaaS service is not enabled on this server.</p>;
  if (name && !namespace) return <><h1>Server {name}</h1><p>Choose its namespace above.</p></>;
  return name ? <Server kind={servers} name={name} namespace={namespace} /> : <Servers kind={servers} namespace={namespace} />;
}

function Servers({ kind, namespace }: { kind: ResourceKind; namespace: string }) {
  const { items, error } = useObjects(kind, namespace);
  const where = namespace || 'all namespaces';
  return (
    <>
      <h1>Servers <small>in {where}</small></h1>
      <Problem error={error} />
      {items && items.length === 0 && <p>No servers in {where}.</p>}
      {items && items.length > 0 && (
        <table data-testid="servers">
          <caption className="sr-only">Servers in {where}</caption>
          <thead><tr>{!namespace && <th scope="col">Namespace</th>}<th scope="col">Name</th><th scope="col">State</th><th scope="col">Flavor</th><th scope="col">Addresses</th></tr></thead>
          <tbody>
            {items.map((s) => (
              <tr key={s.metadata.name} data-name={s.metadata.name}>
                {!namespace && <td>{s.metadata.namespace}</td>}
                <td><a {...linkProps(`/console/tasks/servers/${encodeURIComponent(s.metadata.name)}?namespace=${encodeURIComponent(s.metadata.namespace ?? namespace)}`)}>{s.metadata.name}</a></td>
                <td>{ready(s)?.status === 'True' ? 'Ready' : ready(s)?.reason ?? 'Pending'}</td>
                <td>{String(s.status?.flavor ?? '') || String(s.spec?.flavor ?? '')}</td>
                <td>{((s.status?.addresses as string[] | undefined) ?? []).join(', ')}</td>
              </tr>
            ))}
          </tbody>
        </table>
      )}
    </>
  );
}

function Server({ kind, name, namespace }: { kind: ResourceKind; name: string; namespace: string }) {
  const { object, gone, error } = useObject(kind, name, namespace);
  const mayUpdate = useAllowed({ verb: 'update', kind, namespace, name });
  const mayDelete = useAllowed({ verb: 'delete', kind, namespace, name });
  const dialog = useRef<HTMLDialogElement>(null);
  const [problem, setProblem] = useState('');

  const remove = async () => {
    dialog.current?.close();
    try {
      await request(objectPath(kind, name, namespace), { method: 'DELETE' });
      navigate(`/console/tasks/servers?namespace=${encodeURIComponent(namespace)}`);
    } catch (e) {
      setProblem((e as ApiError).message);
    }
  };

  if (error) return <Problem error={error} />;
  if (!object) return <p>Loading…</p>;
  const spec = (object.spec ?? {}) as { flavor?: string; image?: string; imageRef?: { name?: string }; resources?: { cpu?: number; memoryMiB?: number }; networks?: { name: string }[] };
  const status = (object.status ?? {}) as { addresses?: string[]; flavor?: string; powerState?: string; provider?: string; backendID?: string };
  const state = ready(object);
  const image = spec.image || (spec.imageRef?.name ? `Image ${spec.imageRef.name}` : '');
  return (
    <>
      <div className="title-bar" data-settled={mayUpdate !== null && mayDelete !== null}>
        <h1>Server {name} <small>in {namespace}</small></h1>
        {mayUpdate && <a className="button" {...linkProps(kindRoute(kind, `/${encodeURIComponent(name)}/_edit`, namespace))}>Edit</a>}
        {mayDelete && <button type="button" className="danger" onClick={() => dialog.current?.showModal()}>Delete</button>}
      </div>
      {gone && <p role="status" className="notice">This server was deleted.</p>}
      {object.metadata.deletionTimestamp && <p role="status" className="notice">Being deleted.</p>}
      <Problem error={problem} />
      <p className={`state ${state?.status === 'True' ? 'ok' : 'pending'}`} data-testid="server-state" data-ready={state?.status === 'True'}>
        {state?.status === 'True' ? 'Ready' : `${state?.reason ?? 'Pending'}${state?.message ? `: ${state.message}` : ''}`}
      </p>
      <dl className="facts" data-testid="server-facts">
        <dt>Addresses</dt><dd data-testid="addresses">{(status.addresses ?? []).map((a) => <code key={a} className="chip">{a}</code>)}{!status.addresses?.length && '–'}</dd>
        <dt>Flavor</dt><dd data-testid="flavor">{status.flavor || spec.flavor || (spec.resources ? `${spec.resources.cpu} vCPU, ${spec.resources.memoryMiB} MiB` : '–')}</dd>
        <dt>Image</dt><dd data-testid="image">{image || '–'}</dd>
        <dt>Power</dt><dd data-testid="power">{status.powerState || '–'}</dd>
        <dt>Networks</dt><dd>{(spec.networks ?? []).map((n) => n.name).join(', ') || '–'}</dd>
        <dt>Provider</dt><dd>{status.provider || '–'}{status.backendID && <> ({status.backendID})</>}</dd>
      </dl>
      <h2>Conditions</h2>
      <StepList label="Server conditions" conditions={object.status?.conditions ?? []} />
      <p><a {...linkProps(kindRoute(kind, `/${encodeURIComponent(name)}`, namespace))}>Object details and YAML</a></p>
      <ConfirmDelete dialogRef={dialog} id="confirm-server" title={`Delete server ${name}?`}
        warning="Its disk is gone with it. This cannot be undone." onConfirm={remove} />
    </>
  );
}
