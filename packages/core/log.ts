/**
 * Structured JSON logs. Fields whose names look secret are dropped whatever
 * their value, so a careless call cannot leak a key, token or kubeconfig.
 */
export type LogLevel = 'debug' | 'info' | 'warn' | 'error' | 'silent';
export type LogFields = Record<string, unknown>;

const ORDER: Record<LogLevel, number> = { debug: 10, info: 20, warn: 30, error: 40, silent: 100 };
const SECRET_FIELD = /(secret|token|password|passphrase|apikey|api_key|authorization|cookie|kubeconfig|private|plaintext|credential)/i;

/** A log line's fields with every secret-looking field dropped (and errors as their name and message). */
export function redact(value: unknown, depth = 0): unknown {
  if (depth > 6 || value === null || typeof value !== 'object') return value;
  if (value instanceof Error) return { name: value.name, message: value.message };
  if (Array.isArray(value)) return value.map((item) => redact(item, depth + 1));
  return Object.fromEntries(
    Object.entries(value).map(([key, inner]) => [key, SECRET_FIELD.test(key) ? '[redacted]' : redact(inner, depth + 1)]),
  );
}

export interface Logger {
  child(fields: LogFields): Logger;
  debug(message: string, fields?: LogFields): void;
  info(message: string, fields?: LogFields): void;
  warn(message: string, fields?: LogFields): void;
  error(message: string, fields?: LogFields): void;
}

export function createLogger(
  level: LogLevel = 'info',
  base: LogFields = {},
  write: (line: string) => void = (line) => process.stdout.write(`${line}\n`),
): Logger {
  const emit = (at: Exclude<LogLevel, 'silent'>, message: string, fields: LogFields = {}) => {
    if (ORDER[at] < ORDER[level]) return;
    write(JSON.stringify({ time: new Date().toISOString(), level: at, message, ...(redact({ ...base, ...fields }) as LogFields) }));
  };
  return {
    child: (fields) => createLogger(level, { ...base, ...fields }, write),
    debug: (message, fields) => {
      emit('debug', message, fields);
    },
    info: (message, fields) => {
      emit('info', message, fields);
    },
    warn: (message, fields) => {
      emit('warn', message, fields);
    },
    error: (message, fields) => {
      emit('error', message, fields);
    },
  };
}

/** Counters and timings for dashboards and alarms (CloudWatch metrics in EMF in production). */
export interface Metrics {
  count(name: string, value?: number): void;
  milliseconds(name: string, value: number): void;
  /** Writes what was recorded since the last flush (once per request or invocation). */
  flush(): Promise<void>;
}

/** Records nothing. */
export const NO_METRICS: Metrics = { count: () => undefined, milliseconds: () => undefined, flush: () => Promise.resolve() };
