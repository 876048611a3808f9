// A kind's list as the server prints it (meta.k8s.io Table: its printer columns), kept
// current by a watch; events are applied in batches (at most one render per 250 ms) so a
// busy list of thousands of objects stays responsive.
import { useEffect, useState } from 'react';
import { api, TABLE_ACCEPT, watch, type ApiError } from './api';

export interface Column {
  name: string;
  type: string;
  priority?: number;
  description?: string;
}

export interface Row {
  cells: unknown[];
  object: { metadata: { name: string; namespace?: string; uid: string; resourceVersion?: string } };
}

interface Table {
  columnDefinitions: Column[];
  rows: Row[];
  metadata: { resourceVersion?: string };
}

const BATCH_MS = 250;

export function useTable(path: string, labelSelector: string) {
  const [columns, setColumns] = useState<Column[]>([]);
  const [rows, setRows] = useState<Row[]>([]);
  const [error, setError] = useState<ApiError | null>(null);
  const [loading, setLoading] = useState(true);

  useEffect(() => {
    const abort = new AbortController();
    setLoading(true); // another kind, namespace or selector: not the old rows meanwhile
    const byUid = new Map<string, Row>();
    let timer: number | undefined;
    const flush = () => {
      timer = undefined;
      setRows([...byUid.values()].sort((a, b) => rowKey(a).localeCompare(rowKey(b))));
    };
    const schedule = () => { timer ??= window.setTimeout(flush, BATCH_MS); };
    const query = labelSelector ? `labelSelector=${encodeURIComponent(labelSelector)}` : '';

    const run = async () => {
      while (!abort.signal.aborted) {
        const table = await api<Table>(`${path}?${query}`, { accept: TABLE_ACCEPT, signal: abort.signal });
        byUid.clear();
        for (const row of table.rows ?? []) byUid.set(row.object.metadata.uid, row);
        setColumns(table.columnDefinitions);
        flush();
        setLoading(false);
        setError(null);
        let rv = table.metadata.resourceVersion ?? '';
        let expired = false;
        await watch<Table & { code?: number }>(
          `${path}?watch=1&allowWatchBookmarks=true&resourceVersion=${rv}${query ? `&${query}` : ''}`,
          TABLE_ACCEPT, abort.signal, (event) => {
            if (event.type === 'ERROR') { expired = true; return; }
            if (event.type === 'BOOKMARK') return;
            for (const row of event.object.rows ?? []) {
              rv = row.object.metadata.resourceVersion ?? rv;
              if (event.type === 'DELETED') byUid.delete(row.object.metadata.uid);
              else byUid.set(row.object.metadata.uid, row);
            }
            schedule();
          });
        if (!expired) await new Promise((r) => setTimeout(r, 1000)); // stream ended: relist
      }
    };
    run().catch((e: ApiError & { name?: string }) => {
      if (e.name === 'AbortError' || abort.signal.aborted) return;
      setError(e);
      setLoading(false);
    });
    return () => { abort.abort(); if (timer) clearTimeout(timer); };
  }, [path, labelSelector]);

  return { columns, rows, error, loading };
}

function rowKey(row: Row): string {
  return `${row.object.metadata.namespace ?? ''}/${row.object.metadata.name}`;
}
