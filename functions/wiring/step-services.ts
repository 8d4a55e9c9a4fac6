import { KMSClient } from '@aws-sdk/client-kms';
import { KmsSealer } from '#encryption';
import type { ClusterAws, ClusterLocation, StepServices } from '#steps';
import type { KilnConfig } from './config.ts';
import { clusterCredentials, clusterFleet, clusterMachines, clusterPlaceKey } from './cluster-credentials.ts';
import { type Observability, createObservability } from './observability.ts';
import { createServices, awsClientOptions } from './services.ts';

/** The workflow steps' services: the API's, plus each cluster's own AWS (its region, and its account through the tenant's role). */
export function createStepServices(config: KilnConfig, observability: Observability = createObservability(config)): StepServices {
  const clusterClients = new Map<string, ClusterAws>();
  const inCluster = ({ id, spec }: ClusterLocation): ClusterAws => {
    const key = clusterPlaceKey({ id, spec });
    const cached = clusterClients.get(key);
    if (cached !== undefined) return cached;
    const credentials = clusterCredentials(config, { id, spec });
    const clusterKms = new KMSClient({ region: spec.region, ...credentials, ...awsClientOptions(config.KILN_KMS_ENDPOINT) });
    const access: ClusterAws = {
      sealer: (keyArn) => new KmsSealer(() => Promise.resolve(clusterKms), keyArn),
      ...clusterMachines(config, { id, spec }),
      fleet: clusterFleet(config, { id, spec }),
    };
    clusterClients.set(key, access);
    return access;
  };
  return { ...createServices(config, observability), inCluster, pollSeconds: config.KILN_POLL_SECONDS, kilnEgressCidrs: config.KILN_EGRESS_CIDRS };
}
