/**
 * RFC 5952 text of an IPv6 address given as its eight 16-bit groups:
 * lowercase, no leading zeros, the longest run (first on a tie) of two or
 * more zero groups as "::". Shared by the capture records and the CIDR
 * canonicalizer so one address has one spelling everywhere.
 */
export function compressIPv6Groups(groups: readonly number[]): string {
  let bestStart = -1;
  let bestLength = 1;
  for (let i = 0; i < groups.length; ) {
    if (groups[i] !== 0) {
      i++;
      continue;
    }
    let j = i;
    while (j < groups.length && groups[j] === 0) j++;
    if (j - i > bestLength) {
      bestStart = i;
      bestLength = j - i;
    }
    i = j;
  }
  const hex = groups.map((g) => g.toString(16));
  if (bestStart < 0) return hex.join(':');
  return `${hex.slice(0, bestStart).join(':')}::${hex.slice(bestStart + bestLength).join(':')}`;
}
