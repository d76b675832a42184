/**
 * DynamoDB update expressions from plain objects, so no store writes `SET #a = :a` strings by
 * hand (atomic arithmetic and `list_append` go in `more`, written by the store that needs them): `SET` for each attribute of `set` (undefined values skipped), `REMOVE` for each name in
 * `remove`, and in `more` the other clauses a store needs (ADD, increments, first-write-wins
 * values, map entries) and the write's condition. Placeholders are generated (`#u0`, `:u0`, …), so
 * any attribute name (reserved words included) is safe; a condition brings its own placeholders,
 * merged in (they must not be of the `#u<n>` / `:u<n>` form).
 */
export interface Condition {
  expression: string;
  names?: Record<string, string>;
  values?: Record<string, unknown>;
}

/**
 * The condition of a guarded transition (the transition tables in lambdas/domain/): the item exists
 * and its status attribute (`attr`) is one of `from`. Placeholders `#from_status`, `:from_status<n>`.
 */
export function statusIn(from: readonly string[], attr = 'status'): Condition {
  if (from.length === 0) throw new Error('statusIn: no status to move from');
  const values = Object.fromEntries(from.map((s, i) => [`:from_status${i}`, s]));
  return {
    expression: `attribute_exists(pk) AND #from_status IN (${Object.keys(values).join(', ')})`,
    names: { '#from_status': attr },
    values,
  };
}

/** Conditions that must all hold, their placeholders merged (they must not clash). */
export function allOf(...conditions: (Condition | undefined)[]): Condition {
  const cs = conditions.filter((c): c is Condition => c !== undefined);
  return {
    expression: cs.map((c) => (cs.length > 1 ? `(${c.expression})` : c.expression)).join(' AND '),
    names: Object.assign({}, ...cs.map((c) => c.names ?? {})) as Record<string, string>,
    values: Object.assign({}, ...cs.map((c) => c.values ?? {})) as Record<string, unknown>,
  };
}

export interface UpdateOptions {
  /** `ADD name value`: a number added to the attribute (0 if absent), or elements added to a set. */
  add?: Record<string, unknown>;
  /** `SET name = name + value`: the attribute must exist (a negative value subtracts). */
  increment?: Record<string, number>;
  /** `SET name = if_not_exists(name, value)`: written only while the attribute is absent. */
  setIfAbsent?: Record<string, unknown>;
  /** `SET map.key = value`, for entries of map attributes: `{ map: { key: value } }`. */
  setEntries?: Record<string, Record<string, unknown>>;
  /** `SET name = list_append(if_not_exists(name, []), value)`: elements appended to a list (empty: skipped). */
  append?: Record<string, unknown[]>;
  /** The write's condition (ConditionExpression), with its own placeholders. */
  condition?: Condition;
}

export interface UpdateParts {
  UpdateExpression: string;
  ConditionExpression?: string;
  ExpressionAttributeNames: Record<string, string>;
  ExpressionAttributeValues?: Record<string, unknown>;
}

const GENERATED = /^[#:]u\d+$/;

/** The update, or undefined when it would change nothing (no clause at all). */
export function updateExpression(
  set: Record<string, unknown>,
  remove: string[] = [],
  more: UpdateOptions = {},
): UpdateParts | undefined {
  const names: Record<string, string> = {};
  const values: Record<string, unknown> = {};
  let n = 0;
  const name = (attr: string) => {
    const p = `#u${n++}`;
    names[p] = attr;
    return p;
  };
  const value = (v: unknown) => {
    const p = `:u${n++}`;
    values[p] = v;
    return p;
  };
  const defined = (o: Record<string, unknown> = {}) => Object.entries(o).filter(([, v]) => v !== undefined);

  const sets = defined(set).map(([k, v]) => `${name(k)} = ${value(v)}`);
  for (const [k, v] of defined(more.increment)) {
    const a = name(k);
    sets.push(`${a} = ${a} + ${value(v)}`);
  }
  for (const [k, v] of defined(more.setIfAbsent)) {
    const a = name(k);
    sets.push(`${a} = if_not_exists(${a}, ${value(v)})`);
  }
  for (const [map, entries] of Object.entries(more.setEntries ?? {})) {
    const m = name(map);
    for (const [k, v] of defined(entries)) sets.push(`${m}.${name(k)} = ${value(v)}`);
  }
  for (const [k, v] of Object.entries(more.append ?? {})) {
    if (!v.length) continue;
    const a = name(k);
    sets.push(`${a} = list_append(if_not_exists(${a}, ${value([])}), ${value(v)})`);
  }
  const adds = defined(more.add).map(([k, v]) => `${name(k)} ${value(v)}`);
  const removes = remove.map(name);
  const expr = [
    sets.length ? `SET ${sets.join(', ')}` : '',
    adds.length ? `ADD ${adds.join(', ')}` : '',
    removes.length ? `REMOVE ${removes.join(', ')}` : '',
  ]
    .filter(Boolean)
    .join(' ');
  if (!expr) return undefined;

  const c = more.condition;
  for (const p of [...Object.keys(c?.names ?? {}), ...Object.keys(c?.values ?? {})])
    if (GENERATED.test(p)) throw new Error(`condition placeholder ${p} clashes with the update's own`);
  Object.assign(names, c?.names);
  Object.assign(values, c?.values);
  return {
    UpdateExpression: expr,
    ...(c ? { ConditionExpression: c.expression } : {}),
    ExpressionAttributeNames: names,
    ...(Object.keys(values).length ? { ExpressionAttributeValues: values } : {}),
  };
}
