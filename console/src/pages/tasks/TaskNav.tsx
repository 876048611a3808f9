// The task pages in the navigation: each link only when the service behind it is served
// (discovery) and RBAC lets the user use it (SelfSubjectAccessReview).
import { useConsole } from '../../lib/context';
import { linkProps } from '../../lib/router';
import { IAAS, KAAS, METERING, served, STATUS, TENANCY, useAllowed } from './access';

export function TaskNav() {
  const { kinds, namespace } = useConsole();
  const tenants = served(kinds, TENANCY, 'tenants');
  const servers = served(kinds, IAAS, 'servers');
  const clusters = served(kinds, KAAS, 'clusters');
  const components = served(kinds, STATUS, 'components');
  const usage = served(kinds, METERING, 'usagerecords');
  const onboard = useAllowed(tenants ? { verb: 'create', kind: tenants } : null);
  // in the chosen namespace, or across all of them ('' asks about every namespace)
  const listServers = useAllowed(servers ? { verb: 'list', kind: servers, namespace } : null);
  const listClusters = useAllowed(clusters ? { verb: 'list', kind: clusters, namespace } : null);
  const readStatus = useAllowed(components ? { verb: 'list', kind: components } : null);
  const ns = namespace ? `?namespace=${encodeURIComponent(namespace)}` : '';
  const links: [string, string][] = [];
  if (onboard) links.push(['/console/tasks/onboarding', 'Tenant onboarding']);
  if (tenants) links.push([`/console/tasks/tenants${ns}`, 'Tenant overview']);
  if (listServers) links.push([`/console/tasks/servers${ns}`, 'Servers']);
  if (listClusters) links.push([`/console/tasks/clusters${ns}`, 'Clusters']);
  if (readStatus) links.push(['/console/tasks/status', 'Status']);
  if (usage && tenants) links.push([`/console/tasks/usage${ns}`, 'Usage']);
  // settled: every review asked has been answered (the browser tests wait for it)
  const settled = ![[tenants, onboard], [servers, listServers], [clusters, listClusters],
    [components, readStatus]].some(([asked, answer]) => asked && answer === null);
  if (!links.length) return settled ? <span hidden data-testid="task-nav" data-settled="true" /> : null;
  return (
    <section>
      <h2>Tasks</h2>
      <ul data-testid="task-nav" data-settled={settled}>
        {links.map(([to, label]) => <li key={to}><a {...linkProps(to)}>{label}</a></li>)}
      </ul>
    </section>
  );
}
