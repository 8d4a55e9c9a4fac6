import { SQSClient } from '@aws-sdk/client-sqs';
import { SqsWebhookQueue, dispatchWebhooks } from '#webhooks';
import { services } from './services.ts';
import { loadConfig } from './wiring/config.ts';
import { awsClientOptions } from './wiring/services.ts';

const config = loadConfig();
if (config.KILN_WEBHOOK_QUEUE_URL === undefined) throw new Error('Kiln is misconfigured: KILN_WEBHOOK_QUEUE_URL is required by the webhook dispatcher.');
const queue = new SqsWebhookQueue(new SQSClient({ region: config.AWS_REGION, ...awsClientOptions(config.KILN_SQS_ENDPOINT) }), config.KILN_WEBHOOK_QUEUE_URL);

/** Scheduled every minute: takes new events into deliveries and puts the ones that are due on the queue for the senders. */
export const handler = () => dispatchWebhooks(services, queue);
