// The metric names and label names a PromQL expression refers to: enough of PromQL's
// grammar to tell series selectors from functions, keywords and label lists, so a test
// can check dashboards and rules against what Sluice really exports.

export interface Selector {
  readonly metric: string;
  /** Label names in the selector's {matchers}. */
  readonly labels: readonly string[];
}

export interface References {
  readonly selectors: readonly Selector[];
  /** Label names in by/without/on/ignoring/group_left/group_right lists. */
  readonly groupingLabels: readonly string[];
}

const TOKEN = /\s+|"(?:[^"\\]|\\.)*"|'(?:[^'\\]|\\.)*'|`[^`]*`|\[[^\]]*\]|\$\{?\w+\}?|[A-Za-z_:][A-Za-z0-9_:]*|(?:\d+(?:ms|[smhdwy]))+(?![A-Za-z0-9_])|\d+(?:\.\d+)?(?:e[+-]?\d+)?|=~|!~|!=|==|>=|<=|[{}(),=<>+\-*/^%@]/gy;
const LABEL_LISTS = new Set(['by', 'without', 'on', 'ignoring', 'group_left', 'group_right']);
const KEYWORDS = new Set(['and', 'or', 'unless', 'bool', 'offset', 'inf', 'nan',
  'sum', 'min', 'max', 'avg', 'count', 'stddev', 'stdvar', 'topk', 'bottomk', 'quantile', 'count_values', 'group']);

function tokens(expr: string): string[] {
  const out: string[] = [];
  TOKEN.lastIndex = 0;
  while (TOKEN.lastIndex < expr.length) {
    const at = TOKEN.lastIndex;
    const m = TOKEN.exec(expr);
    if (m === null) throw new Error(`cannot read PromQL at ${at}: ${JSON.stringify(expr.slice(at, at + 20))} in ${expr}`);
    if (m[0].trim() !== '') out.push(m[0]);
  }
  return out;
}

const isIdent = (t: string | undefined): t is string => t !== undefined && /^[A-Za-z_:]/.test(t);

export function references(expr: string): References {
  const t = tokens(expr);
  const selectors: Selector[] = [];
  const groupingLabels: string[] = [];
  for (let i = 0; i < t.length; i++) {
    const tok = t[i]!;
    if (!isIdent(tok)) continue;
    if (LABEL_LISTS.has(tok) && t[i + 1] === '(') {
      for (i += 2; i < t.length && t[i] !== ')'; i++) if (isIdent(t[i])) groupingLabels.push(t[i]!);
      continue;
    }
    if (t[i + 1] === '(' || KEYWORDS.has(tok.toLowerCase())) continue;
    const labels: string[] = [];
    if (t[i + 1] === '{') {
      // name op "value" [, ...] }
      for (i += 2; i < t.length && t[i] !== '}'; i++) if (isIdent(t[i]) && /^(=|!=|=~|!~)$/.test(t[i + 1] ?? '')) labels.push(t[i]!);
    }
    selectors.push({ metric: tok, labels });
  }
  return { selectors, groupingLabels };
}

/** Sample names in a Prometheus text exposition, each with the label names it carries. */
export function exposition(text: string): Map<string, Set<string>> {
  const out = new Map<string, Set<string>>();
  for (const line of text.split('\n')) {
    const m = /^([A-Za-z_:][A-Za-z0-9_:]*)(?:\{(.*)\})?\s/.exec(line);
    if (m === null) continue;
    const labels = out.get(m[1]!) ?? new Set<string>();
    for (const l of (m[2] ?? '').matchAll(/([A-Za-z_][A-Za-z0-9_]*)="(?:[^"\\]|\\.)*"/g)) labels.add(l[1]!);
    out.set(m[1]!, labels);
  }
  return out;
}
