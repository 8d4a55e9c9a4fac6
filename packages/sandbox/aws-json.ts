import { randomUUID } from 'node:crypto';
import { type IncomingMessage, type ServerResponse, createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { z } from 'zod';

/**
 * The AWS JSON RPC protocol (1.0 and 1.1) as the SDKs speak it: POST /, the
 * operation in `X-Amz-Target: <Service>.<Operation>`, JSON both ways, and
 * errors as status 400 with `{"__type", "message"}`. Signatures are not checked.
 * Shared by the Step Functions and KMS stand-ins.
 */

/** An error the client should see as the named AWS exception. */
export class AwsServiceError extends Error {
  readonly type: string;
  readonly status: number;

  constructor(type: string, message: string, status = 400) {
    super(message);
    this.name = type;
    this.type = type;
    this.status = status;
  }
}

/** Who signed a request, read from its SigV4 Authorization header (the signature itself is not checked). */
export interface AwsCaller {
  accessKeyId: string;
  region: string;
}

export type AwsJsonOperation = (request: Record<string, unknown>, caller: AwsCaller) => unknown;

const CREDENTIAL_SCOPE = /Credential=([^/,\s]+)\/\d{8}\/([a-z0-9-]+)\/[a-z0-9-]+\/aws4_request/;

/** The access key and region of a signed request; unsigned requests are refused, as AWS does. */
export function callerOf(authorization: string | undefined): AwsCaller {
  const match = CREDENTIAL_SCOPE.exec(authorization ?? '');
  if (match?.[1] === undefined || match[2] === undefined) {
    throw new AwsServiceError('MissingAuthenticationTokenException', 'Request is missing Authentication Token', 403);
  }
  return { accessKeyId: match[1], region: match[2] };
}

export interface AwsJsonServerOptions {
  port?: number;
  host?: string;
  /** The X-Amz-Target prefix, e.g. `AWSStepFunctions`. */
  targetPrefix: string;
  /** `application/x-amz-json-1.0` or `application/x-amz-json-1.1`. */
  contentType: string;
  operations: Record<string, AwsJsonOperation>;
}

export interface AwsJsonServer {
  endpoint: string;
  close(): Promise<void>;
}

const MAX_BODY_BYTES = 1024 * 1024;

export async function serveAwsJson(options: AwsJsonServerOptions): Promise<AwsJsonServer> {
  return listenLocally((request, response) => {
    handle(options, request, response).catch((error: unknown) => {
      const failure = error instanceof AwsServiceError ? error : new AwsServiceError('InternalFailure', 'Internal failure.', 500);
      send(response, options.contentType, failure.status, { __type: failure.type, message: failure.message });
    });
  }, options);
}

/** An HTTP server for a stand-in on a local port (0 or absent: a free one), closed with every open connection. */
export async function listenLocally(
  listener: (request: IncomingMessage, response: ServerResponse) => void,
  options: { port?: number; host?: string } = {},
): Promise<AwsJsonServer> {
  const server = createServer(listener);
  const host = options.host ?? '127.0.0.1';
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(options.port ?? 0, host, () => {
      server.off('error', reject);
      resolve();
    });
  });
  const { port } = server.address() as AddressInfo;
  return {
    endpoint: `http://${host}:${port}`,
    close: () =>
      new Promise<void>((resolve, reject) => {
        server.close((error) => {
          if (error) reject(error);
          else resolve();
        });
        server.closeAllConnections();
      }),
  };
}

async function handle(options: AwsJsonServerOptions, request: IncomingMessage, response: ServerResponse): Promise<void> {
  if (request.method !== 'POST') {
    throw new AwsServiceError('UnknownOperationException', 'Only POST / is served.', 404);
  }
  const target = request.headers['x-amz-target'];
  const prefix = `${options.targetPrefix}.`;
  const operationName = typeof target === 'string' && target.startsWith(prefix) ? target.slice(prefix.length) : undefined;
  const operation = operationName === undefined ? undefined : options.operations[operationName];
  if (operation === undefined) {
    throw new AwsServiceError('UnknownOperationException', `Unknown operation ${String(target)}.`);
  }
  const body = await readBody(request);
  let parsed: unknown;
  try {
    parsed = body.length === 0 ? {} : JSON.parse(body.toString('utf8'));
  } catch {
    throw new AwsServiceError('SerializationException', 'The request body is not valid JSON.');
  }
  if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed)) {
    throw new AwsServiceError('SerializationException', 'The request body must be a JSON object.');
  }
  const result = await operation(parsed as Record<string, unknown>, callerOf(request.headers.authorization));
  send(response, options.contentType, 200, result ?? {});
}

/** A request body, refused past 1 MiB as AWS refuses oversized requests. */
export async function readBody(request: IncomingMessage): Promise<Buffer> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of request) {
    const buffer = Buffer.isBuffer(chunk) ? chunk : Buffer.from(String(chunk));
    size += buffer.length;
    if (size > MAX_BODY_BYTES) throw new AwsServiceError('SerializationException', 'The request body is too large.', 413);
    chunks.push(buffer);
  }
  return Buffer.concat(chunks);
}

function send(response: ServerResponse, contentType: string, status: number, body: unknown): void {
  if (response.headersSent) return;
  const payload = JSON.stringify(body);
  response.writeHead(status, {
    'content-type': contentType,
    'content-length': Buffer.byteLength(payload),
    'x-amzn-requestid': randomUUID(),
  });
  response.end(payload);
}

/** AWS JSON protocols carry timestamps as epoch seconds. */
export function epochSeconds(date: Date): number {
  return date.getTime() / 1000;
}

/** Validates a request body as AWS does, answering a ValidationException that names each field. */
export function parseRequest<T>(schema: z.ZodType<T>, request: Record<string, unknown>): T {
  const result = schema.safeParse(request);
  if (result.success) return result.data;
  const problems = result.error.issues.map((issue) => `Value at '${issue.path.join('.')}' failed to satisfy constraint: ${issue.message}`);
  throw new AwsServiceError('ValidationException', `${problems.length} validation error(s) detected: ${problems.join('; ')}`);
}
