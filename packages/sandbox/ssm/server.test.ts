import {
  DeleteParameterCommand,
  DeleteParametersCommand,
  GetParameterCommand,
  GetParameterHistoryCommand,
  ParameterNotFound,
  ParameterVersionNotFound,
  PutParameterCommand,
  SSMClient,
  TooManyUpdates,
} from '@aws-sdk/client-ssm';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type SsmService, startSsmService } from './server.ts';

const RECREATE_AFTER_MS = 200;
const scope = { accountId: '210987654321', region: 'eu-central-1' };
let ssm: SsmService;
let client: SSMClient;

beforeAll(async () => {
  ssm = await startSsmService({ accountId: scope.accountId, recreateAfterMs: RECREATE_AFTER_MS });
  client = new SSMClient({ endpoint: ssm.endpoint, region: scope.region, credentials: { accessKeyId: 'test', secretAccessKey: 'test' }, maxAttempts: 1 });
});

afterAll(async () => {
  client.destroy();
  await ssm.close();
});

let seq = 0;
/** Each test writes under a name of its own. */
const nameOf = (what: string) => `/test/${what}-${++seq}`;
const put = (Name: string, Value: string) => client.send(new PutParameterCommand({ Name, Value, Type: 'SecureString', Overwrite: true }));
const valueOf = async (Name: string) => (await client.send(new GetParameterCommand({ Name, WithDecryption: true }))).Parameter?.Value;

describe('the SSM Parameter Store sandbox', () => {
  it('keeps every earlier version, readable as name:version and in the history', async () => {
    const name = nameOf('versions');
    await put(name, 'first');
    const second = await put(name, 'second');
    expect(second.Version).toBe(2);
    expect(await valueOf(name)).toBe('second');
    expect(await valueOf(`${name}:1`)).toBe('first');
    expect(ssm.read(scope, `${name}:1`)).toBe('first');
    const history = await client.send(new GetParameterHistoryCommand({ Name: name, WithDecryption: true }));
    expect(history.Parameters?.map((parameter) => parameter.Value)).toEqual(['first', 'second']);
    await expect(valueOf(`${name}:3`)).rejects.toBeInstanceOf(ParameterVersionNotFound);
  });

  it('keeps the 100 latest versions and drops the oldest', async () => {
    const name = nameOf('hundred');
    for (let value = 1; value <= 101; value++) await put(name, String(value));
    await expect(valueOf(`${name}:1`)).rejects.toBeInstanceOf(ParameterVersionNotFound);
    expect(await valueOf(`${name}:2`)).toBe('2');
  });

  it('deletes every version with the parameter, through DeleteParameter and DeleteParameters', async () => {
    const one = nameOf('delete-one');
    const many = nameOf('delete-many');
    for (const name of [one, many]) {
      await put(name, 'old');
      await put(name, 'new');
    }
    await client.send(new DeleteParameterCommand({ Name: one }));
    const deleted = await client.send(new DeleteParametersCommand({ Names: [many, nameOf('never-was')] }));
    expect(deleted.DeletedParameters).toEqual([many]);
    for (const name of [one, many]) {
      await expect(valueOf(`${name}:1`)).rejects.toBeInstanceOf(ParameterNotFound);
      expect(ssm.read(scope, `${name}:1`)).toBeUndefined();
    }
    await expect(client.send(new DeleteParameterCommand({ Name: one }))).rejects.toBeInstanceOf(ParameterNotFound);
  });

  it('takes a deleted name again only after the wait AWS asks for, and starts it at version 1', async () => {
    const name = nameOf('recreate');
    await put(name, 'old');
    await client.send(new DeleteParameterCommand({ Name: name }));
    await expect(put(name, 'too soon')).rejects.toBeInstanceOf(TooManyUpdates);
    await new Promise((resolve) => setTimeout(resolve, RECREATE_AFTER_MS));
    expect((await put(name, 'new')).Version).toBe(1);
    expect(await valueOf(name)).toBe('new');
  });
});
