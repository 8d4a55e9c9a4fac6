// The cold-start baseline of `npm run bench`: the least a Hono API on Lambda can load to order a cluster (validate
// the body with zod, one DynamoDB transaction, one StartExecution), bundled exactly as Kiln's API is.
import { DynamoDBClient, TransactWriteItemsCommand } from '@aws-sdk/client-dynamodb';
import { SFNClient, StartExecutionCommand } from '@aws-sdk/client-sfn';
import { Hono } from 'hono';
import { handle } from 'hono/aws-lambda';
import { z } from 'zod';

const dynamodb = new DynamoDBClient({});
const sfn = new SFNClient({});
const Order = z.object({ name: z.string().min(1).max(40), region: z.string(), nodePools: z.array(z.object({ name: z.string(), size: z.int() })).min(1) });

const app = new Hono();
app.post('/v1/clusters', async (c) => {
  const order = Order.parse(await c.req.json());
  await dynamodb.send(
    new TransactWriteItemsCommand({
      TransactItems: [{ Put: { TableName: process.env.TABLE ?? 'kiln', Item: { PK: { S: `CLUSTER#${order.name}` }, SK: { S: 'CLUSTER' } }, ConditionExpression: 'attribute_not_exists(PK)' } }],
    }),
  );
  await sfn.send(new StartExecutionCommand({ stateMachineArn: process.env.STATE_MACHINE ?? '', name: order.name, input: JSON.stringify(order) }));
  return c.json(order, 202);
});

// eslint-disable-next-line @typescript-eslint/no-deprecated -- as functions/api.ts: the announced successor, @hono/aws-lambda, is not published yet
export const handler = handle(app);
