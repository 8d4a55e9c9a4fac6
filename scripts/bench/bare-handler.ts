// The baseline of `npm run bench`: the least a Hono API on Lambda does to order and read a cluster, bundled exactly
// as Kiln's API is. An order is validated with zod and written in the same DynamoDB transaction Kiln writes (the
// name claim, the cluster, the quota, the operation, two events and the Idempotency-Key record, with the same
// conditions), then one StartExecution; a read is one consistent GetItem. No authentication, no rate limit, no
// logging: what is left of Kiln's time once those are gone is the price of Kiln's own work.
import { randomUUID } from 'node:crypto';
import { DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { SFNClient, StartExecutionCommand } from '@aws-sdk/client-sfn';
import { DynamoDBDocumentClient, GetCommand, TransactWriteCommand } from '@aws-sdk/lib-dynamodb';
import { Hono } from 'hono';
import { handle } from 'hono/aws-lambda';
import { z } from 'zod';

const documents = DynamoDBDocumentClient.from(new DynamoDBClient({ endpoint: process.env.KILN_DYNAMODB_ENDPOINT }));
const sfn = new SFNClient({ endpoint: process.env.KILN_STEPFUNCTIONS_ENDPOINT });
const TableName = process.env.KILN_TABLE_NAME ?? 'kiln';
const Order = z.looseObject({ name: z.string().min(1).max(40), region: z.string(), nodePools: z.array(z.looseObject({ name: z.string(), size: z.int() })).min(1) });

const app = new Hono();
app.post('/v1/clusters', async (c) => {
  const order = Order.parse(await c.req.json());
  // The caller's tenant, as a header: the baseline has no authentication.
  const tenant = `TENANT#${c.req.header('x-tenant') ?? 'bare'}`;
  const now = new Date().toISOString();
  const id = randomUUID();
  const operationId = randomUUID();
  const nodes = order.nodePools.reduce((sum, pool) => sum + pool.size, 3);
  const cluster = { id, name: order.name, spec: order, status: { phase: 'Pending', activeOperationId: operationId }, createdAt: now, updatedAt: now, version: 1 };
  const event = (type: string) => ({ Put: { TableName, Item: { PK: tenant, SK: `EVENT#${id}#${randomUUID()}`, type, clusterId: id, occurredAt: now }, ConditionExpression: 'attribute_not_exists(PK)' } });
  await documents.send(
    new TransactWriteCommand({
      TransactItems: [
        { Put: { TableName, Item: { PK: tenant, SK: `CLUSTERNAME#${order.name}`, clusterId: id }, ConditionExpression: 'attribute_not_exists(PK)' } },
        { Put: { TableName, Item: { PK: tenant, SK: `CLUSTER#${id}`, ...cluster }, ConditionExpression: 'attribute_not_exists(PK)' } },
        {
          Update: {
            TableName,
            Key: { PK: tenant, SK: 'QUOTA' },
            UpdateExpression: 'SET clustersFree = if_not_exists(clustersFree, :clusterLimit) - :one, nodesFree = if_not_exists(nodesFree, :nodeLimit) - :nodes',
            ConditionExpression: 'attribute_not_exists(PK) OR (clustersFree >= :one AND nodesFree >= :nodes)',
            ExpressionAttributeValues: { ':clusterLimit': 1_000_000, ':nodeLimit': 100_000_000, ':one': 1, ':nodes': nodes },
          },
        },
        { Put: { TableName, Item: { PK: tenant, SK: `OPERATION#${operationId}`, id: operationId, clusterId: id, type: 'provision', state: 'pending', createdAt: now }, ConditionExpression: 'attribute_not_exists(PK)' } },
        event('cluster.created'),
        event('operation.started'),
        {
          Put: {
            TableName,
            Item: { PK: tenant, SK: `IDEMPOTENCY#${c.req.header('idempotency-key') ?? operationId}`, response: { status: 202, body: JSON.stringify(cluster) }, createdAt: now },
            ConditionExpression: 'attribute_not_exists(PK)',
          },
        },
      ],
    }),
  );
  await sfn.send(new StartExecutionCommand({ stateMachineArn: process.env.KILN_PROVISION_STATE_MACHINE_ARN ?? '', name: operationId, input: JSON.stringify({ clusterId: id, operationId }) }));
  return c.json(cluster, 202);
});
app.get('/v1/clusters/:id', async (c) => {
  const result = await documents.send(new GetCommand({ TableName, Key: { PK: `TENANT#${c.req.header('x-tenant') ?? 'bare'}`, SK: `CLUSTER#${c.req.param('id')}` }, ConsistentRead: true }));
  return result.Item === undefined ? c.json({ title: 'Not Found' }, 404) : c.json(result.Item);
});

// eslint-disable-next-line @typescript-eslint/no-deprecated -- as functions/api.ts: the announced successor, @hono/aws-lambda, is not published yet
export const handler = handle(app);
export { app };
