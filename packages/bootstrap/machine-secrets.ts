import { DeleteParametersCommand, GetParametersByPathCommand, PutParameterCommand, type SSMClient, TooManyUpdates } from '@aws-sdk/client-ssm';

type Role = 'control-plane' | 'worker';

/**
 * Where machines fetch their join material at boot, with their instance
 * role: never inside user data, which anyone who can describe the instance
 * can read. Paths are per cluster and per role, so an IAM policy can give a
 * worker only the worker path.
 */
export interface MachineSecretStore {
  /** `kmsKeyId`: the cluster's own key, so only that cluster's machines can decrypt. */
  publish(clusterId: string, role: Role, name: string, value: string, kmsKeyId?: string): Promise<void>;
  /**
   * Publishes a value with no earlier version of the parameter kept: SSM keeps every version a parameter had, readable as
   * `name:version` by whoever may read the name, until the parameter is deleted. For values that replace a secret.
   */
  publishWithoutHistory(clusterId: string, role: Role, name: string, value: string, kmsKeyId?: string): Promise<void>;
  /** Deletes these parameters, every version of each; one that does not exist is no error. */
  withdraw(clusterId: string, parameters: readonly { role: Role; name: string }[]): Promise<void>;
  /** Removes everything of a cluster (when it is deleted). */
  revoke(clusterId: string): Promise<void>;
}

export function machineSecretPath(clusterId: string, role?: Role, name?: string): string {
  return ['', 'kiln', clusterId, ...(role === undefined ? [] : [role]), ...(name === undefined ? [] : [name])].join('/');
}

/**
 * How long a put keeps trying while SSM still deletes the name: "After deleting a parameter, wait for at least 30
 * seconds to create a parameter with the same name" (docs.aws.amazon.com/systems-manager/latest/APIReference/API_DeleteParameter.html).
 */
const RECREATE_DEADLINE_MS = 45_000;
const RECREATE_FIRST_WAIT_MS = 1_000;
const RECREATE_LONGEST_WAIT_MS = 5_000;

/** AWS Systems Manager Parameter Store: SecureString parameters encrypted with the cluster's KMS key. */
export class SsmMachineSecretStore implements MachineSecretStore {
  constructor(private readonly ssm: SSMClient) {}

  async publish(clusterId: string, role: Role, name: string, value: string, kmsKeyId?: string): Promise<void> {
    const put = new PutParameterCommand({
      Name: machineSecretPath(clusterId, role, name),
      Value: value,
      Type: 'SecureString',
      Overwrite: true,
      Tier: value.length > 4096 ? 'Advanced' : 'Standard',
      ...(kmsKeyId === undefined ? {} : { KeyId: kmsKeyId }),
    });
    // A name withdrawn moments ago (the last operation's join token) is taken again once SSM has finished deleting it.
    const deadline = Date.now() + RECREATE_DEADLINE_MS;
    for (let wait = RECREATE_FIRST_WAIT_MS; ; wait = Math.min(2 * wait, RECREATE_LONGEST_WAIT_MS)) {
      try {
        await this.ssm.send(put);
        return;
      } catch (error) {
        if (!(error instanceof TooManyUpdates) || Date.now() + wait > deadline) throw error;
        await new Promise((resolve) => setTimeout(resolve, wait));
      }
    }
  }

  async publishWithoutHistory(clusterId: string, role: Role, name: string, value: string, kmsKeyId?: string): Promise<void> {
    await this.withdraw(clusterId, [{ role, name }]);
    await this.publish(clusterId, role, name, value, kmsKeyId);
  }

  async withdraw(clusterId: string, parameters: readonly { role: Role; name: string }[]): Promise<void> {
    const names = parameters.map(({ role, name }) => machineSecretPath(clusterId, role, name));
    for (let index = 0; index < names.length; index += 10) {
      await this.ssm.send(new DeleteParametersCommand({ Names: names.slice(index, index + 10) }));
    }
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
