// One form field generated from an OpenAPI v3 schema, recursively: enums become selects,
// booleans checkboxes, objects fieldsets, lists of objects repeatable groups; the schema's
// description is the help text and the server's 422 message for this path sits next to it.
import { useState } from 'react';
import type { Schema } from '../lib/openapi';

export type Errors = Record<string, string>;

interface Props {
  name: string;
  schema: Schema;
  path: string; // the server's field path: spec.networks[0].name
  value: unknown;
  onChange: (value: unknown) => void;
  required?: boolean;
  errors: Errors;
}

export const fieldId = (path: string) => `f-${path.replace(/[^A-Za-z0-9_-]/g, '_')}`;

function Help({ schema, path, errors }: { schema: Schema; path: string; errors: Errors }) {
  return (
    <>
      {schema.description && <small id={`${fieldId(path)}-help`} className="help">{schema.description}</small>}
      {errors[path] && <span id={`${fieldId(path)}-error`} className="field-error" role="alert">{errors[path]}</span>}
    </>
  );
}

function describedBy(schema: Schema, path: string, errors: Errors): string | undefined {
  const ids = [schema.description && `${fieldId(path)}-help`, errors[path] && `${fieldId(path)}-error`].filter(Boolean);
  return ids.length ? ids.join(' ') : undefined;
}

export function SchemaField(props: Props) {
  const { name, schema, path, value, onChange, required, errors } = props;
  const id = fieldId(path);
  const common = {
    id, 'aria-describedby': describedBy(schema, path, errors),
    'aria-invalid': errors[path] ? true : undefined, required,
  };
  const label = <label htmlFor={id}>{name}{required && <span aria-hidden="true"> *</span>}</label>;

  if (schema.enum) {
    return (
      <div className="field">{label}
        <select {...common} value={value === undefined ? '' : String(value)}
          onChange={(e) => onChange(schema.enum!.find((v) => String(v) === e.target.value))}>
          {!required && <option value="">(not set)</option>}
          {schema.enum.map((v) => <option key={String(v)} value={String(v)}>{String(v)}</option>)}
        </select>
        <Help schema={schema} path={path} errors={errors} />
      </div>
    );
  }
  if (schema.type === 'boolean') {
    return (
      <div className="field checkbox">
        <input type="checkbox" {...common} checked={value === true} onChange={(e) => onChange(e.target.checked)} />
        {label}
        <Help schema={schema} path={path} errors={errors} />
      </div>
    );
  }
  if ((schema.type === 'integer' || schema.type === 'number') && !schema['x-kubernetes-int-or-string']) {
    return (
      <div className="field">{label}
        <input type="number" {...common} value={value === undefined ? '' : String(value)}
          min={schema.minimum} max={schema.maximum} step={schema.type === 'integer' ? 1 : 'any'}
          onChange={(e) => onChange(e.target.value === '' ? undefined : Number(e.target.value))} />
        <Help schema={schema} path={path} errors={errors} />
      </div>
    );
  }
  if (schema.type === 'string' || schema['x-kubernetes-int-or-string']) {
    return (
      <div className="field">{label}
        <input type="text" {...common} value={value === undefined ? '' : String(value)}
          placeholder={schema.default !== undefined ? String(schema.default) : undefined}
          onChange={(e) => onChange(e.target.value === '' ? undefined : e.target.value)} />
        <Help schema={schema} path={path} errors={errors} />
      </div>
    );
  }
  if (schema.type === 'object' && schema.properties && Object.keys(schema.properties).length) {
    return <ObjectFields {...props} />;
  }
  if (schema.type === 'object' && typeof schema.additionalProperties === 'object'
      && schema.additionalProperties.type === 'string') {
    return <MapField {...props} />;
  }
  if (schema.type === 'array' && schema.items?.type === 'object' && schema.items.properties) {
    return <ObjectList {...props} />;
  }
  if (schema.type === 'array' && schema.items && ['string', 'integer', 'number'].includes(schema.items.type ?? '')) {
    const list = Array.isArray(value) ? value : [];
    return (
      <div className="field">{label}
        <input type="text" {...common} value={list.join(', ')} placeholder="comma-separated"
          onChange={(e) => {
            const parts = e.target.value.split(',').map((s) => s.trim()).filter(Boolean);
            onChange(parts.length ? parts.map((p) => (schema.items!.type === 'string' ? p : Number(p))) : undefined);
          }} />
        <Help schema={schema} path={path} errors={errors} />
      </div>
    );
  }
  return <JsonField {...props} />;
}

function ObjectFields({ name, schema, path, value, onChange, errors }: Props) {
  const obj = (value && typeof value === 'object' ? value : {}) as Record<string, unknown>;
  const required = new Set(schema.required ?? []);
  const keys = Object.keys(schema.properties ?? {}).sort((a, b) =>
    Number(required.has(b)) - Number(required.has(a)));
  return (
    <fieldset>
      <legend>{name}</legend>
      <Help schema={schema} path={path} errors={errors} />
      {keys.map((key) => (
        <SchemaField key={key} name={key} schema={schema.properties![key]} path={`${path}.${key}`}
          value={obj[key]} required={required.has(key)} errors={errors}
          onChange={(v) => {
            const next = { ...obj };
            if (v === undefined) delete next[key];
            else next[key] = v;
            onChange(Object.keys(next).length ? next : undefined);
          }} />
      ))}
    </fieldset>
  );
}

function ObjectList({ name, schema, path, value, onChange, errors }: Props) {
  const list = Array.isArray(value) ? value : [];
  const set = (i: number, v: unknown) => onChange(list.map((x, j) => (j === i ? v ?? {} : x)));
  return (
    <fieldset>
      <legend>{name}</legend>
      <Help schema={schema} path={path} errors={errors} />
      {list.map((item, i) => (
        <div key={i} className="list-item">
          <SchemaField name={`${name} ${i + 1}`} schema={schema.items!} path={`${path}[${i}]`}
            value={item} errors={errors} onChange={(v) => set(i, v)} />
          <button type="button" onClick={() => {
            const next = list.filter((_, j) => j !== i);
            onChange(next.length ? next : undefined);
          }}>Remove {name} {i + 1}</button>
        </div>
      ))}
      <button type="button" onClick={() => onChange([...list, {}])}>Add {name}</button>
    </fieldset>
  );
}

function MapField({ name, schema, path, value, onChange, required, errors }: Props) {
  const map = (value ?? {}) as Record<string, string>;
  const [text, setText] = useState(Object.entries(map).map(([k, v]) => `${k}=${v}`).join('\n'));
  const id = fieldId(path);
  return (
    <div className="field">
      <label htmlFor={id}>{name} (one key=value a line)</label>
      <textarea id={id} rows={3} value={text} required={required}
        aria-describedby={describedBy(schema, path, errors)} aria-invalid={errors[path] ? true : undefined}
        onChange={(e) => {
          setText(e.target.value);
          const entries = e.target.value.split('\n').map((l) => l.trim()).filter(Boolean)
            .map((l) => [l.slice(0, l.indexOf('=') < 0 ? l.length : l.indexOf('=')), l.includes('=') ? l.slice(l.indexOf('=') + 1) : '']);
          onChange(entries.length ? Object.fromEntries(entries) : undefined);
        }} />
      <Help schema={schema} path={path} errors={errors} />
    </div>
  );
}

function JsonField({ name, schema, path, value, onChange, required, errors }: Props) {
  const [text, setText] = useState(value === undefined ? '' : JSON.stringify(value, null, 2));
  const [bad, setBad] = useState('');
  const id = fieldId(path);
  return (
    <div className="field">
      <label htmlFor={id}>{name} (JSON)</label>
      <textarea id={id} rows={4} value={text} required={required}
        aria-describedby={describedBy(schema, path, errors)} aria-invalid={errors[path] || bad ? true : undefined}
        onChange={(e) => setText(e.target.value)}
        onBlur={() => {
          try {
            onChange(text.trim() ? JSON.parse(text) : undefined);
            setBad('');
          } catch {
            setBad('Not valid JSON');
          }
        }} />
      {bad && <span className="field-error" role="alert">{bad}</span>}
      <Help schema={schema} path={path} errors={errors} />
    </div>
  );
}
