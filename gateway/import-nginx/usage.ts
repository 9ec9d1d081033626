/** `sluice import-nginx` in the gateway's usage text (kept apart so `sluice` loads a command only when it runs). */
export const IMPORT_USAGE = '  sluice import-nginx FILE [--out OUT.yaml] [--report REPORT.json] [--upstream-policy nginx|sluice]\n'
  + '                     [--allow-unenforced] [--verify]      (sluice import-nginx --report-schema: the report\'s JSON Schema)\n'
  + '                         convert an nginx config; the report (stderr) says what became of every directive;\n'
  + '                         --verify runs nginx and Sluice side by side and compares their answers';
