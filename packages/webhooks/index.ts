export { ATTEMPT_TIMEOUT_MS, attemptDelivery, RESPONSE_BYTES_KEPT, type AttemptResult } from './deliver.ts';
export { deliverWebhooks, RETRY_SCHEDULE_SECONDS, type DeliveryReport } from './worker.ts';
