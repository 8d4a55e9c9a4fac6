import { loadConfig } from './wiring/config.ts';
import { createServices } from './wiring/services.ts';

/** Built once per Lambda container (module scope), shared by every invocation of the API and the schedulers. */
export const services = createServices(loadConfig());
