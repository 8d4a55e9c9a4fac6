import { loadConfig } from '../wiring/config.ts';
import { createRemediationServices } from '../wiring/health-services.ts';

/** Built once per Lambda container (module scope), shared by every invocation of a remediation step. */
export const services = createRemediationServices(loadConfig());
