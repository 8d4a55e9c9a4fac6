// A bundled Lambda function run as Lambda runs it: a process of its own (scripts/bench/lambda-runner.ts) that loads
// the bundle and is invoked with API Gateway events, on a Node of choice, against the API's local dependencies
// (DynamoDB Local and the Step Functions stand-in running Kiln's workflows). `npm run bench` measures the API with it
// on this machine's Node; functions/bundling.test.ts runs the API on the Node of Lambda's runtime with it.
import { type ChildProcess, spawn } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { mkdtemp } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { build } from 'esbuild';
import { sha256 } from '#core';
import { LOCAL_AWS_ENVIRONMENT, LOCAL_REGION, type LocalDynamoDb, ensureTable, startStepFunctionsService } from '#sandbox';
import { WORKFLOW_NAMES, exampleSubstitutions, renderWorkflow, workflowPlaceholders } from '#workflows';
import type { BatchResult, BenchRequest } from './bench/lambda-runner.ts';
import { stateMachineVariables } from './bundles.ts';

export type { BatchResult, BenchRequest };

const RUNNER = join(import.meta.dirname, 'bench/lambda-runner.ts');

/** A Lambda instance of one bundle: sends it a batch of requests and waits for the answers. */
export interface Instance {
  run(requests: BenchRequest[], expect: number, keepBodies?: boolean): Promise<BatchResult>;
  close(): Promise<void>;
}

/** The runner as plain JavaScript, so no TypeScript loader sits in the instances' module loading (the API's lazy chunks go through it). */
export async function compiledRunner(): Promise<string> {
  const outfile = join(await mkdtemp(join(tmpdir(), 'kiln-lambda-runner-')), 'lambda-runner.mjs');
  await build({ entryPoints: [RUNNER], outfile, format: 'esm', platform: 'node', target: 'node20', logLevel: 'error' });
  return outfile;
}

export interface InstanceOptions {
  /** The Node that runs it (this process's by default). */
  node?: string;
  /** Arguments to that Node, before the runner (a CPU profile, for instance). */
  nodeArguments?: string[];
}

export async function startInstance(runner: string, bundle: string, environment: Record<string, string>, options: InstanceOptions = {}): Promise<Instance> {
  // Log lines go where Lambda's go, out of the way: writing them is part of the cost measured.
  const child: ChildProcess = spawn(options.node ?? process.execPath, [...(options.nodeArguments ?? []), runner, bundle], {
    env: { PATH: process.env.PATH, ...environment },
    stdio: ['ignore', 'ignore', 'pipe', 'ipc'],
  });
  let stderr = '';
  child.stderr?.on('data', (chunk: Buffer) => {
    stderr = (stderr + chunk.toString('utf8')).slice(-2000);
  });
  const next = () =>
    new Promise<unknown>((resolve, reject) => {
      const onExit = (code: number | null) => {
        reject(new Error(`the Lambda runner for ${bundle} exited (${String(code)}): ${stderr}`));
      };
      child.once('exit', onExit);
      child.once('message', (message) => {
        child.off('exit', onExit);
        resolve(message);
      });
    });
  await next();
  return {
    run: async (requests, expect, keepBodies = false) => {
      const answer = next();
      child.send({ requests, expect, keepBodies });
      return (await answer) as BatchResult;
    },
    close: () =>
      new Promise<void>((resolve) => {
        if (child.exitCode !== null) {
          resolve();
          return;
        }
        child.once('exit', () => {
          resolve();
        });
        child.send({ exit: true });
      }),
  };
}

/** What the API needs around it: a table of its own and Kiln's workflows, with the environment that points it there. */
export interface ApiDependencies {
  environment: Record<string, string>;
  /** The admin token the environment admits (its SHA-256 is in KILN_ADMIN_TOKEN_SHA256). */
  adminToken: string;
  close(): Promise<void>;
}

/**
 * A fresh table on the DynamoDB Local given and a Step Functions stand-in running Kiln's workflows, their Lambda
 * functions failing at once: what an API request does ends at StartExecution.
 */
export async function startApiDependencies(dynamo: LocalDynamoDb, extra: Record<string, string> = {}): Promise<ApiDependencies> {
  const tableName = `kiln-lambda-${randomUUID().slice(0, 8)}`;
  await ensureTable(dynamo.client, tableName);
  const substitutions = exampleSubstitutions([...new Set(WORKFLOW_NAMES.flatMap((name) => workflowPlaceholders(name)))], { region: LOCAL_REGION });
  const notHere = () => Promise.reject(new Error('not run here'));
  const service = await startStepFunctionsService({
    region: LOCAL_REGION,
    stateMachines: Object.fromEntries(WORKFLOW_NAMES.map((name) => [`kiln-${name}`, renderWorkflow(name, substitutions)])),
    lambdas: Object.fromEntries(Object.values(substitutions).filter((value) => value.startsWith('arn:aws:lambda:')).map((arn) => [arn, notHere])),
    ecsTasks: Object.fromEntries(Object.values(substitutions).filter((value) => value.includes(':task-definition/')).map((arn) => [arn, notHere])),
  });
  const adminToken = randomUUID();
  return {
    adminToken,
    environment: {
      ...LOCAL_AWS_ENVIRONMENT,
      KILN_TABLE_NAME: tableName,
      KILN_DYNAMODB_ENDPOINT: dynamo.endpoint,
      KILN_STEPFUNCTIONS_ENDPOINT: service.endpoint,
      ...stateMachineVariables((name) => service.stateMachineArn(`kiln-${name}`)),
      KILN_SEALING_KEY_ID: 'alias/kiln-local',
      KILN_ACCOUNT_ID: '000000000000',
      KILN_ADMIN_TOKEN_SHA256: sha256(adminToken),
      ...extra,
    },
    close: () => service.close(),
  };
}
