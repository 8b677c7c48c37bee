/**
 * Plain-text tables for terminals: the CLI's `status` and `simulate`, and the benches.
 */

/** A cell: text as given, or a number (integers as they are, others to 3 decimals). */
export type TableCell = string | number;

/** Text that reads as a number ("12.50", "-3", "1e-9"), e.g. a number formatted by the caller. */
const NUMERIC_TEXT = /^[-+]?(\d+\.?\d*|\.\d+)(e[-+]?\d+)?$/i;

/**
 * A plain-text table: header row, a dashed rule, then rows. Numbers are right-aligned (non-integers
 * to 3 decimals), and so is a column whose text all reads as numbers (a caller wanting other
 * decimals passes `x.toFixed(2)`); other text is left-aligned. Columns come from the first row's
 * keys unless given. The one table formatter of the project (the CLI and the benches print through
 * it).
 */
export function formatTable(rows: readonly Readonly<Record<string, TableCell>>[], columns?: readonly string[]): string {
  if (rows.length === 0) return '';
  const cols = columns ?? Object.keys(rows[0]!);
  const fmt = (v: TableCell | undefined): string =>
    v === undefined ? '' : typeof v === 'number' ? (Number.isInteger(v) ? String(v) : v.toFixed(3)) : v;
  const cells = rows.map((r) => cols.map((c) => fmt(r[c])));
  const widths = cols.map((c, i) => cells.reduce((w, row) => Math.max(w, row[i]!.length), c.length));
  const numeric = cols.map((c) => rows.every((r) => typeof r[c] === 'number' || (typeof r[c] === 'string' && NUMERIC_TEXT.test(r[c]))));
  const pad = (s: string, i: number): string => (numeric[i] ? s.padStart(widths[i]!) : s.padEnd(widths[i]!));
  const lines = [cols.map((c, i) => pad(c, i)).join('  '), widths.map((w) => '-'.repeat(w)).join('  ')];
  for (const row of cells) lines.push(row.map((s, i) => pad(s, i)).join('  ').trimEnd());
  return lines.join('\n');
}

