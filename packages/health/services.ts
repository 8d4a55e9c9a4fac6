import type { ClusterSpec } from '#core';
import type { KilnServices } from '#services';
import type { MachineFleet } from './fleet.ts';

// In a module of its own: the poll and the remediation it starts both take it, and neither imports the other for it.
export interface HealthPollServices extends KilnServices {
  inCluster(cluster: { id: string; spec: Pick<ClusterSpec, 'region' | 'account'> }): { fleet: MachineFleet };
}
