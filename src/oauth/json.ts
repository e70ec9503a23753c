// Parsed JSON is `unknown` until checked: the one guard every reader of stored or received JSON uses.

/** A plain JSON object (not null, not an array). Read its fields with `Object.hasOwn` semantics only. */
export function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === "object" && value !== null && !Array.isArray(value);
}
