// The kind's OpenAPI v3 schema (/openapi/v3/apis/<group>/<version>): forms are generated
// from it (enums, defaults, required fields, descriptions as help text).
import { api } from './api';
import type { ResourceKind } from './discovery';

export interface Schema {
  type?: string;
  description?: string;
  properties?: Record<string, Schema>;
  additionalProperties?: Schema | boolean;
  items?: Schema;
  required?: string[];
  enum?: unknown[];
  default?: unknown;
  format?: string;
  minimum?: number;
  maximum?: number;
  pattern?: string;
  $ref?: string;
  allOf?: Schema[];
  'x-kubernetes-preserve-unknown-fields'?: boolean;
  'x-kubernetes-int-or-string'?: boolean;
  'x-kubernetes-group-version-kind'?: { group: string; version: string; kind: string }[];
}

interface Document {
  components?: { schemas?: Record<string, Schema> };
}

const documents = new Map<string, Promise<Document>>();

function documentFor(k: ResourceKind): Promise<Document> {
  const path = k.group ? `/openapi/v3/apis/${k.group}/${k.version}` : `/openapi/v3/api/${k.version}`;
  let found = documents.get(path);
  if (!found) {
    found = api<Document>(path);
    documents.set(path, found);
  }
  return found;
}

/** The kind's schema with every $ref replaced by what it points at. */
export async function schemaOf(k: ResourceKind): Promise<Schema | null> {
  const schemas = (await documentFor(k)).components?.schemas ?? {};
  const entry = Object.entries(schemas).find(([name, s]) =>
    s['x-kubernetes-group-version-kind']?.some((g) => g.kind === k.kind && g.group === k.group)
    || name.endsWith(`.${k.kind}`));
  if (!entry) return null;
  const resolve = (s: Schema, depth: number): Schema => {
    if (depth > 20) return {};
    let out = s;
    if (s.$ref) out = { ...(schemas[s.$ref.replace('#/components/schemas/', '')] ?? {}), ...s, $ref: undefined };
    if (out.allOf?.length === 1) out = { ...resolve(out.allOf[0], depth + 1), ...out, allOf: undefined };
    const props = out.properties && Object.fromEntries(
      Object.entries(out.properties).map(([key, v]) => [key, resolve(v, depth + 1)]));
    return {
      ...out,
      properties: props,
      items: out.items && resolve(out.items, depth + 1),
      additionalProperties: typeof out.additionalProperties === 'object'
        ? resolve(out.additionalProperties, depth + 1) : out.additionalProperties,
    };
  };
  return resolve(entry[1], 0);
}

/** A starting value for a schema: its default, else the defaults of its properties
 * (optional objects stay unset: filling in their defaults would ask for them). */
export function initialValue(s: Schema | undefined): unknown {
  if (!s) return undefined;
  if (s.default !== undefined) return structuredClone(s.default);
  if (s.type === 'object' && s.properties) {
    const required = new Set(s.required ?? []);
    const out: Record<string, unknown> = {};
    for (const [key, child] of Object.entries(s.properties)) {
      if (child.type === 'object' && child.default === undefined && !required.has(key)) continue;
      const value = initialValue(child);
      if (value !== undefined) out[key] = value;
    }
    return Object.keys(out).length ? out : undefined;
  }
  return undefined;
}
