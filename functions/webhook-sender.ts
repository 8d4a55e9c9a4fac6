import { type SqsEvent, handleWebhookBatch } from '#webhooks';
import { services } from './services.ts';

/** Triggered by the webhook queue (batches with partial responses): attempts each delivery and records what came of it. */
export const handler = (event: SqsEvent) => handleWebhookBatch(services, event);
