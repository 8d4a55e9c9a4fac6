export { addressRefusal, resolveAllowed, urlRefusal, type AddressPolicy } from './address.ts';
export { webhookSecretContext } from './secret.ts';
export type { WebhookServices } from './services.ts';
export { ATTEMPT_TIMEOUT_MS, attemptDelivery, RESPONSE_BYTES_KEPT, type AttemptResult } from './deliver.ts';
export { DISPATCH_LEASE_SECONDS, dispatchWebhooks, type DispatchReport } from './dispatch.ts';
export { SqsWebhookQueue, type SqsBatchResponse, type SqsEvent, type WebhookMessage, type WebhookQueue } from './queue.ts';
export { DISABLE_AFTER_FAILING_HOURS, handleWebhookBatch, RETRY_SCHEDULE_SECONDS, sendWebhooks, type SendReport } from './send.ts';
