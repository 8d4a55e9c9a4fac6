import { deliverWebhooks } from '#webhooks';
import { services } from './services.ts';

/** Scheduled every minute: takes new events into deliveries and makes the attempts that are due. */
export const handler = () => deliverWebhooks(services);
