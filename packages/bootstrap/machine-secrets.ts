import { DeleteParametersCommand, GetParametersByPathCommand, PutParameterCommand, type SSMClient } from '@aws-sdk/client-ssm';

/**
 * Where machines fetch their join material at boot, with their instance
 * role: never inside user data, which anyone who can describe the instance
 * can read. Paths are per cluster and per role, so an IAM policy can give a
 * worker only the worker path.
 */
export interface MachineSecretStore {
  /** `kmsKeyId`: the cluster's own key, so only that cluster's machines can decrypt. */
  publish(clusterId: string, role: 'control-plane' | 'worker', name: string, value: string, kmsKeyId?: string): Promise<void>;
  /** Removes everything of a cluster (after join, or when it is deleted). */
  revoke(clusterId: string): Promise<void>;
}

export function machineSecretPath(clusterId: string, role?: 'control-plane' | 'worker', name?: string): string {
  return ['', 'kiln', clusterId, ...(role === undefined ? [] : [role]), ...(name === undefined ? [] : [name])].join('/');
}

/** AWS Systems Manager Parameter Store: SecureString parameters encrypted with the cluster's KMS key. */
export class SsmMachineSecretStore implements MachineSecretStore {
  constructor(private readonly ssm: SSMClient) {}

  async publish(clusterId: string, role: 'control-plane' | 'worker', name: string, value: string, kmsKeyId?: string): Promise<void> {
    await this.ssm.send(
      new PutParameterCommand({
        Name: machineSecretPath(clusterId, role, name),
        Value: value,
        Type: 'SecureString',
        Overwrite: true,
        Tier: value.length > 4096 ? 'Advanced' : 'Standard',
        ...(kmsKeyId === undefined ? {} : { KeyId: kmsKeyId }),
      }),
    );
  }

  async revoke(clusterId: string): Promise<void> {
    let nextToken: string | undefined;
    do {
      const page = await this.ssm.send(
        new GetParametersByPathCommand({ Path: machineSecretPath(clusterId), Recursive: true, WithDecryption: false, NextToken: nextToken }),
      );
      const names = (page.Parameters ?? []).flatMap((parameter) => (parameter.Name === undefined ? [] : [parameter.Name]));
      for (let index = 0; index < names.length; index += 10) {
        await this.ssm.send(new DeleteParametersCommand({ Names: names.slice(index, index + 10) }));
      }
      nextToken = page.NextToken;
    } while (nextToken !== undefined);
  }
}
