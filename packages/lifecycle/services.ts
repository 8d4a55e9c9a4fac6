import { KMSClient } from '@aws-sdk/client-kms';
import { SFNClient } from '@aws-sdk/client-sfn';
import { SSMClient } from '@aws-sdk/client-ssm';
import { type MachineCommands, type MachineSecretStore, SsmMachineSecretStore, SsmRunCommand } from '#bootstrap';
import { type Logger, createLogger } from '#core';
import { KmsSealer, type SecretSealer } from '#encryption';
import { type KilnStore, createStore } from '#store';
import type { KilnConfig } from './config.ts';
import { WorkflowLauncher, type Workflows } from './workflows.ts';

/** What the API and the workflow steps need; built once per process (Lambda module scope). */
export interface KilnServices {
  config: KilnConfig;
  store: KilnStore;
  workflows: Workflows;
  sealer: SecretSealer;
  machineSecrets: MachineSecretStore;
  machineCommands: MachineCommands;
  log: Logger;
}

export function createServices(config: KilnConfig): KilnServices {
  const region = config.AWS_REGION;
  const sfn = new SFNClient({ region, ...(config.KILN_STEPFUNCTIONS_ENDPOINT === undefined ? {} : { endpoint: config.KILN_STEPFUNCTIONS_ENDPOINT }) });
  const ssm = new SSMClient({ region, ...(config.KILN_SSM_ENDPOINT === undefined ? {} : { endpoint: config.KILN_SSM_ENDPOINT }) });
  const kms = new KMSClient({ region, ...(config.KILN_KMS_ENDPOINT === undefined ? {} : { endpoint: config.KILN_KMS_ENDPOINT }) });
  return {
    config,
    store: createStore({ tableName: config.KILN_TABLE_NAME, region, ...(config.KILN_DYNAMODB_ENDPOINT === undefined ? {} : { endpoint: config.KILN_DYNAMODB_ENDPOINT }) }),
    workflows: new WorkflowLauncher(sfn, {
      provision: config.KILN_PROVISION_STATE_MACHINE_ARN,
      deprovision: config.KILN_DEPROVISION_STATE_MACHINE_ARN,
      update: config.KILN_UPDATE_STATE_MACHINE_ARN,
      'rotate-encryption-key': config.KILN_ROTATE_ENCRYPTION_KEY_STATE_MACHINE_ARN,
    }),
    sealer: new KmsSealer(kms, config.KILN_SEALING_KEY_ID),
    machineSecrets: new SsmMachineSecretStore(ssm),
    machineCommands: new SsmRunCommand(ssm, config.KILN_POLL_SECONDS * 1000),
    log: createLogger(config.KILN_LOG_LEVEL, { service: 'kiln' }),
  };
}
