import { GetCommandInvocationCommand, InvocationDoesNotExist, SendCommandCommand, type SSMClient } from '@aws-sdk/client-ssm';

export interface CommandResult {
  ok: boolean;
  /** The end of what the command printed, for the operation record; scripts print no secrets. */
  output: string;
}

/** Runs a command on one machine and waits for it; how Kiln acts on a machine after boot. */
export interface MachineCommands {
  run(instanceId: string, command: readonly string[], timeoutSeconds: number): Promise<CommandResult>;
}

/** The EC2 instance id from a node's providerID (`aws:///eu-central-1a/i-0abc…`). */
export function instanceIdOf(providerId: string | undefined): string | undefined {
  return /\/(i-[0-9a-f]+)$/.exec(providerId ?? '')?.[1];
}

function shellQuote(word: string): string {
  return /^[\w@%+=:,./-]+$/.test(word) ? word : `'${word.replaceAll("'", `'\\''`)}'`;
}

const TERMINAL = new Set(['Success', 'Failed', 'Cancelled', 'TimedOut']);

/** AWS Systems Manager Run Command with the AWS-RunShellScript document. */
export class SsmRunCommand implements MachineCommands {
  constructor(
    private readonly ssm: SSMClient,
    private readonly pollMs = 2_000,
  ) {}

  async run(instanceId: string, command: readonly string[], timeoutSeconds: number): Promise<CommandResult> {
    const sent = await this.ssm.send(
      new SendCommandCommand({
        InstanceIds: [instanceId],
        DocumentName: 'AWS-RunShellScript',
        Parameters: { commands: [command.map(shellQuote).join(' ')], executionTimeout: [String(timeoutSeconds)] },
        TimeoutSeconds: Math.max(30, timeoutSeconds),
      }),
    );
    const commandId = sent.Command?.CommandId;
    if (commandId === undefined) throw new Error('SSM accepted no command');
    const deadline = Date.now() + (timeoutSeconds + 60) * 1000;
    while (Date.now() < deadline) {
      try {
        const invocation = await this.ssm.send(new GetCommandInvocationCommand({ CommandId: commandId, InstanceId: instanceId }));
        if (TERMINAL.has(invocation.Status ?? '')) {
          const output = `${invocation.StandardOutputContent ?? ''}${invocation.StandardErrorContent ?? ''}`;
          return { ok: invocation.Status === 'Success', output: output.slice(-500) };
        }
      } catch (error) {
        // Right after SendCommand the invocation may not be visible yet.
        if (!(error instanceof InvocationDoesNotExist)) throw error;
      }
      await new Promise((resolve) => setTimeout(resolve, this.pollMs));
    }
    return { ok: false, output: `no result within ${timeoutSeconds} s` };
  }
}
