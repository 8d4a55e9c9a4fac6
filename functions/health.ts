import { pollNodeHealth } from '#health';
import { loadConfig } from './wiring/config.ts';
import { createHealthServices } from './wiring/health-services.ts';

/** Built once per Lambda container (module scope). */
export const services = createHealthServices(loadConfig());

/** Scheduled every minute: looks at every live cluster's nodes and machines, and records what changed. */
export const handler = () => pollNodeHealth(services);
