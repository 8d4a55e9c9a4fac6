/**
 * Child process entry: loads Pulumi and the cluster program once (the slow
 * part), says ready, then runs exactly one program under mocks; the parent
 * disconnects afterwards and it exits, because the Pulumi runtime's state is
 * global to the process.
 */
import * as aws from '@pulumi/aws';
import * as pulumi from '@pulumi/pulumi';
import { clusterProgram } from '#infra';
import { createCloudMocks, type RecordedResource, unwrapSecrets } from './mocks.ts';
import { isRunRequest, type RunRequest, type RunnerMessage } from './protocol.ts';

function resolved<T>(output: pulumi.Output<T>): Promise<T> {
  return new Promise((resolve) => {
    output.apply((value) => {
      resolve(value);
      return value;
    });
  });
}

interface RegisterRequest {
  getType(): string;
  getName(): string;
  getDependenciesList(): string[];
}

/** `urn:pulumi:<stack>::<project>::<parent$type>::<name>` as `<type>::<name>`, the key the mocks use. */
function resourceKeyOf(urn: string): string {
  const [, , qualifiedType = '', ...name] = urn.split('::');
  return `${qualifiedType.slice(qualifiedType.lastIndexOf('$') + 1)}::${name.join('::')}`;
}

/**
 * The dependencies each registration declares, which the engine orders creation by (pulumi/pulumi@v3.248.0
 * sdk/nodejs/runtime/resource.ts registerResource: `req.setDependenciesList(allDirectDependencyURNs)`, explicit and
 * property dependencies alike). Its mocks (sdk/nodejs/runtime/mocks.ts MockMonitor.registerResource) pass the mock only
 * type, name, inputs, provider, custom and id, so the sandbox reads them off the request on its way to the mock monitor,
 * before the mock's newResource sees the resource.
 */
function recordDependencies(monitor: unknown, dependencies: Map<string, string[]>): void {
  const target = monitor as { registerResource: (request: RegisterRequest, ...rest: unknown[]) => unknown };
  const register = target.registerResource.bind(target);
  target.registerResource = (request, ...rest) => {
    dependencies.set(`${request.getType()}::${request.getName()}`, request.getDependenciesList().map(resourceKeyOf));
    return register(request, ...rest);
  };
}

async function run(request: RunRequest): Promise<RunnerMessage> {
  const dependencies = new Map<string, string[]>();
  const { mocks, resources } = createCloudMocks(request.context, {
    dependenciesOf: (type, name) => dependencies.get(`${type}::${name}`) ?? [],
    onRoleCreated: (role) => {
      reply({ kind: 'role', role });
    },
  });
  await pulumi.runtime.setMocks(mocks, request.project, request.stack, false);
  recordDependencies(pulumi.runtime.getMonitor(), dependencies);
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
  aws.iam.ServiceLinkedRole,
  aws.getCallerIdentityOutput,
  aws.getPartitionOutput,
]) {
  if (typeof loaded !== 'function') throw new Error('the AWS provider SDK did not load');
}

// A rejected resource registration surfaces here rather than in the program's outputs, behind one "error serializing
// property" per output it flowed through; the engine would report the resource's own error, so that is what is kept.
const reportFailure = (error: unknown) => {
  const message = error instanceof Error ? error.message : String(error);
  reply({ kind: 'failed', message: message.replace(/^(error serializing property "[^"]*": )+/, '') });
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
