import { type DynamoDBDocumentClient, QueryCommand, type QueryCommandInput } from '@aws-sdk/lib-dynamodb';

/** Every item a query finds, page after page. */
export async function queryAll(
  documents: DynamoDBDocumentClient,
  tableName: string,
  query: Omit<QueryCommandInput, 'TableName' | 'ExclusiveStartKey'>,
): Promise<Record<string, unknown>[]> {
  const found: Record<string, unknown>[] = [];
  let start: Record<string, unknown> | undefined;
  do {
    const result = await documents.send(new QueryCommand({ ...query, TableName: tableName, ExclusiveStartKey: start }));
    found.push(...(result.Items ?? []));
    start = result.LastEvaluatedKey;
  } while (start !== undefined);
  return found;
}
