import { createServices, loadConfig } from '#lifecycle';

/** Built once per Lambda container (module scope), shared by every invocation. */
export const services = createServices(loadConfig());
