import type { TestProject } from 'vitest/node';
// Its own entry point: the #sandbox barrel loads Pulumi and client-node, seconds before any test can start.
import { type LocalDynamoDb, startLocalDynamoDb } from '#sandbox/dynamodb';

declare module 'vitest' {
  export interface ProvidedContext {
    /** The run's one DynamoDB Local: each test file keeps to tables of its own. */
    dynamoDbEndpoint: string;
  }
}

/**
 * One DynamoDB Local JVM for the whole run instead of one per test file: each start costs several CPU-seconds and
 * its JIT needs load before writes reach full speed, on a machine with two cores.
 */
let dynamo: LocalDynamoDb | undefined;

export async function setup(project: TestProject): Promise<void> {
  dynamo = await startLocalDynamoDb();
  project.provide('dynamoDbEndpoint', dynamo.endpoint);
}

export async function teardown(): Promise<void> {
  await dynamo?.close();
}
