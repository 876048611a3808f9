// What the user may do, asked of the server itself so that buttons exist only where the
// action would be allowed (the server still decides every request).
import { api } from './api';
import type { ResourceKind } from './discovery';

interface AccessReview {
  status?: { allowed?: boolean };
}

const cache = new Map<string, Promise<boolean>>();

/** SelfSubjectAccessReview for one verb on a kind (cached for this page load). */
export function can(verb: string, k: ResourceKind, namespace?: string): Promise<boolean> {
  const ns = k.namespaced ? namespace ?? '' : '';
  const key = `${verb} ${k.group} ${k.resource} ${ns}`;
  let found = cache.get(key);
  if (!found) {
    found = api<AccessReview>('/apis/authorization.k8s.io/v1/selfsubjectaccessreviews', {
      method: 'POST',
      body: {
        apiVersion: 'authorization.k8s.io/v1',
        kind: 'SelfSubjectAccessReview',
        spec: { resourceAttributes: { verb, group: k.group, resource: k.resource, namespace: ns } },
      },
    }).then((r) => r.status?.allowed === true, () => false);
    cache.set(key, found);
  }
  return found;
}

export interface ResourceRule {
  verbs: string[];
  apiGroups?: string[];
  resources?: string[];
  resourceNames?: string[];
}

/** SelfSubjectRulesReview: the rules that apply in a namespace (for the navigation). */
export async function rulesIn(namespace: string): Promise<ResourceRule[]> {
  const review = await api<{ status?: { resourceRules?: ResourceRule[] } }>(
    '/apis/authorization.k8s.io/v1/selfsubjectrulesreviews', {
      method: 'POST',
      body: { apiVersion: 'authorization.k8s.io/v1', kind: 'SelfSubjectRulesReview', spec: { namespace } },
    });
  return review.status?.resourceRules ?? [];
}

export function allows(rules: ResourceRule[], verb: string, k: ResourceKind): boolean {
  const has = (list: string[] | undefined, value: string) => !!list && (list.includes('*') || list.includes(value));
  return rules.some((r) => has(r.verbs, verb) && has(r.apiGroups, k.group) && has(r.resources, k.resource));
}

export function forgetAccess(): void {
  cache.clear();
}
