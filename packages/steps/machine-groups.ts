import type { ClusterRecord } from '#store';

// The steps' services hold the fleet (context.ts) and the machine targets read it: its types are in neither.
/** The Auto Scaling groups of a cluster, by role and pool, as the infrastructure step recorded them. */
export type MachineGroupNames = NonNullable<ClusterRecord['machineGroups']>;

/** An instance its cluster's Auto Scaling group holds, as the health poll's fleet describes it. */
export interface GroupMember {
  instanceId: string;
  group: { role: 'control-plane' } | { role: 'worker'; pool: string };
}

/** The instances in a cluster's Auto Scaling groups now (production: the health poll's AwsMachineFleet). */
export interface GroupMembers {
  machines(groups: MachineGroupNames): Promise<readonly GroupMember[]>;
}
