/** `sluice config` in the gateway's usage text (kept apart so `sluice` loads a command only when it runs). */
export const CONFIG_USAGE = `  sluice config schema      print the config file's JSON Schema (config/sluice.schema.json)
  sluice config reference   print the config reference, every field from the schema (docs/config-reference.md)`;
