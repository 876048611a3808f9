// Any kind's list: the server's printer columns, a label filter, live updates by watch,
// and virtualised rows (only the visible ones are in the DOM).
import { useVirtualizer } from '@tanstack/react-virtual';
import { useEffect, useRef, useState, type FormEvent } from 'react';
import { useConsole, kindRoute } from '../lib/context';
import { collectionPath, type ResourceKind } from '../lib/discovery';
import { can } from '../lib/rbac';
import { linkProps } from '../lib/router';
import { useTable } from '../lib/useTable';

const ROW_HEIGHT = 33;

export function ResourceList({ kind }: { kind: ResourceKind }) {
  const { namespace } = useConsole();
  const [selector, setSelector] = useState('');
  const [typed, setTyped] = useState('');
  const [mayCreate, setMayCreate] = useState<boolean | null>(null); // null: not asked yet
  const path = collectionPath(kind, namespace);
  const { columns, rows, error, loading } = useTable(path, selector);
  const scroller = useRef<HTMLDivElement>(null);
  const virtual = useVirtualizer({
    count: rows.length, getScrollElement: () => scroller.current,
    estimateSize: () => ROW_HEIGHT, overscan: 20,
  });

  useEffect(() => {
    let live = true;
    setMayCreate(null);
    can('create', kind, namespace).then((ok) => live && setMayCreate(ok));
    return () => { live = false; };
  }, [kind, namespace]);

  const filter = (e: FormEvent) => { e.preventDefault(); setSelector(typed.trim()); };
  const shown = columns.filter((c) => !c.priority);
  const items = virtual.getVirtualItems();
  const before = items.length ? items[0].start : 0;
  const after = items.length ? virtual.getTotalSize() - items[items.length - 1].end : 0;

  return (
    <>
      <div className="title-bar" data-access-checked={mayCreate !== null}>
        <h1>{kind.kind}{kind.namespaced && <small> in {namespace || 'all namespaces'}</small>}</h1>
        {mayCreate && (kind.namespaced ? !!namespace : true) && (
          <a className="button primary" {...linkProps(kindRoute(kind, '/_new', namespace))}>Create {kind.kind}</a>
        )}
      </div>
      <form className="filter" onSubmit={filter} role="search">
        <label htmlFor="selector">Label selector</label>
        <input id="selector" placeholder="app=web,tier!=db" value={typed} onChange={(e) => setTyped(e.target.value)} />
        <button type="submit">Filter</button>
      </form>
      {error && <p role="alert" className="error">{error.message}</p>}
      {loading ? <p>Loading…</p> : (
        <div className="table-scroll" ref={scroller} data-testid="list">
          <table>
            <caption className="sr-only">{kind.kind} objects ({rows.length})</caption>
            <thead>
              <tr>
                {kind.namespaced && !namespace && <th scope="col">Namespace</th>}
                {shown.map((c) => <th scope="col" key={c.name} title={c.description}>{c.name}</th>)}
              </tr>
            </thead>
            <tbody>
              {before > 0 && <tr aria-hidden="true" style={{ height: before }} />}
              {items.map((item) => {
                const row = rows[item.index];
                const meta = row.object.metadata;
                return (
                  <tr key={meta.uid} data-name={meta.name} style={{ height: ROW_HEIGHT }}>
                    {kind.namespaced && !namespace && <td>{meta.namespace}</td>}
                    {shown.map((c) => (
                      <td key={c.name}>
                        {c.name === 'Name'
                          ? <a {...linkProps(kindRoute(kind, `/${encodeURIComponent(meta.name)}`, meta.namespace ?? ''))}>{meta.name}</a>
                          : String(row.cells[columns.indexOf(c)] ?? '')}
                      </td>
                    ))}
                  </tr>
                );
              })}
              {after > 0 && <tr aria-hidden="true" style={{ height: after }} />}
            </tbody>
          </table>
          {rows.length === 0 && <p className="empty">No {kind.kind} objects{selector && ' match the selector'}.</p>}
        </div>
      )}
    </>
  );
}
