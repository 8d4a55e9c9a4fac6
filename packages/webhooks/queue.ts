import { SendMessageBatchCommand, type SQSClient } from '@aws-sdk/client-sqs';

/** One delivery to attempt: which endpoint, which event. The delivery record holds the rest. */
export interface WebhookMessage {
  tenantId: string;
  endpointId: string;
  eventId: string;
}

/** Where the dispatcher puts the deliveries that are due, for the senders to take. */
export interface WebhookQueue {
  send(messages: readonly WebhookMessage[]): Promise<void>;
}

/** What an SQS-triggered Lambda receives, as far as the sender reads it. */
export interface SqsEvent {
  Records: { messageId: string; body: string; attributes?: { ApproximateReceiveCount?: string } }[];
}

/** A partial batch answer: the messages to leave in the queue (they come back after their visibility timeout). */
export interface SqsBatchResponse {
  batchItemFailures: { itemIdentifier: string }[];
}

const BATCH = 10;

/** The production queue: an SQS standard queue with a dead-letter queue behind it (sst.config.ts). */
export class SqsWebhookQueue implements WebhookQueue {
  constructor(
    private readonly sqs: Pick<SQSClient, 'send'>,
    private readonly queueUrl: string,
  ) {}

  async send(messages: readonly WebhookMessage[]): Promise<void> {
    for (let start = 0; start < messages.length; start += BATCH) {
      const batch = messages.slice(start, start + BATCH);
      const result = await this.sqs.send(
        new SendMessageBatchCommand({ QueueUrl: this.queueUrl, Entries: batch.map((message, index) => ({ Id: String(index), MessageBody: JSON.stringify(message) })) }),
      );
      const failed = result.Failed ?? [];
      if (failed.length > 0) throw new Error(`SQS refused ${failed.length} of ${batch.length} webhook messages: ${failed.map((entry) => `${entry.Code ?? '?'} ${entry.Message ?? ''}`).join('; ')}`);
    }
  }
}
