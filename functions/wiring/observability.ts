import { Logger as PowertoolsLogger } from '@aws-lambda-powertools/logger';
import type { Metrics as PowertoolsMetrics } from '@aws-lambda-powertools/metrics';
import type { Tracer } from '@aws-lambda-powertools/tracer';
import type { Context } from 'aws-lambda';
import { type LogFields, type LogLevel, type Logger, type Metrics, redact } from '#core';
import type { KilnConfig } from './config.ts';
import { once } from './once.ts';

const LEVELS = { debug: 'DEBUG', info: 'INFO', warn: 'WARN', error: 'ERROR', silent: 'SILENT' } as const satisfies Record<LogLevel, string>;

/** Kiln's Logger on Powertools' (JSON, with the Lambda request id and cold start once a handler adds its context). */
export function powertoolsLog(logger: PowertoolsLogger): Logger {
  // Fields are redacted before Powertools sees them: a careless call cannot leak a key, token or kubeconfig.
  const fieldsOf = (fields: LogFields | undefined) => (fields === undefined ? [] : [redact(fields) as LogFields]);
  return {
    child: (fields) => {
      // Made on first use: Powertools takes about 40 µs to make a child, and the API makes one per request (for its
      // request id), where most requests log nothing through it.
      let made: Logger | undefined;
      const child = () => (made ??= powertoolsLog(logger.createChild({ persistentKeys: redact(fields) as LogFields })));
      return {
        child: (more) => child().child(more),
        debug: (message, more) => {
          child().debug(message, more);
        },
        info: (message, more) => {
          child().info(message, more);
        },
        warn: (message, more) => {
          child().warn(message, more);
        },
        error: (message, more) => {
          child().error(message, more);
        },
      };
    },
    debug: (message, fields) => {
      logger.debug(message, ...fieldsOf(fields));
    },
    info: (message, fields) => {
      logger.info(message, ...fieldsOf(fields));
    },
    warn: (message, fields) => {
      logger.warn(message, ...fieldsOf(fields));
    },
    error: (message, fields) => {
      logger.error(message, ...fieldsOf(fields));
    },
  };
}

/**
 * Kiln's Metrics as CloudWatch metrics in the embedded metric format, in the namespace `Kiln`. Powertools' Metrics is
 * loaded on the first flush (the API writes metrics only for rare answers, so most cold starts never load it); what is
 * counted before waits here.
 */
export function emfMetrics(load: () => Promise<PowertoolsMetrics>): Metrics {
  const recorded: { name: string; unit: 'Count' | 'Milliseconds'; value: number }[] = [];
  return {
    count: (name, value = 1) => {
      recorded.push({ name, unit: 'Count', value });
    },
    milliseconds: (name, value) => {
      recorded.push({ name, unit: 'Milliseconds', value });
    },
    flush: async () => {
      // Taken before the wait, so two flushes at once (local mode serves requests side by side) write each once.
      const taken = recorded.splice(0);
      if (taken.length === 0) return;
      const metrics = await load();
      for (const { name, unit, value } of taken) metrics.addMetric(name, unit, value);
      metrics.publishStoredMetrics();
    },
  };
}

/** A process's logger, metrics and tracer, made once (Lambda module scope); CloudWatch tells the functions apart. */
export interface Observability {
  logger: PowertoolsLogger;
  /** An AWS SDK client whose calls are traced with X-Ray, as subsegments of the invocation's trace (in Lambda). */
  traced: <T>(client: T) => T;
  log: Logger;
  emf: Metrics;
  /**
   * For a handler, before it does anything: waits until the tracer is ready (the first invocation only), and adds
   * the invocation's request id and cold start to every log line that follows.
   */
  invoked(context: Context | undefined): Promise<void>;
}

export function createObservability(config: KilnConfig): Observability {
  const logger = new PowertoolsLogger({ serviceName: 'kiln', logLevel: LEVELS[config.KILN_LOG_LEVEL] });
  const metrics = once(async () => new (await import('@aws-lambda-powertools/metrics')).Metrics({ namespace: 'Kiln', serviceName: 'kiln' }));
  // Powertools traces only inside Lambda (its Tracer turns itself off elsewhere), so the X-Ray SDK, about 20 ms to
  // load, is loaded only there: started at module scope, awaited by the first invocation. Clients made before it is
  // ready are captured when it is, before any invocation runs.
  const waiting: unknown[] = [];
  let tracer: Tracer | undefined;
  const ready =
    process.env.AWS_LAMBDA_FUNCTION_NAME === undefined
      ? Promise.resolve()
      : import('@aws-lambda-powertools/tracer').then(({ Tracer: PowertoolsTracer }) => {
          tracer = new PowertoolsTracer({ serviceName: 'kiln' });
          for (const client of waiting.splice(0)) tracer.captureAWSv3Client(client);
        });
  return {
    logger,
    traced: (client) => {
      if (tracer !== undefined) return tracer.captureAWSv3Client(client);
      waiting.push(client);
      return client;
    },
    log: powertoolsLog(logger),
    emf: emfMetrics(metrics),
    invoked: async (context) => {
      await ready;
      if (context !== undefined) logger.addContext(context);
    },
  };
}

/** The ids a workflow step's input carries (WorkflowInput), for its log lines. */
const CORRELATION_FIELDS = ['requestId', 'operationId', 'tenantId', 'clusterId'] as const;

function correlationOf(event: unknown): LogFields {
  if (typeof event !== 'object' || event === null) return {};
  const fields = event as Record<string, unknown>;
  return Object.fromEntries(CORRELATION_FIELDS.flatMap((name) => (typeof fields[name] === 'string' ? [[name, fields[name]]] : [])));
}

/**
 * A workflow step's Lambda handler: every log line of the invocation carries its Lambda request id and cold start,
 * and the ids of the work it does, the API request that started it among them.
 */
export function stepHandler<S extends { log: Logger }, R>(services: S, observability: Observability, step: (services: S, event: unknown) => Promise<R>) {
  return async (event: unknown, context?: Context): Promise<R> => {
    await observability.invoked(context);
    return step({ ...services, log: services.log.child(correlationOf(event)) }, event);
  };
}
