import { loadConfig } from './wiring/config.ts';
import { createObservability } from './wiring/observability.ts';
import { createServices } from './wiring/services.ts';

const config = loadConfig();
/** The process's logger and metrics (Powertools): a handler adds its invocation's context. */
export const observability = createObservability(config);
/** Built once per Lambda container (module scope), shared by every invocation of the API and the schedulers. */
export const services = createServices(config, observability);
