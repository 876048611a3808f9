// The KRM API as the console uses it: fetch with the session's bearer token, Status errors
// turned into ApiError (with the 422 causes per field), and a watch stream reader.
import { bearer, freshBearer, refresh } from './session';

export const TABLE_ACCEPT = 'application/json;as=Table;v=v1;g=meta.k8s.io, application/json';

export interface Cause {
  field?: string;
  message?: string;
  reason?: string;
}

export class ApiError extends Error {
  constructor(
    readonly code: number,
    readonly reason: string,
    message: string,
    readonly causes: Cause[] = [],
  ) {
    super(message);
  }
}

export type KObject = {
  apiVersion?: string;
  kind?: string;
  metadata: {
    name: string;
    namespace?: string;
    uid?: string;
    resourceVersion?: string;
    labels?: Record<string, string>;
    annotations?: Record<string, string>;
    ownerReferences?: { apiVersion: string; kind: string; name: string; uid: string; controller?: boolean }[];
    finalizers?: string[];
    creationTimestamp?: string;
    deletionTimestamp?: string;
    [key: string]: unknown;
  };
  spec?: Record<string, unknown>;
  status?: Record<string, unknown> & { conditions?: Condition[] };
  [key: string]: unknown;
};

export interface Condition {
  type: string;
  status: string;
  reason?: string;
  message?: string;
  lastTransitionTime?: string;
}

interface RequestOptions {
  method?: string;
  body?: unknown;
  accept?: string;
  contentType?: string;
  signal?: AbortSignal;
}

async function send(path: string, options: RequestOptions, token: string | null): Promise<Response> {
  const headers: Record<string, string> = { Accept: options.accept ?? 'application/json' };
  if (token) headers.Authorization = `Bearer ${token}`;
  if (options.body !== undefined) headers['Content-Type'] = options.contentType ?? 'application/json';
  return fetch(path, {
    method: options.method ?? 'GET',
    headers,
    body: options.body === undefined ? undefined : JSON.stringify(options.body),
    signal: options.signal,
    credentials: 'omit',
    cache: 'no-store',
  });
}

/** One API call; a 401 refreshes the login once (an expired ID token) and tries again. */
export async function request(path: string, options: RequestOptions = {}): Promise<Response> {
  const token = await freshBearer();
  let response = await send(path, options, token);
  if (response.status === 401) {
    // someone else may have refreshed meanwhile: then only retry with the new token
    const renewed = bearer() !== token || (await refresh());
    if (renewed) response = await send(path, options, bearer());
  }
  if (!response.ok) throw await errorOf(response);
  return response;
}

export async function api<T = unknown>(path: string, options: RequestOptions = {}): Promise<T> {
  const response = await request(path, options);
  return (await response.json()) as T;
}

async function errorOf(response: Response): Promise<ApiError> {
  try {
    const status = await response.json();
    return new ApiError(response.status, status.reason ?? '', status.message ?? response.statusText,
      status.details?.causes ?? []);
  } catch {
    return new ApiError(response.status, '', `${response.status} ${response.statusText}`);
  }
}

export interface WatchEvent<T> {
  type: 'ADDED' | 'MODIFIED' | 'DELETED' | 'BOOKMARK' | 'ERROR';
  object: T;
}

/** Read a watch stream (one JSON event per line) until it ends or `signal` aborts. */
export async function watch<T>(path: string, accept: string, signal: AbortSignal,
  onEvent: (event: WatchEvent<T>) => void): Promise<void> {
  const response = await request(path, { accept, signal });
  if (!response.body) return;
  const reader = response.body.pipeThrough(new TextDecoderStream()).getReader();
  let buffer = '';
  for (;;) {
    const { value, done } = await reader.read();
    if (done) return;
    buffer += value;
    let newline;
    while ((newline = buffer.indexOf('\n')) >= 0) {
      const line = buffer.slice(0, newline).trim();
      buffer = buffer.slice(newline + 1);
      if (line) onEvent(JSON.parse(line) as WatchEvent<T>);
    }
  }
}
