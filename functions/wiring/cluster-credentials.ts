import { fromTemporaryCredentials } from '@aws-sdk/credential-providers';
import type { ClusterSpec } from '#core';
import type { KilnConfig } from './config.ts';
import { endpointOf } from './services.ts';

/** STS sessions are short; the SDK refreshes them before they expire. */
const SESSION_SECONDS = 900;

/**
 * Credentials for calls in a cluster's own account: none (Kiln's own) unless
 * the order names the tenant's role, which Kiln assumes with its external ID.
 */
export function clusterCredentials(config: KilnConfig, { id, spec }: { id: string; spec: Pick<ClusterSpec, 'account' | 'region'> }) {
  return spec.account === undefined
    ? {}
    : {
        credentials: fromTemporaryCredentials({
          params: { RoleArn: spec.account.roleArn, ExternalId: spec.account.externalId, RoleSessionName: `kiln-${id}`, DurationSeconds: SESSION_SECONDS },
          clientConfig: { region: spec.region, ...endpointOf(config.KILN_STS_ENDPOINT) },
        }),
      };
}
