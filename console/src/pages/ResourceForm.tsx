// Create or edit any kind with a form generated from its OpenAPI v3 schema. The server
// validates (and defaults) on submit; its 422 causes are shown next to their fields.
import { useEffect, useState, type FormEvent } from 'react';
import { api, ApiError, type KObject } from '../lib/api';
import { kindRoute, useConsole } from '../lib/context';
import { apiVersion, collectionPath, objectPath, type ResourceKind } from '../lib/discovery';
import { initialValue, schemaOf, type Schema } from '../lib/openapi';
import { navigate } from '../lib/router';
import { SchemaField, type Errors } from '../components/SchemaField';

const SKIPPED = new Set(['apiVersion', 'kind', 'metadata', 'status']);
const NAME_SCHEMA: Schema = { type: 'string', description: 'Unique name (lower-case letters, digits and -).' };
const LABELS_SCHEMA: Schema = { type: 'object', additionalProperties: { type: 'string' }, description: 'Key/value pairs for selection.' };

export function ResourceForm({ kind, name }: { kind: ResourceKind; name?: string }) {
  const { namespace } = useConsole();
  const [schema, setSchema] = useState<Schema | null>(null);
  const [object, setObject] = useState<KObject | null>(null);
  const [errors, setErrors] = useState<Errors>({});
  const [message, setMessage] = useState('');
  const [busy, setBusy] = useState(false);

  useEffect(() => {
    const load = async () => {
      const s = (await schemaOf(kind)) ?? { type: 'object', properties: {} };
      const existing = name ? await api<KObject>(objectPath(kind, name, namespace)) : null;
      const fresh: KObject = { metadata: { name: '' } };
      for (const [key, child] of Object.entries(s.properties ?? {})) {
        if (!SKIPPED.has(key)) {
          const v = initialValue(child);
          if (v !== undefined) fresh[key] = v;
        }
      }
      setSchema(s);
      setObject(existing ?? fresh);
    };
    load().catch((e: ApiError) => setMessage(e.message));
  }, [kind, name, namespace]);

  const submit = async (e: FormEvent) => {
    e.preventDefault();
    if (!object) return;
    setBusy(true);
    setErrors({});
    setMessage('');
    const body = { ...object, apiVersion: apiVersion(kind), kind: kind.kind,
      metadata: { ...object.metadata, ...(kind.namespaced ? { namespace } : {}) } };
    try {
      const saved = name
        ? await api<KObject>(objectPath(kind, name, namespace), { method: 'PUT', body })
        : await api<KObject>(collectionPath(kind, namespace), { method: 'POST', body });
      navigate(kindRoute(kind, `/${encodeURIComponent(saved.metadata.name)}`, namespace));
    } catch (err) {
      const problem = err as ApiError;
      const byField: Errors = {};
      for (const cause of problem.causes ?? []) {
        if (cause.field) byField[cause.field] = byField[cause.field] ? `${byField[cause.field]}; ${cause.message}` : cause.message ?? '';
      }
      setErrors(byField);
      setMessage(problem.message);
    } finally {
      setBusy(false);
    }
  };

  if (!schema || !object) return message ? <p role="alert" className="error">{message}</p> : <p>Loading…</p>;
  const required = new Set(schema.required ?? []);
  const set = (key: string) => (v: unknown) => setObject((o) => {
    const next = { ...o! };
    if (v === undefined) delete next[key];
    else next[key] = v;
    return next;
  });
  const setMeta = (key: string) => (v: unknown) => setObject((o) => ({ ...o!, metadata: { ...o!.metadata, [key]: v } }));

  return (
    <>
      <h1>{name ? `Edit ${kind.kind} ${name}` : `Create ${kind.kind}`}
        {kind.namespaced && <small> in {namespace}</small>}</h1>
      {schema.description && <p className="help">{schema.description}</p>}
      {message && <p role="alert" className="error" data-testid="form-error">{message}</p>}
      <form onSubmit={submit} noValidate className="resource-form">
        {!name && <SchemaField name="name" schema={NAME_SCHEMA} path="metadata.name" required errors={errors}
          value={object.metadata.name || undefined} onChange={setMeta('name')} />}
        <SchemaField name="labels" schema={LABELS_SCHEMA} path="metadata.labels" errors={errors}
          value={object.metadata.labels} onChange={setMeta('labels')} />
        {Object.entries(schema.properties ?? {}).filter(([key]) => !SKIPPED.has(key)).map(([key, child]) => (
          <SchemaField key={key} name={key} schema={child} path={key} value={object[key]}
            required={required.has(key)} errors={errors} onChange={set(key)} />
        ))}
        <div className="actions">
          <button type="button" onClick={() => window.history.back()}>Cancel</button>
          <button type="submit" className="primary" disabled={busy}>{name ? 'Save' : 'Create'}</button>
        </div>
      </form>
    </>
  );
}
