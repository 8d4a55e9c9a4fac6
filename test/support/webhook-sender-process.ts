import { SQSClient } from '@aws-sdk/client-sqs';
import { handleWebhookBatch } from '#webhooks';
import { runEventSource } from '#sandbox';
import { services } from '../../functions/services.ts';

/**
 * The webhook sender in a process of its own, as Lambda runs it: built from the environment, fed batches from the
 * queue by an event source mapping, until it is killed (the e2e tests kill it mid-burst). KILN_TEST_CLOCK_AHEAD_MS
 * moves its clock as the test's, and KILN_TEST_VISIBILITY_SECONDS shortens how long what it took stays hidden.
 */
const ahead = Number(process.env.KILN_TEST_CLOCK_AHEAD_MS ?? '0');
const sqs = new SQSClient({ region: process.env.AWS_REGION ?? 'us-east-1', endpoint: process.env.KILN_SQS_ENDPOINT ?? '' });
process.stdout.write('ready\n');
await runEventSource({
  sqs,
  queueUrl: process.env.KILN_WEBHOOK_QUEUE_URL ?? '',
  handler: (event) => handleWebhookBatch(services, event, new Date(Date.now() + ahead)),
  batchSize: 10,
  visibilityTimeoutSeconds: Number(process.env.KILN_TEST_VISIBILITY_SECONDS ?? '30'),
}).done;
