import { reportUsage } from '#services';
import { services } from './services.ts';

/** Scheduled every 15 minutes: reports each tenant's hours that ended at least 15 minutes ago, with their usage.reported events. */
export const handler = () => reportUsage(services);
