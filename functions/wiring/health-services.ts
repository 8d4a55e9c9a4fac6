import { AutoScalingClient } from '@aws-sdk/client-auto-scaling';
import { EC2Client } from '@aws-sdk/client-ec2';
import { SSMClient } from '@aws-sdk/client-ssm';
import { type MachineCommands, type MachineSecretStore, SsmMachineSecretStore, SsmRunCommand } from '#bootstrap';
import { AwsMachineFleet, type HealthPollServices, type MachineFleet, type RemediationServices } from '#health';
import type { KilnConfig } from './config.ts';
import { clusterCredentials } from './cluster-credentials.ts';
import { createServices, endpointOf } from './services.ts';

/** The health poller's services: the API's, plus each cluster's machines through Auto Scaling and EC2 in its own account and region. */
export function createHealthServices(config: KilnConfig): HealthPollServices {
  const fleets = new Map<string, { fleet: MachineFleet }>();
  return {
    ...createServices(config),
    inCluster: ({ id, spec }) => {
      const key = [id, spec.region, spec.account?.roleArn ?? '', spec.account?.externalId ?? ''].join('\n');
      const cached = fleets.get(key);
      if (cached !== undefined) return cached;
      const options = { region: spec.region, ...clusterCredentials(config, { id, spec }), ...endpointOf(config.KILN_EC2_ENDPOINT) };
      const access = { fleet: new AwsMachineFleet(new AutoScalingClient(options), new EC2Client(options)) };
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
export function createRemediationServices(config: KilnConfig): RemediationServices {
  const health = createHealthServices(config);
  const machines = new Map<string, { machineSecrets: MachineSecretStore; machineCommands: MachineCommands }>();
  return {
    ...health,
    pollSeconds: config.KILN_POLL_SECONDS,
    inCluster: (cluster) => {
      const { id, spec } = cluster;
      const key = [id, spec.region, spec.account?.roleArn ?? '', spec.account?.externalId ?? ''].join('\n');
      let access = machines.get(key);
      if (access === undefined) {
        const ssm = new SSMClient({ region: spec.region, ...clusterCredentials(config, { id, spec }), ...endpointOf(config.KILN_SSM_ENDPOINT) });
        access = { machineSecrets: new SsmMachineSecretStore(ssm), machineCommands: new SsmRunCommand(ssm, config.KILN_POLL_SECONDS * 1000) };
        machines.set(key, access);
      }
      return { ...health.inCluster(cluster), ...access };
    },
  };
}
