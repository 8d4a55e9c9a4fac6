import fc from 'fast-check';

/** The parts of an OpenAPI 3.1 document the fuzzer reads. */
export interface OpenApiDocument {
  paths: Record<string, Record<string, OperationObject>>;
  components?: { schemas?: Record<string, JsonSchema> };
}
export interface OperationObject {
  operationId?: string;
  parameters?: { name: string; in: 'path' | 'query' | 'header'; required?: boolean; schema?: JsonSchema }[];
  requestBody?: { content?: Record<string, { schema?: JsonSchema }> };
}
export type JsonSchema = Record<string, unknown>;

const REF = '#/components/schemas/';
const MAX_DEPTH = 6;

/** Values of `schema`'s shape (as a client that read the document would send), from its JSON Schema. */
export function valueOf(schema: JsonSchema | undefined, document: OpenApiDocument, depth = 0): fc.Arbitrary<unknown> {
  if (schema === undefined || depth > MAX_DEPTH) return fc.constant(null);
  const ref = schema.$ref;
  if (typeof ref === 'string' && ref.startsWith(REF)) return valueOf(document.components?.schemas?.[ref.slice(REF.length)], document, depth + 1);
  if (Array.isArray(schema.enum) && schema.enum.length > 0) return fc.constantFrom(...(schema.enum as unknown[]));
  if ('const' in schema) return fc.constant(schema.const);
  for (const key of ['anyOf', 'oneOf'] as const) {
    const options = schema[key];
    if (Array.isArray(options) && options.length > 0) return fc.oneof(...(options as JsonSchema[]).map((option) => valueOf(option, document, depth + 1)));
  }
  if (Array.isArray(schema.allOf) && schema.allOf.length > 0) return valueOf(schema.allOf[0] as JsonSchema, document, depth + 1);
  const type = Array.isArray(schema.type) ? (schema.type as string[]) : [schema.type as string | undefined];
  return fc.oneof(...type.map((one) => valueOfType(one, schema, document, depth)));
}

function valueOfType(type: string | undefined, schema: JsonSchema, document: OpenApiDocument, depth: number): fc.Arbitrary<unknown> {
  const number = (name: string) => (typeof schema[name] === 'number' ? (schema[name]) : undefined);
  switch (type) {
    case 'null':
      return fc.constant(null);
    case 'boolean':
      return fc.boolean();
    case 'integer':
      return fc.integer({ min: Math.max(number('minimum') ?? -1000, -1_000_000), max: Math.min(number('maximum') ?? 1000, 1_000_000) });
    case 'number':
      return fc.double({ min: number('minimum') ?? -1000, max: number('maximum') ?? 1000, noNaN: true });
    case 'string':
      return stringOf(schema);
    case 'array':
      return fc.array(valueOf(schema.items as JsonSchema | undefined, document, depth + 1), { minLength: number('minItems') ?? 0, maxLength: Math.min(number('maxItems') ?? 4, 4) });
    case 'object':
    case undefined: {
      const properties = (schema.properties ?? {}) as Record<string, JsonSchema>;
      if (Object.keys(properties).length === 0) return fc.dictionary(fc.string({ maxLength: 8 }), fc.string({ maxLength: 8 }), { maxKeys: 3 });
      const required = (schema.required ?? []) as string[];
      return fc.record(Object.fromEntries(Object.entries(properties).map(([name, property]) => [name, valueOf(property, document, depth + 1)])), {
        requiredKeys: required.filter((name) => name in properties),
      });
    }
    default:
      return fc.constant(null);
  }
}

function stringOf(schema: JsonSchema): fc.Arbitrary<string> {
  if (schema.format === 'date-time') return fc.date({ min: new Date('2020-01-01T00:00:00Z'), max: new Date('2030-01-01T00:00:00Z'), noInvalidDate: true }).map((date) => date.toISOString());
  // Addresses by IP (no name to resolve: this machine has no DNS), public, private and the metadata service alike.
  if (schema.format === 'uri') return fc.oneof(fc.ipV4().map((ip) => `https://${ip}/hooks`), fc.constantFrom('http://203.0.113.10/', 'https://169.254.169.254/latest', 'ftp://203.0.113.10/'));
  if (typeof schema.pattern === 'string') {
    try {
      return fc.stringMatching(new RegExp(schema.pattern)).filter((value) => value.length <= ((schema.maxLength as number | undefined) ?? 1000));
    } catch {
      // a pattern fast-check cannot generate from: any string
    }
  }
  return fc.string({ minLength: (schema.minLength as number | undefined) ?? 0, maxLength: Math.min((schema.maxLength as number | undefined) ?? 40, 200) });
}

/** What a careless or hostile client sends instead: wrong types, unknown fields, deep nesting, odd text. */
export const garbage: fc.Arbitrary<unknown> = fc.oneof(
  fc.jsonValue({ maxDepth: 4 }),
  fc.string({ unit: 'binary', maxLength: 50 }),
  fc.constantFrom(null, '', 0, -1, 1e308, true, [], {}, '../../etc/passwd', '${jndi:ldap://x}', "'; DROP TABLE kiln; --", '\u0000', '𝕜𝕚𝕝𝕟'),
);

/** A value of the schema, or one with something wrong: a field of the wrong type, an unknown field, garbage. */
export function bodyOf(schema: JsonSchema | undefined, document: OpenApiDocument): fc.Arbitrary<unknown> {
  const valid = valueOf(schema, document);
  return fc.oneof(
    { weight: 3, arbitrary: valid },
    {
      weight: 2,
      arbitrary: fc.tuple(valid, fc.string({ maxLength: 12 }), garbage).map(([value, key, wrong]) =>
        value !== null && typeof value === 'object' && !Array.isArray(value) ? { ...value, [key]: wrong } : wrong,
      ),
    },
    { weight: 1, arbitrary: garbage },
  );
}
