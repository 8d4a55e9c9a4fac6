import { createHash, randomUUID } from 'node:crypto';
import { AwsServiceError, serveAwsJson } from '../aws-json.ts';

/**
 * An SQS stand-in speaking the JSON protocol the SDK uses: standard queues with a visibility timeout, a receive count
 * per message and a redrive policy (a message received more than `maxReceiveCount` times moves to the dead-letter
 * queue instead). At least once, as SQS is: a message received and not deleted comes back when its visibility ends.
 */
export interface SqsQueueOptions {
  name: string;
  visibilityTimeoutSeconds: number;
  deadLetter?: { queueName: string; maxReceiveCount: number };
}

interface StoredMessage {
  id: string;
  body: string;
  receiveCount: number;
  visibleAt: number;
  receipt?: string;
  sentAt: number;
}

export interface SqsService {
  endpoint: string;
  /** The URL of a queue created with `createQueue`. */
  queueUrl(name: string): string;
  createQueue(options: SqsQueueOptions): string;
  /** The messages a queue holds (visible or in flight), for tests and the chaos controls. */
  depth(name: string): number;
  close(): Promise<void>;
}

const md5 = (text: string) => createHash('md5').update(text, 'utf8').digest('hex');
const MAX_BATCH = 10;

export async function startSqsService(options: { accountId: string; region: string; port?: number }): Promise<SqsService> {
  const queues = new Map<string, { options: SqsQueueOptions; messages: StoredMessage[] }>();
  let endpoint = '';
  const urlOf = (name: string) => `${endpoint}/${options.accountId}/${name}`;
  const queueOf = (request: Record<string, unknown>) => {
    const url = typeof request.QueueUrl === 'string' ? request.QueueUrl : '';
    const queue = queues.get(url.slice(url.lastIndexOf('/') + 1));
    if (queue === undefined || !url.startsWith(endpoint)) throw new AwsServiceError('QueueDoesNotExist', `The specified queue does not exist: ${url}.`);
    return queue;
  };
  const enqueue = (queue: { messages: StoredMessage[] }, body: unknown): StoredMessage => {
    if (typeof body !== 'string' || body === '') throw new AwsServiceError('InvalidParameterValue', 'MessageBody is required.');
    if (Buffer.byteLength(body) > 256 * 1024) throw new AwsServiceError('InvalidParameterValue', 'MessageBody is longer than 262144 bytes.');
    const message: StoredMessage = { id: randomUUID(), body, receiveCount: 0, visibleAt: Date.now(), sentAt: Date.now() };
    queue.messages.push(message);
    return message;
  };

  const server = await serveAwsJson({
    ...(options.port === undefined ? {} : { port: options.port }),
    targetPrefix: 'AmazonSQS',
    contentType: 'application/x-amz-json-1.0',
    operations: {
      SendMessage: (request) => {
        const message = enqueue(queueOf(request), request.MessageBody);
        return { MessageId: message.id, MD5OfMessageBody: md5(message.body) };
      },
      SendMessageBatch: (request) => {
        const queue = queueOf(request);
        const entries = Array.isArray(request.Entries) ? (request.Entries as { Id: string; MessageBody: string }[]) : [];
        if (entries.length === 0) throw new AwsServiceError('EmptyBatchRequest', 'There should be at least one SendMessageBatchRequestEntry in the request.');
        if (entries.length > MAX_BATCH) throw new AwsServiceError('TooManyEntriesInBatchRequest', `Maximum number of entries per request are ${MAX_BATCH}.`);
        return { Successful: entries.map((entry) => ({ Id: entry.Id, MessageId: enqueue(queue, entry.MessageBody).id, MD5OfMessageBody: md5(entry.MessageBody) })), Failed: [] };
      },
      ReceiveMessage: (request) => {
        const queue = queueOf(request);
        const limit = Math.min(Number(request.MaxNumberOfMessages ?? 1), MAX_BATCH);
        const visibility = Number(request.VisibilityTimeout ?? queue.options.visibilityTimeoutSeconds) * 1000;
        const now = Date.now();
        const received: StoredMessage[] = [];
        for (const message of [...queue.messages]) {
          if (received.length >= limit) break;
          if (message.visibleAt > now) continue;
          const redrive = queue.options.deadLetter;
          if (redrive !== undefined && message.receiveCount >= redrive.maxReceiveCount) {
            // Received too often without being deleted: to the dead-letter queue, as the redrive policy says.
            queue.messages.splice(queue.messages.indexOf(message), 1);
            queues.get(redrive.queueName)?.messages.push({ ...message, receiveCount: 0, visibleAt: now, receipt: undefined });
            continue;
          }
          message.receiveCount += 1;
          message.visibleAt = now + visibility;
          message.receipt = randomUUID();
          received.push(message);
        }
        return {
          Messages: received.map((message) => ({
            MessageId: message.id,
            ReceiptHandle: message.receipt,
            Body: message.body,
            MD5OfBody: md5(message.body),
            Attributes: { ApproximateReceiveCount: String(message.receiveCount), SentTimestamp: String(message.sentAt) },
          })),
        };
      },
      DeleteMessage: (request) => {
        const queue = queueOf(request);
        queue.messages = queue.messages.filter((message) => message.receipt === undefined || message.receipt !== request.ReceiptHandle);
        return {};
      },
      DeleteMessageBatch: (request) => {
        const queue = queueOf(request);
        const entries = Array.isArray(request.Entries) ? (request.Entries as { Id: string; ReceiptHandle: string }[]) : [];
        const handles = new Set(entries.map((entry) => entry.ReceiptHandle));
        queue.messages = queue.messages.filter((message) => message.receipt === undefined || !handles.has(message.receipt));
        return { Successful: entries.map((entry) => ({ Id: entry.Id })), Failed: [] };
      },
      GetQueueAttributes: (request) => {
        const queue = queueOf(request);
        const now = Date.now();
        return {
          Attributes: {
            ApproximateNumberOfMessages: String(queue.messages.filter((message) => message.visibleAt <= now).length),
            ApproximateNumberOfMessagesNotVisible: String(queue.messages.filter((message) => message.visibleAt > now).length),
          },
        };
      },
    },
  });
  endpoint = server.endpoint;
  return {
    endpoint,
    queueUrl: urlOf,
    createQueue: (queueOptions) => {
      if (!queues.has(queueOptions.name)) queues.set(queueOptions.name, { options: queueOptions, messages: [] });
      return urlOf(queueOptions.name);
    },
    depth: (name) => queues.get(name)?.messages.length ?? 0,
    close: () => server.close(),
  };
}
