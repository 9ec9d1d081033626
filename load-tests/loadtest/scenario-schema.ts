import { Type, type Static, type TNumber, type TString } from '@sinclair/typebox';
import { documentSchema } from '../../common/schema-check.js';
import { StringEnum, TaggedUnion } from '../../common/schema-types.js';

// The scenario file of `sluice loadtest`, defined once: the type scenario.ts reads, the
// validator, and load-tests/scenarios/scenario.schema.json (`sluice loadtest --schema`)
// that editors check the YAML against. What a schema cannot say (steps adding up to the
// duration, unique group names, folders of images) is scenario.ts's semantic pass.

const MAX_DURATION_S = 24 * 3600;
const MAX_RATE = 1_000_000;
const MAX_KEYS = 1_000_000;

const closed = { additionalProperties: false } as const;

const Url = (description: string): TString => Type.String({
  pattern: '^https?://[^\\s/?#]+([/?#]\\S*)?$', patternErrorMessage: 'must be an http:// or https:// URL', description,
});
const Rate = (description = 'requests per second'): TNumber => Type.Number({ minimum: 0, maximum: MAX_RATE, description });

const Arrival = TaggedUnion('profile', [
  Type.Object({ profile: Type.Literal('constant'), rate: Rate() }, { ...closed, description: 'evenly spaced sends at `rate`' }),
  Type.Object({ profile: Type.Literal('poisson'), rate: Rate() }, { ...closed, description: 'random (exponential) gaps averaging `rate`' }),
  Type.Object({ profile: Type.Literal('ramp'), from: Rate('requests per second at the start'), to: Rate('requests per second at the end') },
    { ...closed, description: 'a straight line from `from` to `to`' }),
  Type.Object({
    profile: Type.Literal('steps'),
    steps: Type.Array(Type.Object({ rate: Rate(), duration_s: Type.Number({ minimum: 0.001 }) }, closed),
      { minItems: 1, description: 'constant rates in turn; their durations add up to duration_s' }),
  }, closed),
  Type.Object({
    profile: Type.Literal('bursts'),
    rate: Rate('requests per second between bursts'),
    burst_rate: Rate('requests per second during a burst'),
    every_s: Type.Number({ minimum: 0.01, default: 10, description: 'a burst starts every this many seconds' }),
    burst_s: Type.Number({ minimum: 0.001, default: 1, description: 'each burst lasts this long (at most every_s)' }),
  }, closed),
], { description: 'how requests arrive over the run' });

const Plan = Type.Object({
  rate: Type.Number({ minimum: 0, default: 0, description: 'requests per second (token bucket refill); 0 = no limit' }),
  burst: Type.Optional(Type.Number({ minimum: 0, description: 'bucket size; default rate' })),
  quota_day: Type.Integer({ minimum: 0, default: 0 }),
  quota_month: Type.Integer({ minimum: 0, default: 0 }),
  max_inflight: Type.Integer({ minimum: 0, default: 0 }),
}, { ...closed, description: 'the limits this group is expected to get (0 = no such limit)' });

// Either a file of keys, or count and plan (keys made through the admin API).
const Keys = Type.Object({
  file: Type.Optional(Type.String({ minLength: 1, description: 'one key per line; # comments' })),
  count: Type.Optional(Type.Integer({ minimum: 1, maximum: MAX_KEYS, description: 'keys made through POST /admin/keys, one customer each; default 1' })),
  plan: Type.Optional(Type.String({ minLength: 1, description: "the gateway's plan for the keys made" })),
}, {
  ...closed,
  if: { required: ['file'] },
  then: {
    not: { anyOf: [{ required: ['count'] }, { required: ['plan'] }] },
    errorMessage: 'give either file, or count and plan (keys created through the admin API), not both',
  },
  else: { required: ['plan'], properties: { count: { default: 1 } } },
});

const Request = Type.Object({
  method: Type.String({ pattern: '^[A-Za-z]{1,16}$', patternErrorMessage: 'must be an HTTP method', default: 'GET' }),
  path: Type.String({ pattern: '^/', patternErrorMessage: 'must start with /', default: '/' }),
  body_dir: Type.Optional(Type.String({ minLength: 1, description: 'a folder of images sent as bodies, in turn' })),
  options: Type.Optional(Type.Record(Type.String(), Type.Unknown(), { description: 'sent as the X-Options header, JSON' })),
  headers: Type.Record(Type.String(), Type.Unsafe<string | number>({ type: ['string', 'number'] }), { default: {} }),
  cost: Type.Integer({ minimum: 0, maximum: 1_000_000, default: 1,
    description: "units the gateway's plan charges for this request (its costs); the oracle judges the plan in units. Keep it within the burst, and priced exactly (no settlement), for an exact verdict" }),
}, { ...closed, default: {} });

const MixEntry = Type.Object({
  weight: Type.Number({ minimum: 0, default: 1, description: "share of the group's requests" }),
  request: Request,
}, closed);

const Group = Type.Object({
  name: Type.String({ pattern: '^[A-Za-z0-9_-]{1,64}$', patternErrorMessage: 'must be 1-64 of A-Z a-z 0-9 _ -' }),
  weight: Type.Number({ minimum: 0, default: 1, description: 'share of the arrivals (weights are normalised over all groups)' }),
  keys: Keys,
  plan: Plan,
  choice: StringEnum(['uniform', 'zipf'], { default: 'uniform', description: 'how a request picks its key' }),
  zipf_s: Type.Number({ minimum: 0, default: 1.1 }),
  request: Request,
  mix: Type.Optional(Type.Array(MixEntry, { minItems: 1, maxItems: 16,
    description: "several kinds of request on the group's keys (say cheap and dear operations on one plan), each drawn by weight; instead of request" })),
}, closed);

export const ScenarioSchema = Type.Object({
  name: Type.String({ minLength: 1, default: 'scenario' }),
  target: Url('the gateway loaded'),
  admin: Type.Optional(Type.Object({
    url: Type.Optional(Url('its admin API, to make keys')),
    token: Type.Optional(Type.String({ minLength: 1 })),
    token_env: Type.Optional(Type.String({ minLength: 1, description: 'the environment variable holding the token' })),
  }, closed)),
  duration_s: Type.Number({ minimum: 0.1, maximum: MAX_DURATION_S }),
  arrival: Arrival,
  seed: Type.Integer({ minimum: 0, default: 1, description: 'the same seed gives the same schedule' }),
  groups: Type.Array(Group, { default: [] }),
  abusive: Type.Array(Group, { default: [], description: 'groups judged the same way, listed apart in the report' }),
  invalid_keys: Type.Optional(Type.Object({
    weight: Type.Number({ minimum: 0, default: 1 }),
    count: Type.Integer({ minimum: 1, maximum: MAX_KEYS, default: 10 }),
    request: Request,
  }, { ...closed, description: 'keys nobody issued: each must get 401' })),
  generator: Type.Object({
    workers: Type.Integer({ minimum: 1, maximum: 64, default: 1, description: 'worker_threads sending the schedule' }),
    connections: Type.Integer({ minimum: 1, maximum: 65_536, default: 256 }),
    timeout_ms: Type.Number({ minimum: 1, default: 10_000 }),
    late_ms: Type.Number({ minimum: 0, default: 100, description: 'a send later than this counts as late' }),
    max_late_fraction: Type.Number({ minimum: 0, maximum: 1, default: 0.05, description: 'more late sends than this: the run is invalid' }),
    max_loop_lag_ms: Type.Number({ minimum: 1, default: 200, description: 'a generator event-loop delay p99 above this: the run is invalid' }),
  }, { ...closed, default: {} }),
  oracle: Type.Object({
    tolerance_ms: Type.Number({ minimum: 0, default: 5, description: 'clock and measurement jitter allowed around each send and answer' }),
    decision_window_ms: Type.Number({ minimum: 0, default: 1000, description: "the gateway decides a request's limits within this long after it was sent" }),
  }, { ...closed, default: {} }),
  backend_header: Type.Optional(Type.String({ minLength: 1, description: 'a response header naming the backend that served the request' })),
  gates: Type.Array(Type.String({ minLength: 1 }), { default: [], description: 'gates as --assert takes them' }),
}, {
  ...closed,
  $schema: 'http://json-schema.org/draft-07/schema#',
  title: 'sluice loadtest scenario',
  description: 'docs/load-testing.md; `sluice loadtest --schema` prints this schema',
});

export type ScenarioFile = Static<typeof ScenarioSchema>;
export type GroupFile = Static<typeof Group>;
export type RequestFile = Static<typeof Request>;

/** What `sluice loadtest --schema` prints and load-tests/scenarios/scenario.schema.json holds. */
export function scenarioJsonSchema(): Record<string, unknown> {
  return documentSchema(ScenarioSchema);
}
