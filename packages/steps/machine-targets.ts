import type { CoreV1Api } from '@kubernetes/client-node';
import { instanceIdOf } from '#bootstrap';
import { StepError } from '#core';
import type { ClusterRecord } from '#store';
import type { StepServices } from './context.ts';
import type { GroupMember, MachineGroupNames } from './machine-groups.ts';


/** The Auto Scaling groups the infrastructure step recorded for the cluster; a step that needs them fails without. */
export function machineGroupsOf(cluster: Pick<ClusterRecord, 'machineGroups'>, step: string): MachineGroupNames {
  if (cluster.machineGroups === undefined) throw new StepError(step, 'The cluster records no Auto Scaling groups.', false);
  return cluster.machineGroups;
}

/**
 * The control plane machines Kiln may send commands to, by their Nodes' names, sorted: instances of the cluster's
 * control plane group, and nothing else. Anyone with cluster-admin can write a Node with any providerID (another
 * tenant's machine in a shared account), so a Node only says which member of the group it is, never where to send.
 */
export function controlPlaneTargets(members: readonly GroupMember[], nodes: readonly { name: string; providerID?: string | undefined }[]): Map<string, string> {
  const own = new Set(members.filter((member) => member.group.role === 'control-plane').map((member) => member.instanceId));
  return new Map(
    nodes
      .map((node) => [node.name, instanceIdOf(node.providerID) ?? ''] as const)
      .filter(([name, instanceId]) => name !== '' && own.has(instanceId))
      .sort(([a], [b]) => a.localeCompare(b)),
  );
}

/** The cluster's control plane machines a step sends commands to: its group's members, named by their Nodes. */
export async function controlPlaneMachines(services: StepServices, cluster: ClusterRecord, core: CoreV1Api, step: string): Promise<Map<string, string>> {
  const [members, nodes] = await Promise.all([
    services.inCluster(cluster).fleet.machines(machineGroupsOf(cluster, step)),
    core.listNode({ labelSelector: 'node-role.kubernetes.io/control-plane' }),
  ]);
  return controlPlaneTargets(
    members,
    nodes.items.map((node) => ({ name: node.metadata?.name ?? '', providerID: node.spec?.providerID })),
  );
}
