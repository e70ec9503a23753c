// Statistics for the benchmark: nearest-rank quantiles, distributions, ratios.

export function quantile(values: readonly number[], q: number): number {
  if (values.length === 0) return Number.NaN;
  const sorted = [...values].sort((a, b) => a - b);
  // Nearest rank: the smallest value with at least q of the samples at or below it.
  const rank = Math.max(1, Math.ceil(q * sorted.length));
  return sorted[rank - 1]!;
}
export const median = (values: readonly number[]) => quantile(values, 0.5);
export const round = (value: number, digits = 1) => Number(value.toFixed(digits));

export function distribution(values: readonly number[], digits = 1) {
  return {
    n: values.length,
    min: round(Math.min(...values), digits),
    p50: round(median(values), digits),
    p90: round(quantile(values, 0.9), digits),
    p99: round(quantile(values, 0.99), digits),
    max: round(Math.max(...values), digits),
  };
}

export function ratio(value: number, reference: number): number {
  return reference > 0 ? round(value / reference, 3) : Number.NaN;
}

/**
 * Paired per-rotation ratios: rotation i of `values` over rotation i of `references` (the two arms
 * ran back to back in the same processes), as median with p10 and p90.
 */
export function pairedRatio(
  values: readonly number[],
  references: readonly number[],
): { median: number; p10: number; p90: number; n: number } {
  const ratios: number[] = [];
  for (let i = 0; i < Math.min(values.length, references.length); i += 1) {
    if (references[i]! > 0) ratios.push(values[i]! / references[i]!);
  }
  return { median: round(median(ratios), 3), p10: round(quantile(ratios, 0.1), 3), p90: round(quantile(ratios, 0.9), 3), n: ratios.length };
}
