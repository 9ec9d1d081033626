/** `sluice admin` in the gateway's usage text (kept apart so `sluice` loads a command only when it runs). */
export const ADMIN_USAGE = `  sluice admin COMMAND [--url URL] [--token TOKEN] [--json] [--timeout SECONDS]
                         manage keys and customers through the admin API
                         (--url/--token default to SLUICE_ADMIN_URL/SLUICE_ADMIN_TOKEN;
                         sluice admin --help lists the commands and exit codes)`;
