import { randomUUID } from 'node:crypto';
import { z } from 'zod';
import { type AwsCaller, AwsServiceError, epochSeconds, parseRequest, serveAwsJson } from '../aws-json.ts';
import type { AwsScope, SandboxIam } from '../iam.ts';
import type { KmsKeyStore } from '../kms/keys.ts';

/** What a sandbox machine does with a Run Command: the sandbox plays the machine's agent. */
export type MachineCommandHandler = (scope: AwsScope, instanceId: string, commands: readonly string[]) => Promise<{ ok: boolean; output: string }>;

export interface SsmServiceOptions {
  port?: number;
  /** Resolves each caller's account; without it every caller acts in `accountId`. */
  iam?: SandboxIam;
  accountId?: string;
  /** With it, a SecureString's KeyId must name a usable key of the caller's account and region. */
  kmsKeys?: KmsKeyStore;
  /**
   * How long after a deletion SSM takes the same name again ("After deleting a parameter, wait for at least 30 seconds
   * to create a parameter with the same name": docs.aws.amazon.com/systems-manager/latest/APIReference/API_DeleteParameter.html).
   * AWS documents the wait, not what an earlier PutParameter meets; the sandbox refuses it with TooManyUpdates, a deletion
   * still under way being an update in progress. Default 30 s; the local stack scales it with its Wait states.
   */
  recreateAfterMs?: number;
}

/** One instance's part of a command SendCommand accepted. */
export interface SentCommand {
  scope: AwsScope;
  instanceId: string;
  commands: readonly string[];
}

export interface SsmService {
  /** Give it to `new SSMClient({ endpoint })`. */
  endpoint: string;
  /**
   * Handles AWS-RunShellScript commands sent to sandbox instances; `managed`
   * says which instances SSM knows (their agent registered), as SendCommand
   * refuses the others.
   */
  onCommand(handler: MachineCommandHandler, managed: (scope: AwsScope, instanceId: string) => boolean): void;
  /**
   * Every instance a command was sent to, oldest first: "a command invocation is created for each requested instance
   * ID" of a SendCommand SSM accepted, as ListCommandInvocations lists them (aws/aws-sdk-js-v3@031b2fc
   * clients/client-ssm/src/commands/ListCommandInvocationsCommand.ts).
   */
  sentCommands(): readonly SentCommand[];
  /** What a machine's instance role would read at boot, in its account and region: the latest value, or `name:version`'s. */
  read(scope: AwsScope, name: string): string | undefined;
  close(): Promise<void>;
}

interface ParameterVersion {
  value: string;
  type: string;
  keyId?: string;
  version: number;
  modified: Date;
}

/** Every version SSM keeps of a parameter, oldest first: PutParameter with Overwrite adds one, it never replaces one. */
interface Parameter {
  versions: ParameterVersion[];
}

/**
 * "Parameter Store retains the 100 most recently created versions of a parameter. After this number of versions has
 * been created, Parameter Store deletes the oldest version when a new one is created" (unless labelled, which Kiln
 * never does): docs.aws.amazon.com/systems-manager/latest/APIReference/API_PutParameter.html, ParameterMaxVersionLimitExceeded.
 */
const KEPT_VERSIONS = 100;
const DELETED_NAME_WAIT_MS = 30_000;

/**
 * GetParameter's Name selects a version as `name:version` or a label as `name:label` ("To query by parameter version,
 * use "Name": "name:version"": docs.aws.amazon.com/systems-manager/latest/APIReference/API_GetParameter.html); a name
 * itself has no colon. Labels are not played: Kiln attaches none, so every label selector finds nothing.
 */
function parseSelector(name: string): { name: string; selector?: string } {
  const colon = name.indexOf(':');
  return colon < 0 ? { name } : { name: name.slice(0, colon), selector: name.slice(colon + 1) };
}

function latest(parameter: Parameter): ParameterVersion {
  const last = parameter.versions.at(-1);
  if (last === undefined) throw new Error('a parameter without versions');
  return last;
}

function selected(name: string, parameter: Parameter, selector: string | undefined): ParameterVersion {
  if (selector === undefined) return latest(parameter);
  if (!/^[0-9]+$/.test(selector)) throw new AwsServiceError('ParameterVersionLabelNotFound', `The parameter label ${selector} of ${name} wasn't found.`);
  const version = parameter.versions.find((candidate) => candidate.version === Number(selector));
  if (version === undefined) throw new AwsServiceError('ParameterVersionNotFound', `The specified parameter version wasn't found: ${name}:${selector}.`);
  return version;
}

const PutParameterRequest = z.object({
  Name: z.string().min(1),
  Value: z.string(),
  Type: z.string().optional(),
  KeyId: z.string().optional(),
  Overwrite: z.boolean().optional(),
});
const GetParameterRequest = z.object({ Name: z.string().min(1), WithDecryption: z.boolean().optional() });
const ByPathRequest = z.object({ Path: z.string().min(1), Recursive: z.boolean().optional(), NextToken: z.string().optional(), MaxResults: z.number().optional() });
const SendCommandRequest = z.object({
  InstanceIds: z.array(z.string()).min(1).max(50),
  DocumentName: z.literal('AWS-RunShellScript'),
  Parameters: z.object({ commands: z.array(z.string()).min(1) }).loose(),
});
const GetCommandInvocationRequest = z.object({ CommandId: z.string(), InstanceId: z.string() });
const DeleteParametersRequest = z.object({ Names: z.array(z.string()).min(1).max(10) });
const DeleteParameterRequest = z.object({ Name: z.string().min(1) });
const HistoryRequest = z.object({ Name: z.string().min(1), WithDecryption: z.boolean().optional() });


/**
 * A local Systems Manager Parameter Store (AWS JSON 1.1: PutParameter,
 * GetParameter, GetParametersByPath, GetParameterHistory, DeleteParameter,
 * DeleteParameters) and Run Command, in memory, so the production secret-store
 * code runs unchanged. Parameters belong to an account and region, as in AWS,
 * and keep their earlier versions, readable as `name:version` by whoever may
 * read the name, until the parameter is deleted. Values are never logged.
 */
export async function startSsmService(options: SsmServiceOptions = {}): Promise<SsmService> {
  const stores = new Map<string, Map<string, Parameter>>();
  /** When each name was last deleted, by account/region and name: SSM takes it again only after DELETED_NAME_WAIT_MS. */
  const deletedAt = new Map<string, number>();
  const recreateAfterMs = options.recreateAfterMs ?? DELETED_NAME_WAIT_MS;
  const storeOf = (scope: AwsScope): Map<string, Parameter> => {
    const key = `${scope.accountId}/${scope.region}`;
    const existing = stores.get(key);
    if (existing !== undefined) return existing;
    const created = new Map<string, Parameter>();
    stores.set(key, created);
    return created;
  };
  const scopeOf = (caller: AwsCaller): AwsScope => options.iam?.scopeOf(caller) ?? { accountId: options.accountId ?? '123456789012', region: caller.region };
  const invocations = new Map<string, { status: 'InProgress' | 'Success' | 'Failed'; output: string }>();
  const sent: SentCommand[] = [];
  let commandHandler: MachineCommandHandler = () => Promise.resolve({ ok: false, output: 'no SSM agent answers on this instance' });
  let isManaged: (scope: AwsScope, instanceId: string) => boolean = () => false;
  const view = (name: string, parameter: ParameterVersion, decrypt: boolean) => ({
    Name: name,
    Type: parameter.type,
    Value: parameter.type === 'SecureString' && !decrypt ? 'kms-encrypted' : parameter.value,
    Version: parameter.version,
    LastModifiedDate: epochSeconds(parameter.modified),
  });
  const remove = (scope: AwsScope, parameters: Map<string, Parameter>, name: string): boolean => {
    if (!parameters.delete(name)) return false;
    // Deleting a parameter deletes every version of it: nothing of it is readable afterwards, `name:version` included.
    deletedAt.set(`${scope.accountId}/${scope.region}/${name}`, Date.now());
    return true;
  };
  const server = await serveAwsJson({
    ...(options.port === undefined ? {} : { port: options.port }),
    targetPrefix: 'AmazonSSM',
    contentType: 'application/x-amz-json-1.1',
    operations: {
      PutParameter: (request, caller) => {
        const scope = scopeOf(caller);
        const parameters = storeOf(scope);
        const { Name, Value, Type, KeyId, Overwrite } = parseRequest(PutParameterRequest, request);
        const existing = parameters.get(Name);
        if (existing !== undefined && Overwrite !== true) throw new AwsServiceError('ParameterAlreadyExists', `The parameter ${Name} already exists.`);
        const deleted = deletedAt.get(`${scope.accountId}/${scope.region}/${Name}`);
        if (existing === undefined && deleted !== undefined && Date.now() - deleted < recreateAfterMs) {
          throw new AwsServiceError('TooManyUpdates', `The parameter ${Name} was deleted less than ${recreateAfterMs / 1000} seconds ago; its deletion is still under way.`);
        }
        const current = existing === undefined ? undefined : latest(existing);
        const type = Type ?? current?.type ?? 'String';
        if (KeyId !== undefined && type !== 'SecureString') throw new AwsServiceError('ValidationException', 'KeyId is only for SecureString parameters.');
        if (KeyId !== undefined && options.kmsKeys !== undefined) {
          try {
            if (options.kmsKeys.describeKey(scope, KeyId).KeyState !== 'Enabled') throw new Error('not enabled');
          } catch {
            throw new AwsServiceError('InvalidKeyId', `The KMS key ${KeyId} is not usable in ${scope.accountId}/${scope.region}.`);
          }
        }
        const version = (current?.version ?? 0) + 1;
        const added: ParameterVersion = { value: Value, type, ...(KeyId === undefined ? {} : { keyId: KeyId }), version, modified: new Date() };
        parameters.set(Name, { versions: [...(existing?.versions ?? []), added].slice(-KEPT_VERSIONS) });
        return { Version: version, Tier: 'Standard' };
      },
      GetParameter: (request, caller) => {
        const parameters = storeOf(scopeOf(caller));
        const asked = parseRequest(GetParameterRequest, request);
        const { name, selector } = parseSelector(asked.Name);
        const parameter = parameters.get(name);
        if (parameter === undefined) throw new AwsServiceError('ParameterNotFound', `Parameter ${asked.Name} not found.`);
        const version = selected(name, parameter, selector);
        return { Parameter: { ...view(name, version, asked.WithDecryption === true), ...(selector === undefined ? {} : { Selector: `:${selector}` }) } };
      },
      GetParameterHistory: (request, caller) => {
        const parameters = storeOf(scopeOf(caller));
        const { Name, WithDecryption } = parseRequest(HistoryRequest, request);
        const parameter = parameters.get(Name);
        if (parameter === undefined) throw new AwsServiceError('ParameterNotFound', `Parameter ${Name} not found.`);
        return { Parameters: parameter.versions.map((version) => view(Name, version, WithDecryption === true)) };
      },
      GetParametersByPath: (request, caller) => {
        const parameters = storeOf(scopeOf(caller));
        const { Path, Recursive } = parseRequest(ByPathRequest, request);
        const prefix = Path.endsWith('/') ? Path : `${Path}/`;
        const matches = [...parameters].filter(([name]) => name.startsWith(prefix) && (Recursive === true || !name.slice(prefix.length).includes('/')));
        return { Parameters: matches.map(([name, parameter]) => view(name, latest(parameter), false)) };
      },
      SendCommand: (request, caller) => {
        const scope = scopeOf(caller);
        const { InstanceIds, Parameters } = parseRequest(SendCommandRequest, request);
        const unknown = InstanceIds.filter((instanceId) => !isManaged(scope, instanceId));
        if (unknown.length > 0) {
          throw new AwsServiceError('InvalidInstanceId', `Instances [[${unknown.join(', ')}]] not in a valid state for account ${scope.accountId}`);
        }
        const commandId = randomUUID();
        for (const instanceId of InstanceIds) {
          const key = `${commandId}/${instanceId}`;
          invocations.set(key, { status: 'InProgress', output: '' });
          sent.push({ scope, instanceId, commands: Parameters.commands });
          commandHandler(scope, instanceId, Parameters.commands).then(
            ({ ok, output }) => invocations.set(key, { status: ok ? 'Success' : 'Failed', output }),
            (error: unknown) => invocations.set(key, { status: 'Failed', output: error instanceof Error ? error.message : String(error) }),
          );
        }
        return { Command: { CommandId: commandId, InstanceIds, Status: 'Pending' } };
      },
      GetCommandInvocation: (request) => {
        const { CommandId, InstanceId } = parseRequest(GetCommandInvocationRequest, request);
        const invocation = invocations.get(`${CommandId}/${InstanceId}`);
        if (invocation === undefined) throw new AwsServiceError('InvocationDoesNotExist', 'No such command invocation.');
        return { CommandId, InstanceId, Status: invocation.status, StandardOutputContent: invocation.output, StandardErrorContent: '' };
      },
      DeleteParameter: (request, caller) => {
        const scope = scopeOf(caller);
        const { Name } = parseRequest(DeleteParameterRequest, request);
        if (!remove(scope, storeOf(scope), Name)) throw new AwsServiceError('ParameterNotFound', `Parameter ${Name} not found.`);
        return {};
      },
      DeleteParameters: (request, caller) => {
        const scope = scopeOf(caller);
        const parameters = storeOf(scope);
        const { Names } = parseRequest(DeleteParametersRequest, request);
        const deleted = Names.filter((name) => remove(scope, parameters, name));
        return { DeletedParameters: deleted, InvalidParameters: Names.filter((name) => !deleted.includes(name)) };
      },
    },
  });
  return {
    endpoint: server.endpoint,
    sentCommands: () => [...sent],
    read: (scope, name) => {
      const { name: parameterName, selector } = parseSelector(name);
      const parameter = stores.get(`${scope.accountId}/${scope.region}`)?.get(parameterName);
      if (parameter === undefined) return undefined;
      if (selector === undefined) return latest(parameter).value;
      return parameter.versions.find((version) => String(version.version) === selector)?.value;
    },
    onCommand: (handler, managed) => {
      commandHandler = handler;
      isManaged = managed;
    },
    close: () => server.close(),
  };
}
