import { ConcurrentUpdateError } from '@pulumi/pulumi/automation';
import { StepError, accountRoleRefused, isAssumeRoleRefusal } from '#core';
import { INFRASTRUCTURE_STEP } from './driver.ts';

const MAX_DETAIL = 300;

/** Failures that a later attempt can get past: AWS throttling, capacity, timeouts, a flaky network. */
const TRANSIENT = [
  /throttl/i,
  /rate exceeded/i,
  /too many requests/i,
  /RequestLimitExceeded/,
  /InsufficientInstanceCapacity/,
  /ServiceUnavailable|service unavailable/i,
  /InternalError|internal server error/i,
  /StatusCode: 50[0234]\b/i,
  /timed? ?out/i,
  /deadline exceeded/i,
  /ETIMEDOUT|ECONNRESET|ECONNREFUSED|EAI_AGAIN|ENOTFOUND|EPIPE/,
  /socket hang up/i,
  /connection (reset|refused)/i,
  /TLS handshake/i,
  /no such host/i,
  /i\/o timeout/i,
  /network (is )?unreachable|network error|NetworkingError/i,
  /the stack is currently locked/i,
  // A role IAM has just created may not be visible to Auto Scaling yet (terraform-aws-modules/terraform-aws-autoscaling
  // examples: "Creating the service-linked role within the same terraform run might fail with the following error ...
  // Re-running terraform apply again will work"); the cluster program creates its own.
  /ARN specified for Service-Linked Role does not exist/,
];

/** Whatever could be a credential or key material is cut before a message is stored or shown. */
const SECRETS = [
  /-----BEGIN [A-Z ]+-----[\s\S]*?(-----END [A-Z ]+-----|$)/g,
  /\b(AKIA|ASIA)[A-Z0-9]{16}\b/g,
  /\b(password|passwd|secret|token|key|signature|credential)s?\s*[=:]\s*\S+/gi,
  /[A-Za-z0-9+/_-]{40,}={0,2}/g,
];

function redact(text: string): string {
  return SECRETS.reduce((acc, pattern) => acc.replace(pattern, '[redacted]'), text);
}

/**
 * The engine's own words about what went wrong, without its progress log:
 * the lines it marks as errors, else the first line of the message.
 */
function summarize(message: string): string {
  const lines = message
    .split('\n')
    .map((line) => line.trim().replace(/^(stdout|stderr|err\?):\s*/, ''))
    .filter((line) => line.length > 0 && !/^code: -?\d+$/.test(line));
  const errorLines = lines.filter((line) => /^error:/i.test(line) && !/^error: update failed$/i.test(line));
  const chosen = errorLines.length > 0 ? errorLines.map((line) => line.replace(/^error:\s*/i, '')).join('; ') : (lines[0] ?? 'unknown error');
  const clean = redact(chosen);
  return clean.length > MAX_DETAIL ? `${clean.slice(0, MAX_DETAIL)}...` : clean;
}

/**
 * Maps anything the Automation API or the program throws to the one error
 * type workflows understand: retriable (`Kiln.Transient`) or not
 * (`Kiln.Permanent`), with a short message that is safe to record.
 */
export function engineStepError(error: unknown, action: string): StepError {
  if (error instanceof StepError) return error;
  if (error instanceof ConcurrentUpdateError) {
    return new StepError(INFRASTRUCTURE_STEP, `${action}: another update of this stack is in progress`, true);
  }
  const message = error instanceof Error ? error.message : String(error);
  // The AWS provider could not take the order's account role: the tenant's trust policy, not a passing failure.
  if (isAssumeRoleRefusal(message)) return new StepError(INFRASTRUCTURE_STEP, `${action}: ${accountRoleRefused('AccessDenied')}`, false);
  const retriable = TRANSIENT.some((pattern) => pattern.test(message));
  return new StepError(INFRASTRUCTURE_STEP, `${action}: ${summarize(message)}`, retriable);
}
