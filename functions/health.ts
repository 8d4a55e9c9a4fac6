import { pollNodeHealth } from '#health';
import { services } from './tasks/services.ts';

/** Scheduled every minute: looks at every live cluster's nodes and machines, and records what changed. */
export const handler = () => pollNodeHealth(services);
