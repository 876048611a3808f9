// What the navigation needs to decide which task pages to link (kept apart from the pages'
// helpers in common.tsx so that the first load carries only this): which services the
// server serves (discovery) and what the user may do there (SelfSubjectAccessReview, with
// subresources and names).
import { useEffect, useState } from 'react';
import { api } from '../../lib/api';
import type { ResourceKind } from '../../lib/discovery';

export const TENANCY = 'tenancy.scs.community';
export const IAAS = 'iaas.scs.community';
export const KAAS = 'kaas.scs.community';
export const IAM = 'iam.scs.community';
export const STATUS = 'status.scs.community';
export const METERING = 'metering.scs.community';

/** The served kind of a group's resource (any version), or undefined when the service
 * behind it is not enabled: the task pages and their links appear only then. */
export function served(kinds: ResourceKind[], group: string, resource: string): ResourceKind | undefined {
  return kinds.find((k) => k.group === group && k.resource === resource);
}

interface Access {
  verb: string;
  kind: ResourceKind;
  namespace?: string;
  subresource?: string;
  name?: string;
}

const decisions = new Map<string, Promise<boolean>>();

/** SelfSubjectAccessReview that also names a subresource or an object (the generic can()
 * does not: a kubeconfig download is `create clusters/kubeconfig`). Cached per page load. */
export function allowed({ verb, kind, namespace = '', subresource = '', name = '' }: Access): Promise<boolean> {
  const ns = kind.namespaced ? namespace : '';
  const key = [verb, kind.group, kind.resource, subresource, ns, name].join(' ');
  let found = decisions.get(key);
  if (!found) {
    found = api<{ status?: { allowed?: boolean } }>('/apis/authorization.k8s.io/v1/selfsubjectaccessreviews', {
      method: 'POST',
      body: {
        apiVersion: 'authorization.k8s.io/v1', kind: 'SelfSubjectAccessReview',
        spec: { resourceAttributes: { verb, group: kind.group, resource: kind.resource, subresource, namespace: ns, name } },
      },
    }).then((r) => r.status?.allowed === true, () => false);
    decisions.set(key, found);
  }
  return found;
}

/** `allowed` as state: null while the server has not answered (render no button yet). */
export function useAllowed(access: Access | null): boolean | null {
  const [ok, setOk] = useState<boolean | null>(null);
  const key = access ? [access.verb, access.kind.group, access.kind.resource, access.subresource,
    access.namespace, access.name].join(' ') : '';
  useEffect(() => {
    let live = true;
    setOk(null);
    if (access) allowed(access).then((v) => live && setOk(v));
    return () => { live = false; };
  }, [key]);
  return ok;
}
