import { DeleteMessageBatchCommand, ReceiveMessageCommand, type SQSClient } from '@aws-sdk/client-sqs';
import type { SqsBatchResponse, SqsEvent } from '#webhooks';

export type SqsBatchHandler = (event: SqsEvent) => Promise<SqsBatchResponse>;

export interface EventSourceOptions {
  sqs: Pick<SQSClient, 'send'>;
  queueUrl: string;
  handler: SqsBatchHandler;
  /** Messages per invocation (Lambda's batch size). */
  batchSize?: number;
  /** Overrides the queue's visibility timeout for what it receives. */
  visibilityTimeoutSeconds?: number;
  /** How long to wait after finding the queue empty. */
  idleMs?: number;
  /** Stop after the queue is found empty once (to drain it), instead of polling until stopped. */
  untilEmpty?: boolean;
}

/**
 * What Lambda's SQS event source mapping does, over the SQS API: receive a batch, invoke the function with it, delete
 * the messages it did not report as failures (partial batch responses). A handler that throws leaves the whole batch;
 * those messages come back after their visibility timeout and go to the dead-letter queue after too many receives.
 */
export function runEventSource(options: EventSourceOptions): { stop(): Promise<void>; done: Promise<void> } {
  const state = { stopped: false };
  const done = (async () => {
    while (!state.stopped) {
      const received = await options.sqs.send(
        new ReceiveMessageCommand({
          QueueUrl: options.queueUrl,
          MaxNumberOfMessages: options.batchSize ?? 10,
          MessageSystemAttributeNames: ['ApproximateReceiveCount'],
          ...(options.visibilityTimeoutSeconds === undefined ? {} : { VisibilityTimeout: options.visibilityTimeoutSeconds }),
        }),
      );
      const messages = received.Messages ?? [];
      if (messages.length === 0) {
        if (options.untilEmpty === true) return;
        await new Promise((resolve) => setTimeout(resolve, options.idleMs ?? 250));
        continue;
      }
      const event: SqsEvent = {
        Records: messages.map((message) => ({
          messageId: message.MessageId ?? '',
          body: message.Body ?? '',
          attributes: { ApproximateReceiveCount: message.Attributes?.ApproximateReceiveCount ?? '1' },
        })),
      };
      let failed: Set<string>;
      try {
        failed = new Set((await options.handler(event)).batchItemFailures.map((failure) => failure.itemIdentifier));
      } catch {
        failed = new Set(event.Records.map((record) => record.messageId));
      }
      const finished = messages.filter((message) => !failed.has(message.MessageId ?? ''));
      if (finished.length > 0) {
        await options.sqs.send(new DeleteMessageBatchCommand({ QueueUrl: options.queueUrl, Entries: finished.map((message, index) => ({ Id: String(index), ReceiptHandle: message.ReceiptHandle ?? '' })) }));
      }
    }
  })();
  return {
    done,
    stop: async () => {
      state.stopped = true;
      await done.catch(() => undefined);
    },
  };
}
