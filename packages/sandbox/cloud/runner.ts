/**
 * Child process entry: loads Pulumi and the cluster program once (the slow
 * part), says ready, then runs exactly one program under mocks; the parent
 * disconnects afterwards and it exits, because the Pulumi runtime's state is
 * global to the process.
 */
import * as aws from '@pulumi/aws';
import * as pulumi from '@pulumi/pulumi';
import { clusterProgram } from '#infra';
import { createCloudMocks, type RecordedResource } from './mocks.ts';
import { isRunRequest, type RunRequest, type RunnerMessage } from './protocol.ts';

const SECRET_SIGNATURE_KEY = '4dabf18193072939515e22adb298388d';

/** Mocks see secrets wrapped in Pulumi's signature object; the sandbox wants the plain values. */
function unwrapSecrets(value: unknown): unknown {
  if (Array.isArray(value)) return value.map(unwrapSecrets);
  if (typeof value !== 'object' || value === null) return value;
  const record = value as Record<string, unknown>;
  if (SECRET_SIGNATURE_KEY in record && 'value' in record) return unwrapSecrets(record.value);
  return Object.fromEntries(Object.entries(record).map(([key, entry]) => [key, unwrapSecrets(entry)]));
}

function resolved<T>(output: pulumi.Output<T>): Promise<T> {
  return new Promise((resolve) => {
    output.apply((value) => {
      resolve(value);
      return value;
    });
  });
}

async function run(request: RunRequest): Promise<RunnerMessage> {
  const { mocks, resources } = createCloudMocks(request.context);
  await pulumi.runtime.setMocks(mocks, request.project, request.stack, false);
  const outputs = await resolved(pulumi.output(await clusterProgram(request.input)()));
  // Resources nothing exported depends on may still be registering.
  await pulumi.runtime.disconnect();
  const recorded: RecordedResource[] = resources.map((resource) => ({
    ...resource,
    inputs: unwrapSecrets(resource.inputs) as Record<string, unknown>,
  }));
  return { kind: 'result', outputs, resources: recorded };
}

/** The parent disconnects once it has the answer; exiting here could overtake the message. */
function reply(message: RunnerMessage): void {
  process.send?.(message);
}

// @pulumi/aws loads each module on first use; touching the ones the program uses moves that cost out of the run.
for (const loaded of [
  aws.ec2.Vpc,
  aws.ec2.LaunchTemplate,
  aws.ec2.getAmiOutput,
  aws.vpc.SecurityGroupIngressRule,
  aws.lb.LoadBalancer,
  aws.autoscaling.Group,
  aws.kms.Key,
  aws.iam.Role,
  aws.getCallerIdentityOutput,
  aws.getPartitionOutput,
]) {
  if (typeof loaded !== 'function') throw new Error('the AWS provider SDK did not load');
}

// A rejected resource registration surfaces here rather than in the program's outputs.
const reportFailure = (error: unknown) => {
  reply({ kind: 'failed', message: error instanceof Error ? error.message : String(error) });
};
process.on('unhandledRejection', reportFailure);
process.on('uncaughtException', reportFailure);
process.on('message', (message: unknown) => {
  if (!isRunRequest(message)) return;
  run(message).then(reply, reportFailure);
});
// The parent is done with this process, or gone.
process.on('disconnect', () => process.exit(0));
reply({ kind: 'ready' });
