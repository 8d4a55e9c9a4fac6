import { KMSClient } from '@aws-sdk/client-kms';
import { SFNClient } from '@aws-sdk/client-sfn';
import { SSMClient } from '@aws-sdk/client-ssm';
import { fromTemporaryCredentials } from '@aws-sdk/credential-providers';
import { type MachineCommands, type MachineSecretStore, SsmMachineSecretStore, SsmRunCommand } from '#bootstrap';
import { type ClusterSpec, type Logger, createLogger } from '#core';
import { KmsSealer, type SecretSealer } from '#encryption';
import { type KilnStore, createStore } from '#store';
import type { KilnConfig } from './config.ts';
import { WorkflowLauncher, type Workflows } from './workflows.ts';

/** A cluster as far as reaching its AWS account and region is concerned. */
export interface ClusterLocation {
  id: string;
  spec: Pick<ClusterSpec, 'region' | 'account'>;
}

/**
 * AWS as one cluster sees it: in the cluster's region, and with `account` in
 * the order, in the tenant's account through the role it trusts Kiln with.
 * Machines read their secrets and run commands there, and the cluster's own
 * KMS key lives there.
 */
export interface ClusterAws {
  /** Wraps secrets under the cluster's own KMS key (its ARN, from the infrastructure step). */
  sealer(keyArn: string): SecretSealer;
  machineSecrets: MachineSecretStore;
  machineCommands: MachineCommands;
}

/** What the API and the workflow steps need; built once per process (Lambda module scope). */
export interface KilnServices {
  config: KilnConfig;
  store: KilnStore;
  workflows: Workflows;
  /** Wraps what Kiln keeps for tenants (PKI, tokens, SSH keys) under Kiln's own sealing key. */
  sealer: SecretSealer;
  inCluster(cluster: ClusterLocation): ClusterAws;
  log: Logger;
}

/** STS sessions are short; the SDK refreshes them before they expire. */
const SESSION_SECONDS = 900;

export function createServices(config: KilnConfig): KilnServices {
  const region = config.AWS_REGION;
  const endpoint = (url: string | undefined) => (url === undefined ? {} : { endpoint: url });
  const sfn = new SFNClient({ region, ...endpoint(config.KILN_STEPFUNCTIONS_ENDPOINT) });
  const kms = new KMSClient({ region, ...endpoint(config.KILN_KMS_ENDPOINT) });

  const clusterClients = new Map<string, ClusterAws>();
  const inCluster = ({ id, spec }: ClusterLocation): ClusterAws => {
    const key = [id, spec.region, spec.account?.roleArn ?? '', spec.account?.externalId ?? ''].join('\n');
    const cached = clusterClients.get(key);
    if (cached !== undefined) return cached;
    const credentials =
      spec.account === undefined
        ? {}
        : {
            credentials: fromTemporaryCredentials({
              params: { RoleArn: spec.account.roleArn, ExternalId: spec.account.externalId, RoleSessionName: `kiln-${id}`, DurationSeconds: SESSION_SECONDS },
              clientConfig: { region: spec.region, ...endpoint(config.KILN_STS_ENDPOINT) },
            }),
          };
    const clusterSsm = new SSMClient({ region: spec.region, ...credentials, ...endpoint(config.KILN_SSM_ENDPOINT) });
    const clusterKms = new KMSClient({ region: spec.region, ...credentials, ...endpoint(config.KILN_KMS_ENDPOINT) });
    const access: ClusterAws = {
      sealer: (keyArn) => new KmsSealer(clusterKms, keyArn),
      machineSecrets: new SsmMachineSecretStore(clusterSsm),
      machineCommands: new SsmRunCommand(clusterSsm, config.KILN_POLL_SECONDS * 1000),
    };
    clusterClients.set(key, access);
    return access;
  };

  return {
    config,
    store: createStore({ tableName: config.KILN_TABLE_NAME, region, ...endpoint(config.KILN_DYNAMODB_ENDPOINT) }),
    workflows: new WorkflowLauncher(sfn, {
      provision: config.KILN_PROVISION_STATE_MACHINE_ARN,
      deprovision: config.KILN_DEPROVISION_STATE_MACHINE_ARN,
      update: config.KILN_UPDATE_STATE_MACHINE_ARN,
      'rotate-encryption-key': config.KILN_ROTATE_ENCRYPTION_KEY_STATE_MACHINE_ARN,
    }),
    sealer: new KmsSealer(kms, config.KILN_SEALING_KEY_ID),
    inCluster,
    log: createLogger(config.KILN_LOG_LEVEL, { service: 'kiln' }),
  };
}
