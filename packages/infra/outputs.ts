import { z } from 'zod';

/**
 * What one cluster's infrastructure stack exports. The provision workflow
 * stores it on the operation and the bootstrap step reads it, so it carries
 * identifiers only, never secrets.
 */
export const InfrastructureOutputs = z.strictObject({
  vpcId: z.string().min(1),
  privateSubnetIds: z.array(z.string().min(1)).min(1),
  apiHost: z.string().min(1).describe('DNS name of the API load balancer.'),
  apiEndpoint: z.url().describe('The Kubernetes API URL clients and nodes use.'),
  kmsKeyArn: z.string().regex(/^arn:aws[a-z-]*:kms:[a-z0-9-]+:\d{12}:key\/[0-9a-f-]{36}$/, 'must be a KMS key ARN'),
  controlPlane: z.strictObject({
    asgName: z.string().min(1),
    replicas: z.int().min(1),
  }),
  nodePools: z.array(
    z.strictObject({
      name: z.string().min(1),
      asgName: z.string().min(1),
      size: z.int().min(0),
    }),
  ),
});
export type InfrastructureOutputs = z.infer<typeof InfrastructureOutputs>;
