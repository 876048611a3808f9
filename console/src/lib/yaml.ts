// The YAML view of an object (what `kubectl get -o yaml` shows, without managedFields).
import { dump } from 'js-yaml';

export function toYaml(obj: unknown): string {
  const copy = structuredClone(obj) as { metadata?: { managedFields?: unknown } };
  if (copy?.metadata) delete copy.metadata.managedFields;
  return dump(copy, { noRefs: true, lineWidth: 120 });
}
