/**
 * "did you mean": the nearest of a command's own words to a mistyped one,
 * by edit distance (insert, delete, replace, or swap two neighbours: the
 * slips of a typist). Pure.
 */

/** Edits from `a` to `b`, a swap of two neighbouring characters counting one (optimal string alignment). */
export function editDistance(a: string, b: string): number {
  const rows = a.length + 1;
  const cols = b.length + 1;
  const d: number[][] = Array.from({ length: rows }, (_, i) => Array.from({ length: cols }, (_, j) => (i === 0 ? j : j === 0 ? i : 0)));
  for (let i = 1; i < rows; i++) {
    for (let j = 1; j < cols; j++) {
      const cost = a[i - 1] === b[j - 1] ? 0 : 1;
      let best = Math.min(d[i - 1]![j]! + 1, d[i]![j - 1]! + 1, d[i - 1]![j - 1]! + cost);
      if (i > 1 && j > 1 && a[i - 1] === b[j - 2] && a[i - 2] === b[j - 1]) best = Math.min(best, d[i - 2]![j - 2]! + 1);
      d[i]![j] = best;
    }
  }
  return d[a.length]![b.length]!;
}

/**
 * The candidate `typed` most likely meant, or null when none is close: at
 * most a third of its characters wrong (one at least), or a candidate it
 * begins (`--expires` for `--expires-at`). Ties go to the first listed.
 */
export function nearest(typed: string, candidates: readonly string[]): string | null {
  const limit = Math.max(1, Math.floor(typed.length / 3));
  let best: string | null = null;
  let bestDistance = Infinity;
  for (const c of candidates) {
    const d = editDistance(typed, c);
    if (d < bestDistance && d <= limit) [best, bestDistance] = [c, d];
  }
  if (best !== null) return best;
  if (typed.length >= 3) return candidates.find((c) => c.startsWith(typed)) ?? null;
  return null;
}
