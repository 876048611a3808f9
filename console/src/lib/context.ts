// What every page can read: the served kinds, who is logged in, the current namespace.
import { createContext, useContext } from 'react';
import type { ResourceKind } from './discovery';
import type { UserInfo } from './whoami';

export interface ConsoleState {
  kinds: ResourceKind[];
  user: UserInfo;
  namespace: string; // '' = all namespaces the user may list
  setNamespace: (namespace: string) => void;
}

export const ConsoleContext = createContext<ConsoleState | null>(null);

export function useConsole(): ConsoleState {
  const state = useContext(ConsoleContext);
  if (!state) throw new Error('useConsole outside the console layout');
  return state;
}

/** The kind named by a route's group/version/resource ("core" for the core group). */
export function findKind(kinds: ResourceKind[], group: string, version: string, resource: string) {
  const g = group === 'core' ? '' : group;
  return kinds.find((k) => k.group === g && k.version === version && k.resource === resource);
}

export function kindRoute(k: ResourceKind, suffix = '', namespace = ''): string {
  const base = `/console/r/${k.group || 'core'}/${k.version}/${k.resource}${suffix}`;
  return namespace && k.namespaced ? `${base}?namespace=${encodeURIComponent(namespace)}` : base;
}
