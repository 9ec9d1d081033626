/** `sluice loadtest` in the gateway's usage text (kept apart so `sluice` loads the load tester only when asked). */
export const LOADTEST_USAGE = `  sluice loadtest SCENARIO.yaml [--target URL] [--admin URL] [--out DIR] [--redis URL]
                 [--compare URL[,admin=URL] | --compare RESULT.json ...] [--assert EXPR ...]
                 [--gateway-pid PID ...] [--admin-token TOKEN] [--quiet]
                         open-model load with an exactness oracle; exit 0 gates passed,
                         1 a gate failed, 2 bad usage or scenario, 3 invalid run
  sluice loadtest --schema
                         print the scenario's JSON Schema (load-tests/scenarios/scenario.schema.json)`;
