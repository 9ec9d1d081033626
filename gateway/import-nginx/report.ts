// The import report: what became of every directive, grouped the way an operator reads
// a config (by server, then location). Plain data; `format.ts` renders it for humans and
// the JSON form (`--report`) is described by report.schema.json.

/** A directive's place and a sentence about it; `file` is relative to nginx's conf prefix. */
export interface ReportItem {
  readonly file: string;
  readonly line: number;
  readonly directive: string;
  readonly reason: string;
}

/**
 * - `listed`: not translated; Sluice behaves differently in the way the reason says.
 * - `emulated`: the cause of a `not_migrated` route (the location answers 501).
 * - `not_enforced`: a Lua phase handler that is not translated: what it enforced is gone.
 * - `note`: translated, with a difference worth knowing that needs no action.
 */
export type ItemKind = 'listed' | 'emulated' | 'not_enforced' | 'note';

export interface PlacedItem extends ReportItem {
  readonly kind: ItemKind;
}

/** What a location became. */
/** no_route: no Sluice route can match its paths (a regex the gateway cannot run); listed loudly. */
export type RouteOutcome = 'translated' | 'emulated' | 'internal' | 'unreachable' | 'named' | 'no_route';

export interface LocationReport {
  /** As written: `location ~* \.php$`. */
  readonly location: string;
  readonly at: string;
  /** The Sluice route's name (none for unreachable and named locations). */
  readonly route: string | undefined;
  readonly outcome: RouteOutcome;
  /** Which requests this concerns, in words (for emulated routes: who gets the 501). */
  readonly requests: string;
  readonly items: PlacedItem[];
}

export interface ServerReport {
  readonly name: string;
  readonly at: string;
  readonly server_names: readonly string[];
  readonly listen: readonly string[];
  readonly items: PlacedItem[];
  readonly locations: LocationReport[];
}

export interface VerifyDifference {
  readonly request: string;
  readonly server: string | undefined;
  readonly location: string | undefined;
  readonly field: string;
  readonly nginx: string;
  readonly sluice: string;
  /** The report item that already says this request differs, when there is one. */
  readonly listed_by: string | undefined;
}

export interface VerifySummary {
  readonly requests: number;
  readonly same: number;
  readonly listed_differences: number;
  readonly unlisted_differences: number;
  readonly differences: readonly VerifyDifference[];
}

export interface ImportReport {
  readonly schema_version: 1;
  readonly source: string;
  /** `nginx`: imported upstreams fail over and eject as nginx's defaults do; `sluice`: Sluice's retries and outlier ejection. */
  readonly upstream_policy: 'nginx' | 'sluice';
  readonly counts: {
    readonly translated: number;
    readonly emulated: number;
    readonly listed: number;
    readonly not_enforced: number;
    readonly notes: number;
    /** Requests --verify found answered alike by nginx and Sluice (null without --verify). */
    readonly verified: number | null;
  };
  /** Directives translated (kept from the first report format). */
  readonly translated: number;
  /** Every directive not translated as it was: listed, emulated and not enforced alike, by file and line. */
  readonly untranslated: readonly ReportItem[];
  readonly notes: readonly ReportItem[];
  /** Lua phase handlers whose effect Sluice does not reproduce. */
  readonly not_enforced: readonly ReportItem[];
  readonly servers: readonly ServerReport[];
  /** Items outside every server (main, events, http, upstream blocks). */
  readonly global: readonly PlacedItem[];
  readonly errors: readonly string[];
  readonly verify: VerifySummary | null;
}

export function byPlace(a: ReportItem, b: ReportItem): number {
  return a.file < b.file ? -1 : a.file > b.file ? 1 : a.line - b.line;
}
