// What the image service's route handlers share: the injected dependencies, the options,
// and the long-lived parts createImageService builds once (pool, metrics, stores). The
// handlers are in routes/, one file per endpoint; the table is routes.ts.
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Logger } from 'pino';
import type { BodyRate } from '../../common/body-rate.js';
import type { CustomerStore, Detection, ImageLimits, ImageOptions, OutputFormat, ProcessResult, WatermarkLimits, WatermarkSource } from '../image/types.js';
import type { BackendMetrics } from './metrics.js';
import type { Pool, Reservation } from './pool.js';
import type { ResultsStore } from './results-store.js';
import type { S3ResultsConfig } from './results-s3-store.js';
import type { WatermarkStore } from './watermarks-store.js';

/**
 * Everything that touches pixels or the network is injected (so the HTTP layer is tested
 * with stand-ins and wired to the real modules in wire.ts).
 */
export interface ServiceDeps {
  /**
   * Decode, transform, encode; throws ImageError for anything the client got wrong.
   * `accepted`: the formats the client's Accept takes (format: auto chooses among them).
   */
  readonly process: (input: Buffer, opts: ImageOptions, limits: ImageLimits, watermarks: WatermarkSource, accepted: ReadonlySet<OutputFormat> | undefined) => Promise<ProcessResult>;
  /** Faces in an encoded image; undefined when face detection is off (→ 503). */
  readonly detect: ((input: Buffer) => Promise<Detection>) | undefined;
  /** Downloads a client-chosen URL under the SSRF guard; throws ImageError. */
  readonly fetch: (url: string) => Promise<{ readonly body: Buffer }>;
  /** The JSON body of a fetch request; throws ImageError naming every bad field. */
  readonly parseFetchRequest: (raw: unknown) => { readonly url: string; readonly options: ImageOptions };
  /** Writes an output into the customer's bucket (the `store` option); throws ImageError. Undefined: `store` is a 400. */
  readonly storeOutput?: ((target: CustomerStore, data: Buffer, contentType: string) => Promise<void>) | undefined;
  readonly parseOptionsHeader: (text: string | undefined) => ImageOptions;
  /** In-process sender or queue; undefined when neither is configured (→ 400 on `webhook`). */
  readonly webhooks: { send(customer: string, url: string, payload: object, delayMs?: number): void; close(): void | Promise<void> } | undefined;
  readonly log?: Logger | undefined;
}

export interface ServiceOptions {
  readonly concurrency: number;
  readonly queue: number;
  readonly retryAfterSeconds: number;
  readonly limits: ImageLimits;
  readonly resultsDir: string | undefined;
  /** Results in S3-compatible storage instead of resultsDir. */
  readonly resultsS3?: S3ResultsConfig | undefined;
  readonly resultTtlSeconds: number;
  readonly sweepIntervalMs?: number | undefined;
  readonly openapiPath?: string | URL | undefined;
  /** Undefined: a temp directory per process (watermarks then die with it). */
  readonly watermarksDir?: string | undefined;
  readonly watermarkLimits?: WatermarkLimits | undefined;
  /** Default DEFAULT_BODY_RATE. */
  readonly bodyRate?: BodyRate | undefined;
}

export interface ServiceContext {
  readonly deps: ServiceDeps;
  readonly log: Logger;
  readonly pool: Pool;
  readonly metrics: BackendMetrics;
  readonly store: ResultsStore;
  readonly watermarks: WatermarkStore;
  readonly limits: ImageLimits;
  readonly bodyRate: BodyRate;
  /** The OpenAPI document, read and parsed once at start. */
  readonly openapi: Buffer;
  /** The Retry-After of a 503 overloaded. */
  readonly retryAfter: string;
  /** `webhook` jobs answered 202 whose outcome is not yet handed to the sender; close waits for them. */
  readonly sending: Set<Promise<void>>;
}

/** One request and its answer. */
export interface Exchange {
  readonly req: IncomingMessage;
  readonly res: ServerResponse;
  readonly rid: string;
  /** The path without the query. */
  readonly path: string;
}

/** The pool place an admitted request holds; `detached` once a background job owns it (and releases it). */
export interface Ticket {
  readonly slot: Reservation;
  detached: boolean;
}

/**
 * Whose watermarks a request may use: the identity the gateway established. A request
 * that reached the backend directly has none and gets the shared anonymous namespace.
 */
export function customerOf(req: IncomingMessage): string {
  const c = req.headers['x-sluice-customer'];
  return typeof c === 'string' ? c : '';
}

interface RouteShape {
  /** The `endpoint` label of the metrics. */
  readonly endpoint: string;
  /** The exact path, or, ending in '/', a prefix. */
  readonly path: string;
  /** The methods allowed, as the Allow header of a 405 lists them. */
  readonly methods: string;
}

/** An endpoint whose requests take a place in the pool before their body is read. */
export interface AdmittedRoute extends RouteShape {
  readonly admit: true;
  handle(ctx: ServiceContext, ex: Exchange, ticket: Ticket): Promise<void>;
}

export interface PlainRoute extends RouteShape {
  readonly admit: false;
  handle(ctx: ServiceContext, ex: Exchange): void | Promise<void>;
}

export type Route = AdmittedRoute | PlainRoute;
