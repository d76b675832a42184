/**
 * What every item of the `main` table carries for the table's own layout: its keys, its index
 * keys (gsi1; gsi2, the open-items index) and its kind. Never part of an API object: each store
 * strips these, and its own internal attributes, when it turns an item into one.
 */
export const LAYOUT_ATTRIBUTES = ['pk', 'sk', 'gsi1pk', 'gsi1sk', 'gsi2pk', 'gsi2sk', 'kind'] as const;

/** A copy of the item without the layout attributes and without `internal`. */
export function withoutInternal(
  item: Record<string, unknown>,
  internal: readonly string[],
): Record<string, unknown> {
  const out: Record<string, unknown> = { ...item };
  for (const k of LAYOUT_ATTRIBUTES) delete out[k];
  for (const k of internal) delete out[k];
  return out;
}
