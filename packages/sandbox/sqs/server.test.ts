import { GetQueueAttributesCommand, ReceiveMessageCommand, SQSClient, SendMessageBatchCommand } from '@aws-sdk/client-sqs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { LOCAL_CREDENTIALS, LOCAL_REGION } from '../dynamodb.ts';
import { runEventSource } from './event-source.ts';
import { type SqsService, startSqsService } from './server.ts';

let sqs: SqsService;
let client: SQSClient;
beforeAll(async () => {
  sqs = await startSqsService({ accountId: '000000000000', region: LOCAL_REGION });
  client = new SQSClient({ region: LOCAL_REGION, endpoint: sqs.endpoint, credentials: LOCAL_CREDENTIALS });
});
afterAll(async () => {
  client.destroy();
  await sqs.close();
});

const send = (queueUrl: string, bodies: string[]) => client.send(new SendMessageBatchCommand({ QueueUrl: queueUrl, Entries: bodies.map((body, index) => ({ Id: String(index), MessageBody: body })) }));

describe('the SQS stand-in', () => {
  it('hides a received message for its visibility timeout, brings it back, and moves it to the dead-letter queue after too many receives', async () => {
    const dlq = sqs.createQueue({ name: 'redrive-dlq', visibilityTimeoutSeconds: 30 });
    const queueUrl = sqs.createQueue({ name: 'redrive', visibilityTimeoutSeconds: 30, deadLetter: { queueName: 'redrive-dlq', maxReceiveCount: 2 } });
    await send(queueUrl, ['poison']);
    const receive = () => client.send(new ReceiveMessageCommand({ QueueUrl: queueUrl, MaxNumberOfMessages: 10, VisibilityTimeout: 0.05 }));
    expect((await receive()).Messages?.map((message) => [message.Body, message.Attributes?.ApproximateReceiveCount])).toEqual([['poison', '1']]);
    const hidden = await client.send(new ReceiveMessageCommand({ QueueUrl: queueUrl, MaxNumberOfMessages: 10 }));
    expect(hidden.Messages ?? []).toEqual([]);
    await new Promise((resolve) => setTimeout(resolve, 80));
    expect((await receive()).Messages?.map((message) => message.Attributes?.ApproximateReceiveCount)).toEqual(['2']);
    await new Promise((resolve) => setTimeout(resolve, 80));
    // A third receive is past maxReceiveCount: the message is in the dead-letter queue instead.
    expect((await receive()).Messages ?? []).toEqual([]);
    const attributes = await client.send(new GetQueueAttributesCommand({ QueueUrl: dlq, AttributeNames: ['ApproximateNumberOfMessages'] }));
    expect(attributes.Attributes?.ApproximateNumberOfMessages).toBe('1');
  });

  it('runs a handler over batches as Lambda\'s trigger does: reported failures stay in the queue, the rest are deleted', async () => {
    const queueUrl = sqs.createQueue({ name: 'batches', visibilityTimeoutSeconds: 30 });
    await send(queueUrl, ['a', 'b', 'c']);
    const seen: string[] = [];
    await runEventSource({
      sqs: client,
      queueUrl,
      untilEmpty: true,
      handler: (event) => {
        seen.push(...event.Records.map((record) => record.body));
        return Promise.resolve({ batchItemFailures: event.Records.filter((record) => record.body === 'b').map((record) => ({ itemIdentifier: record.messageId })) });
      },
    }).done;
    expect(seen.sort()).toEqual(['a', 'b', 'c']);
    expect(sqs.depth('batches')).toBe(1);
  });
});
