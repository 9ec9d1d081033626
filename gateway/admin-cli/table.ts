/** Columns padded to their widest cell, a header row in capitals, two spaces between. */
export function table(columns: readonly string[], rows: readonly (readonly string[])[]): string {
  const all = [columns.map((c) => c.toUpperCase()), ...rows];
  const widths = columns.map((_, i) => Math.max(...all.map((r) => (r[i] ?? '').length)));
  return all.map((r) => r.map((cell, i) => (i === r.length - 1 ? cell : cell.padEnd(widths[i]!))).join('  ').trimEnd()).join('\n') + '\n';
}

/** One record as FIELD / VALUE rows. */
export function record(fields: readonly (readonly [string, unknown])[]): string {
  return table(['field', 'value'], fields.map(([k, v]) => [k, show(v)]));
}

export function show(v: unknown): string {
  if (v === undefined || v === null) return '-';
  return typeof v === 'string' ? v : JSON.stringify(v);
}

/** RFC 4180 CSV: a header row, then one line per row; cells with a comma, quote or line break are quoted. */
export function csv(columns: readonly string[], rows: readonly (readonly string[])[]): string {
  const cell = (v: string): string => (/[",\r\n]/.test(v) ? `"${v.replaceAll('"', '""')}"` : v);
  return [columns, ...rows].map((r) => r.map(cell).join(',')).join('\r\n') + '\r\n';
}
