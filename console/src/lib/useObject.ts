// One object, kept current by a watch on its name (conditions change while you look).
import { useEffect, useState } from 'react';
import { api, watch, type ApiError, type KObject } from './api';
import { collectionPath, objectPath, type ResourceKind } from './discovery';

export function useObject(kind: ResourceKind, name: string, namespace: string) {
  const [object, setObject] = useState<KObject | null>(null);
  const [gone, setGone] = useState(false);
  const [error, setError] = useState<ApiError | null>(null);

  useEffect(() => {
    const abort = new AbortController();
    const run = async () => {
      while (!abort.signal.aborted) {
        const obj = await api<KObject>(objectPath(kind, name, namespace), { signal: abort.signal });
        setObject(obj);
        const selector = encodeURIComponent(`metadata.name=${name}`);
        await watch<KObject>(`${collectionPath(kind, namespace)}?watch=1&fieldSelector=${selector}`
          + `&resourceVersion=${obj.metadata.resourceVersion ?? ''}`, 'application/json', abort.signal,
        (event) => {
          if (event.type === 'DELETED') setGone(true);
          else if (event.type === 'ADDED' || event.type === 'MODIFIED') setObject(event.object);
        });
      }
    };
    run().catch((e: ApiError) => { if (!abort.signal.aborted) setError(e); });
    return () => abort.abort();
  }, [kind, name, namespace]);

  return { object, gone, error };
}
