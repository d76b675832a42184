/**
 * DynamoDB update expressions from plain objects: `SET` for each attribute of `set` (undefined
 * values skipped), `REMOVE` for each name in `remove`, with placeholder names and values so any
 * attribute name (reserved words included) is safe.
 */
export interface UpdateParts {
  UpdateExpression: string;
  ExpressionAttributeNames: Record<string, string>;
  ExpressionAttributeValues?: Record<string, unknown>;
}

export function updateExpression(
  set: Record<string, unknown>,
  remove: string[] = [],
): UpdateParts | undefined {
  const names: Record<string, string> = {};
  const values: Record<string, unknown> = {};
  const sets: string[] = [];
  let i = 0;
  for (const [k, v] of Object.entries(set)) {
    if (v === undefined) continue;
    names[`#a${i}`] = k;
    values[`:a${i}`] = v;
    sets.push(`#a${i} = :a${i}`);
    i++;
  }
  const removes = remove.map((k, j) => {
    names[`#r${j}`] = k;
    return `#r${j}`;
  });
  const expr = [
    sets.length ? `SET ${sets.join(', ')}` : '',
    removes.length ? `REMOVE ${removes.join(', ')}` : '',
  ]
    .filter(Boolean)
    .join(' ');
  if (!expr) return undefined;
  return {
    UpdateExpression: expr,
    ExpressionAttributeNames: names,
    ...(sets.length ? { ExpressionAttributeValues: values } : {}),
  };
}
