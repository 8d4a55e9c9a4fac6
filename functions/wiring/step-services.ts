import { AutoScalingClient } from '@aws-sdk/client-auto-scaling';
import { EC2Client } from '@aws-sdk/client-ec2';
import { KMSClient } from '@aws-sdk/client-kms';
import { SSMClient } from '@aws-sdk/client-ssm';
import { fromTemporaryCredentials } from '@aws-sdk/credential-providers';
import { SsmMachineSecretStore, SsmRunCommand } from '#bootstrap';
import { KmsSealer } from '#encryption';
import { AwsMachineFleet } from '#health';
import type { ClusterAws, ClusterLocation, StepServices } from '#steps';
import type { KilnConfig } from './config.ts';
import { createServices, endpointOf } from './services.ts';

/** STS sessions are short; the SDK refreshes them before they expire. */
const SESSION_SECONDS = 900;

/** The workflow steps' services: the API's, plus each cluster's own AWS (its region, and its account through the tenant's role). */
export function createStepServices(config: KilnConfig): StepServices {
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
              clientConfig: { region: spec.region, ...endpointOf(config.KILN_STS_ENDPOINT) },
            }),
          };
    const clusterSsm = new SSMClient({ region: spec.region, ...credentials, ...endpointOf(config.KILN_SSM_ENDPOINT) });
    const clusterKms = new KMSClient({ region: spec.region, ...credentials, ...endpointOf(config.KILN_KMS_ENDPOINT) });
    const access: ClusterAws = {
      sealer: (keyArn) => new KmsSealer(clusterKms, keyArn),
      machineSecrets: new SsmMachineSecretStore(clusterSsm),
      machineCommands: new SsmRunCommand(clusterSsm, config.KILN_POLL_SECONDS * 1000),
      fleet: new AwsMachineFleet(
        new AutoScalingClient({ region: spec.region, ...credentials, ...endpointOf(config.KILN_EC2_ENDPOINT) }),
        new EC2Client({ region: spec.region, ...credentials, ...endpointOf(config.KILN_EC2_ENDPOINT) }),
      ),
    };
    clusterClients.set(key, access);
    return access;
  };
  return { ...createServices(config), inCluster, pollSeconds: config.KILN_POLL_SECONDS };
}
