/** What `sluice admin` exits with; docs/admin.md "Admin CLI" documents the same table. */
export const EXIT = {
  ok: 0,
  /** The admin API refused the request (400, 409, 413, 5xx) or did not answer as the admin API does. */
  refused: 1,
  /** Bad command line; nothing was sent. */
  usage: 2,
  /** 404: no such key or customer. */
  notFound: 3,
  /** 401 or 403: wrong or missing token, or the admin API is disabled. */
  auth: 4,
  /** No answer: connection refused, DNS, or no reply within --timeout. */
  unreachable: 5,
} as const;

export type ExitCode = (typeof EXIT)[keyof typeof EXIT];

export function exitForStatus(status: number): ExitCode {
  if (status === 404) return EXIT.notFound;
  if (status === 401 || status === 403) return EXIT.auth;
  return EXIT.refused;
}
