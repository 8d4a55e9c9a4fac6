import type { MachineCommands, MachineSecretStore } from '#bootstrap';
import { type HealthPollServices, type MachineFleet, type RemediationServices } from '#health';
import type { KilnConfig } from './config.ts';
import { clusterFleet, clusterMachines, clusterPlaceKey } from './cluster-credentials.ts';
import { type Observability, createObservability } from './observability.ts';
import { createServices } from './services.ts';

/** The health poller's services: the API's, plus each cluster's machines through Auto Scaling and EC2 in its own account and region. */
export function createHealthServices(config: KilnConfig, observability: Observability = createObservability(config)): HealthPollServices {
  const fleets = new Map<string, { fleet: MachineFleet }>();
  return {
    ...createServices(config, observability),
    inCluster: ({ id, spec }) => {
      const key = clusterPlaceKey({ id, spec });
      const cached = fleets.get(key);
      if (cached !== undefined) return cached;
      const access = { fleet: clusterFleet(config, { id, spec }) };
      fleets.set(key, access);
      return access;
    },
  };
}

/**
 * The remediation steps' services: the poller's, plus the cluster's machine
 * secrets and Run Command through SSM (fresh join tokens, etcd membership),
 * and how often they look again.
 */
export function createRemediationServices(config: KilnConfig, observability: Observability = createObservability(config)): RemediationServices {
  const health = createHealthServices(config, observability);
  const machines = new Map<string, { machineSecrets: MachineSecretStore; machineCommands: MachineCommands }>();
  return {
    ...health,
    pollSeconds: config.KILN_POLL_SECONDS,
    inCluster: (cluster) => {
      const key = clusterPlaceKey(cluster);
      let access = machines.get(key);
      if (access === undefined) {
        access = clusterMachines(config, cluster);
        machines.set(key, access);
      }
      return { ...health.inCluster(cluster), ...access };
    },
  };
}
