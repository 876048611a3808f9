// Any object: conditions, owners, finalizers, labels, the YAML, and edit/delete where RBAC
// allows them (a confirmation before deleting).
import { useEffect, useRef, useState } from 'react';
import { request, type ApiError, type Condition } from '../lib/api';
import { kindRoute, useConsole } from '../lib/context';
import { objectPath, type ResourceKind } from '../lib/discovery';
import { can } from '../lib/rbac';
import { linkProps, navigate } from '../lib/router';
import { ConfirmDelete } from '../components/ConfirmDelete';
import { useObject } from '../lib/useObject';

export function ResourceDetail({ kind, name }: { kind: ResourceKind; name: string }) {
  const { namespace } = useConsole();
  const { object, gone, error } = useObject(kind, name, namespace);
  const [may, setMay] = useState({ update: false, delete: false, checked: false });
  const [problem, setProblem] = useState('');
  const dialog = useRef<HTMLDialogElement>(null);
  const [yaml, setYaml] = useState('');

  useEffect(() => { // js-yaml is its own chunk, loaded by the first detail page
    if (object) import('../lib/yaml').then((m) => setYaml(m.toYaml(object)));
  }, [object]);

  useEffect(() => {
    Promise.all([can('update', kind, namespace), can('delete', kind, namespace)])
      .then(([update, del]) => setMay({ update, delete: del, checked: true }));
  }, [kind, namespace]);

  const remove = async () => {
    dialog.current?.close();
    try {
      await request(objectPath(kind, name, namespace), { method: 'DELETE' });
      navigate(kindRoute(kind, '', namespace));
    } catch (e) {
      setProblem((e as ApiError).message);
    }
  };

  if (error) return <p role="alert" className="error">{error.message}</p>;
  if (!object) return <p>Loading…</p>;
  const meta = object.metadata;
  const conditions: Condition[] = object.status?.conditions ?? [];
  return (
    <>
      <div className="title-bar" data-access-checked={may.checked}>
        <h1>{kind.kind} {meta.name}{meta.namespace && <small> in {meta.namespace}</small>}</h1>
        {may.update && <a className="button" {...linkProps(kindRoute(kind, `/${encodeURIComponent(name)}/_edit`, namespace))}>Edit</a>}
        {may.delete && <button type="button" className="danger" onClick={() => dialog.current?.showModal()}>Delete</button>}
      </div>
      {gone && <p role="status" className="notice">This {kind.kind} was deleted.</p>}
      {meta.deletionTimestamp && <p role="status" className="notice">Being deleted since {meta.deletionTimestamp}.</p>}
      {problem && <p role="alert" className="error">{problem}</p>}

      <h2>Conditions</h2>
      {conditions.length === 0 ? <p>None reported.</p> : (
        <table data-testid="conditions">
          <thead><tr><th scope="col">Type</th><th scope="col">Status</th><th scope="col">Reason</th><th scope="col">Message</th><th scope="col">Since</th></tr></thead>
          <tbody>
            {conditions.map((c) => (
              <tr key={c.type} data-condition={c.type} data-status={c.status}>
                <td>{c.type}</td><td>{c.status}</td><td>{c.reason}</td><td>{c.message}</td><td>{c.lastTransitionTime}</td>
              </tr>
            ))}
          </tbody>
        </table>
      )}

      <h2>Metadata</h2>
      <dl className="facts">
        <dt>Labels</dt><dd>{Object.entries(meta.labels ?? {}).map(([k, v]) => <code key={k} className="chip">{k}={v}</code>)}</dd>
        <dt>Owners</dt><dd>{(meta.ownerReferences ?? []).map((o) => <span key={o.uid} className="chip">{o.kind} {o.name}</span>)}
          {!meta.ownerReferences?.length && 'none'}</dd>
        <dt>Finalizers</dt><dd>{(meta.finalizers ?? []).join(', ') || 'none'}</dd>
        <dt>Created</dt><dd>{meta.creationTimestamp}</dd>
      </dl>

      <h2>YAML</h2>
      <pre className="yaml" data-testid="yaml" tabIndex={0}>{yaml}</pre>

      <ConfirmDelete dialogRef={dialog} id="confirm-title" title={`Delete ${kind.kind} ${meta.name}?`}
        warning="This cannot be undone." onConfirm={remove} />
    </>
  );
}
