import { AutoScalingClient } from '@aws-sdk/client-auto-scaling';
import { EC2Client } from '@aws-sdk/client-ec2';
import { SSMClient } from '@aws-sdk/client-ssm';
import { fromTemporaryCredentials } from '@aws-sdk/credential-providers';
import { type MachineCommands, type MachineSecretStore, SsmMachineSecretStore, SsmRunCommand } from '#bootstrap';
import type { ClusterSpec } from '#core';
import { AwsMachineFleet } from '#health';
import type { KilnConfig } from './config.ts';
import { awsClientOptions } from './services.ts';

/** STS sessions are short; the SDK refreshes them before they expire. */
const SESSION_SECONDS = 900;

/**
 * Credentials for calls in a cluster's own account: none (Kiln's own) unless
 * the order names the tenant's role, which Kiln assumes with its external ID.
 */
type ClusterPlace = { id: string; spec: Pick<ClusterSpec, 'account' | 'region'> };

/** One cache key per place a cluster's AWS lives: the cluster, its region, and the tenant role Kiln assumes there. */
export function clusterPlaceKey({ id, spec }: ClusterPlace): string {
  return [id, spec.region, spec.account?.roleArn ?? '', spec.account?.externalId ?? ''].join('\n');
}

export function clusterCredentials(config: KilnConfig, { id, spec }: ClusterPlace) {
  return spec.account === undefined
    ? {}
    : {
        credentials: fromTemporaryCredentials({
          params: { RoleArn: spec.account.roleArn, ExternalId: spec.account.externalId, RoleSessionName: `kiln-${id}`, DurationSeconds: SESSION_SECONDS },
          clientConfig: { region: spec.region, ...awsClientOptions(config.KILN_STS_ENDPOINT) },
        }),
      };
}

/** The cluster's machines through SSM in its account and region: the parameters they read, and Run Command. */
export function clusterMachines(config: KilnConfig, place: ClusterPlace): { machineSecrets: MachineSecretStore; machineCommands: MachineCommands } {
  const ssm = new SSMClient({ region: place.spec.region, ...clusterCredentials(config, place), ...awsClientOptions(config.KILN_SSM_ENDPOINT) });
  return { machineSecrets: new SsmMachineSecretStore(ssm), machineCommands: new SsmRunCommand(ssm, config.KILN_POLL_SECONDS * 1000) };
}

/** The cluster's Auto Scaling groups and their instances through Auto Scaling and EC2 in its account and region. */
export function clusterFleet(config: KilnConfig, place: ClusterPlace): AwsMachineFleet {
  const options = { region: place.spec.region, ...clusterCredentials(config, place), ...awsClientOptions(config.KILN_EC2_ENDPOINT) };
  return new AwsMachineFleet(new AutoScalingClient(options), new EC2Client(options));
}
