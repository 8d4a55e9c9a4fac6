/**
 * Names Kiln's AWS identities share between the cluster program (which creates the machines' roles and tags) and the
 * deployment's IAM policies (sst.config.ts, through functions/permissions.ts), so a policy scoped by one matches what
 * the other creates.
 */

/** Every resource of a cluster carries its tenant and cluster ids as tags; policies scope Kiln's calls by the second. */
export const TENANT_TAG = 'kiln:tenant-id';
export const CLUSTER_TAG = 'kiln:cluster-id';

/** The IAM path of every role and instance profile Kiln creates for machines: the runner may manage IAM only there. */
export const KILN_IAM_PATH = '/kiln/';

/** What the SSM agent needs to receive Run Command and nothing else (AmazonSSMManagedInstanceCore without parameter and document reads). */
export const SSM_AGENT_ACTIONS = [
  'ssm:UpdateInstanceInformation',
  'ssmmessages:CreateControlChannel',
  'ssmmessages:CreateDataChannel',
  'ssmmessages:OpenControlChannel',
  'ssmmessages:OpenDataChannel',
  'ec2messages:AcknowledgeMessage',
  'ec2messages:DeleteMessage',
  'ec2messages:FailMessage',
  'ec2messages:GetEndpoint',
  'ec2messages:GetMessages',
  'ec2messages:SendReply',
] as const;
