import { ErrorEnvelope } from '../../common/errors.js';
import { openApiDocument } from '../../common/openapi.js';
import { Colour, FetchRequest, Gravity, ImageOptions, WATERMARK_ID_PATTERN } from '../image/options-schema.js';

// The backend's OpenAPI 3.1 document. The request schemas are the validators' own
// (options-schema.ts); this file adds the paths, the answers and their descriptions.
// backends/service/openapi.json is this document as served; `npm run openapi` rewrites
// it and openapi.drift.test.ts fails when the two differ.

const ref = (name: string) => ({ $ref: `#/components/schemas/${name}` });

const STANDARD_HEADERS = {
  "X-Request-Id": { $ref: '#/components/headers/RequestId' },
  "X-Backend-Load": { $ref: '#/components/headers/BackendLoad' },
};

/** A JSON answer with the headers every answer carries. */
function answer(description: string, schema: string, headers: Record<string, unknown> = {}) {
  return { description, headers: { ...STANDARD_HEADERS, ...headers }, content: { "application/json": { schema: ref(schema) } } };
}

/** An error answer: the JSON error body. */
function failure(description: string, headers: Record<string, unknown> = {}) {
  return answer(description, 'Error', headers);
}

const BAD_BODY = failure('`bad_request`: bad options (error.field names the first option at fault, e.g. `resize.width`; the message lists every problem), empty body, malformed multipart, missing `file` field.');
const TOO_LARGE = failure('`payload_too_large`: the body (or fetched file) is over the max body bytes; refused from Content-Length before reading when declared.');
const OVERLOADED = failure(
  '`overloaded`: every processing slot and queue place is taken (the body was not read), or the wait for a slot exceeded the timeout; or `unavailable`: face detection is off.',
  { "Retry-After": { description: 'Seconds to wait before retrying.', schema: { type: 'integer' } } },
);
const PROCESSING_TIMEOUT = failure('`processing_timeout`: processing took longer than the timeout.');
const UNDECODABLE = {
  "415": failure('`unsupported_media_type`: the bytes are not an accepted image type (garbage, SVG while disabled, polyglots).'),
  "422": failure('`unprocessable_image` and others: an accepted type the decoder cannot read (truncated, corrupt), or over a pixel/frame/output limit.'),
};

/** What /v1/images and /v1/images/fetch answer alike. */
const PROCESSED = {
  "200": {
    description: 'The result metadata (default), or the image bytes when `Accept` prefers an `image/*` type.',
    headers: {
      ...STANDARD_HEADERS,
      "X-Image-Result": { description: 'With image bytes only: the same JSON as the metadata body.', schema: { type: 'string' } },
      "Content-Location": { description: 'With image bytes only: the result URL.', schema: { type: 'string' } },
    },
    content: {
      "application/json": { schema: ref('ImageResult') },
      "image/*": { schema: { type: 'string', contentMediaType: 'image/*' } },
    },
  },
  "202": answer('`webhook` given: accepted; the ImageResult (status "succeeded") or an error (status "failed") is POSTed to the webhook, '
    + 'signed with Standard Webhooks (webhook-id, webhook-timestamp, webhook-signature).', 'Accepted'),
  "400": BAD_BODY,
  "413": TOO_LARGE,
};

const WATERMARK_PARAMETERS = [
  { name: 'id', in: 'path', required: true, schema: { type: 'string', pattern: WATERMARK_ID_PATTERN } },
  { $ref: '#/components/parameters/RequestId' },
];

const paths = {
  "/v1/images": {
    post: {
      operationId: 'processImage',
      summary: 'Process an uploaded image',
      description: 'The image is the raw body (any Content-Type: the type is found from the bytes) or the multipart/form-data field `file`. Options come from the `options` form field or the `X-Options` header.',
      parameters: [
        {
          name: 'X-Options',
          in: 'header',
          required: false,
          description: 'Image options as JSON text (alternative to the `options` multipart field; not both).',
          schema: { type: 'string' },
          example: '{"resize":{"width":800},"format":"webp","quality":80}',
        },
        { $ref: '#/components/parameters/Accept' },
        { $ref: '#/components/parameters/RequestId' },
      ],
      requestBody: {
        required: true,
        content: {
          "application/octet-stream": { schema: { type: 'string', contentMediaType: 'application/octet-stream' } },
          "image/*": { schema: { type: 'string', contentMediaType: 'image/*' } },
          "multipart/form-data": {
            schema: {
              type: 'object',
              required: ['file'],
              properties: {
                file: { type: 'string', contentMediaType: 'application/octet-stream' },
                options: { type: 'string', contentMediaType: 'application/json', description: 'ImageOptions as JSON text.' },
              },
            },
          },
        },
      },
      responses: {
        ...PROCESSED,
        ...UNDECODABLE,
        "503": OVERLOADED,
        "504": PROCESSING_TIMEOUT,
      },
    },
  },
  "/v1/images/fetch": {
    post: {
      operationId: 'processImageFromUrl',
      summary: 'Fetch an image by URL and process it',
      description: 'http(s) only; size cap, timeout and redirect cap; loopback, private and link-local destinations are refused by resolved IP, on every redirect.',
      parameters: [{ $ref: '#/components/parameters/Accept' }, { $ref: '#/components/parameters/RequestId' }],
      requestBody: { required: true, content: { "application/json": { schema: ref('FetchRequest') } } },
      responses: {
        ...PROCESSED,
        "415": failure('`unsupported_media_type`: the request is not application/json, or the fetched bytes are not an accepted image type.'),
        "422": failure('`forbidden_destination`, `bad_redirect`, `too_many_redirects`, `fetch_failed`, or an undecodable image.'),
        "503": OVERLOADED,
        "504": failure('`upstream_timeout`: the fetch took too long; `processing_timeout`: processing did.'),
      },
    },
  },
  "/v1/results/{id}": {
    get: {
      operationId: 'getResult',
      summary: 'Download a stored result',
      description: 'Ids are 128-bit random capabilities (22 base64url characters). A result is kept for the configured TTL (default 3600 s) and then deleted; an expired result is never served.',
      parameters: [{ name: 'id', in: 'path', required: true, schema: { type: 'string', pattern: '^[A-Za-z0-9_-]{22}$' } }],
      responses: {
        "200": {
          description: 'The image.',
          headers: { ...STANDARD_HEADERS, "Cache-Control": { description: '`private, max-age=<seconds left>`', schema: { type: 'string' } }, "X-Content-Type-Options": { schema: { type: 'string', const: 'nosniff' } } },
          content: { "image/*": { schema: { type: 'string', contentMediaType: 'image/*' } } },
        },
        "404": failure('`not_found`: unknown, malformed or expired id.'),
      },
    },
  },
  "/v1/detect": {
    post: {
      operationId: 'detectFaces',
      summary: 'Find faces in an image',
      description: 'Same body forms as /v1/images (options are ignored). Boxes are in the input image\'s pixel coordinates after EXIF orientation.',
      parameters: [{ $ref: '#/components/parameters/RequestId' }],
      requestBody: {
        required: true,
        content: {
          "application/octet-stream": { schema: { type: 'string', contentMediaType: 'application/octet-stream' } },
          "multipart/form-data": { schema: { type: 'object', required: ['file'], properties: { file: { type: 'string', contentMediaType: 'application/octet-stream' } } } },
        },
      },
      responses: {
        "200": answer('Detections.', 'Detection'),
        "400": BAD_BODY,
        "413": TOO_LARGE,
        ...UNDECODABLE,
        "503": OVERLOADED,
        "504": PROCESSING_TIMEOUT,
      },
    },
  },
  "/openapi.json": {
    get: {
      operationId: 'openapi',
      summary: 'This document',
      responses: { "200": { description: 'OpenAPI 3.1 document.', content: { "application/json": { schema: { type: 'object' } } } } },
    },
  },
  "/healthz": {
    get: {
      operationId: 'health',
      summary: 'Liveness and current load',
      responses: {
        "200": {
          description: 'Up.',
          headers: { ...STANDARD_HEADERS },
          content: {
            "application/json": { schema: { type: 'object', properties: { status: { const: 'ok' }, load: ref('Load') } } },
          },
        },
      },
    },
  },
  "/metrics": {
    get: {
      operationId: 'metrics',
      summary: 'Prometheus metrics',
      description: 'Includes sluice_backend_inflight, sluice_backend_queued, sluice_backend_capacity, sluice_backend_requests_total{endpoint,status}, sluice_backend_processing_seconds{endpoint}.',
      responses: { "200": { description: 'Prometheus text format.', content: { "text/plain": { schema: { type: 'string' } } } } },
    },
  },
  "/v1/watermarks/{id}": {
    put: {
      operationId: 'putWatermark',
      summary: 'Upload (or replace) one of the caller\'s watermarks',
      description: 'Stored per customer (the gateway\'s X-Sluice-Customer), re-encoded as PNG; another customer\'s images can never use it. Limits: --watermark-max-bytes (default 1 MiB), --watermark-max-pixels (default 2048 × 2048).',
      parameters: WATERMARK_PARAMETERS,
      requestBody: { required: true, content: { "application/octet-stream": { schema: { type: 'string', contentMediaType: 'application/octet-stream' } } } },
      responses: {
        "201": {
          description: 'Stored.',
          headers: { ...STANDARD_HEADERS },
          content: {
            "application/json": {
              schema: {
                type: 'object',
                required: ['id', 'width', 'height', 'bytes'],
                properties: { id: { type: 'string' }, width: { type: 'integer' }, height: { type: 'integer' }, bytes: { type: 'integer' } },
              },
            },
          },
        },
        "400": failure('`bad_request`: bad id or empty body.'),
        "413": failure('`payload_too_large`: over the byte or pixel limit.'),
        "415": failure('`unsupported_media_type`: not an accepted image type.'),
        "422": failure('`unprocessable_image`: the image could not be decoded.'),
        "503": failure('`overloaded`: the backend is at capacity.'),
      },
    },
    delete: {
      operationId: 'deleteWatermark',
      summary: 'Delete one of the caller\'s watermarks',
      parameters: WATERMARK_PARAMETERS,
      responses: { "204": { description: 'Deleted.', headers: { ...STANDARD_HEADERS } }, "404": failure('`not_found`: the caller has no watermark by that id.') },
    },
  },
};

const parameters = {
  Accept: {
    name: 'Accept',
    in: 'header',
    required: false,
    description: 'An `image/*` range ranked at least as high as application/json returns the image bytes instead of JSON.',
    schema: { type: 'string' },
  },
  RequestId: {
    name: 'X-Request-Id',
    in: 'header',
    required: false,
    description: 'Echoed when it is a sane token (1-128 of A-Za-z0-9._:-, starting with a letter or digit), else generated.',
    schema: { type: 'string' },
  },
};

const headers = {
  RequestId: { description: 'The request id (echoed or generated).', schema: { type: 'string' } },
  BackendLoad: {
    description: '`inflight=<n>; queued=<m>; capacity=<c>`: jobs processing now, requests admitted but not processing (uploading, fetching, waiting for a slot), and concurrency + queue (admitted before 503).',
    schema: { type: 'string', pattern: '^inflight=\\d+; queued=\\d+; capacity=\\d+$' },
  },
};

const ImageInfo = {
  type: 'object',
  required: ['format', 'width', 'height', 'bytes'],
  properties: { format: { type: 'string' }, width: { type: 'integer' }, height: { type: 'integer' }, bytes: { type: 'integer' } },
};

const answers = {
  ImageInfo,
  ImageResult: {
      type: 'object',
      required: ['id', 'input', 'output', 'savings'],
      properties: {
        id: { type: 'string' },
        input: ref('ImageInfo'),
        output: {
          allOf: [
            ref('ImageInfo'),
            { type: 'object', required: ['url'], properties: { url: { type: 'string', description: '/v1/results/<id>' } } },
          ],
        },
        savings: {
          type: 'object',
          required: ['bytes', 'percent'],
          properties: { bytes: { type: 'integer', description: 'input bytes - output bytes (negative when the output is larger)' }, percent: { type: 'number' } },
        },
      },
    },
  Accepted: { type: 'object', required: ['id', 'status'], properties: { id: { type: 'string' }, status: { const: 'accepted' }, url: { type: 'string' } } },
  Load: { type: 'object', properties: { inflight: { type: 'integer' }, queued: { type: 'integer' }, capacity: { type: 'integer' } } },
  Detection: {
      type: 'object',
      required: ['faces', 'width', 'height'],
      properties: {
        faces: {
          type: 'array',
          items: {
            type: 'object',
            required: ['box', 'score'],
            properties: {
              box: {
                type: 'object',
                required: ['x', 'y', 'width', 'height'],
                properties: { x: { type: 'number' }, y: { type: 'number' }, width: { type: 'number' }, height: { type: 'number' } },
              },
              score: { type: 'number', minimum: 0, maximum: 1 },
            },
          },
        },
        width: { type: 'integer' },
        height: { type: 'integer' },
      },
    },
};

/** The document served at GET /openapi.json. */
export function backendOpenApi(): Record<string, unknown> {
  return openApiDocument({
    title: 'Sluice image backend',
    version: '0.1.0',
    description: 'Image processing API served by `sluice-backend` and reached through the Sluice gateway. Every error is `{"error":{"code","message","request_id"}}` '
      + '(plus `field` when one option or form field is at fault). Every response carries `X-Request-Id` and `X-Backend-Load`.',
    servers: ['http://127.0.0.1:7001'],
    paths,
    parameters,
    headers,
    plainSchemas: answers,
    schemas: { Error: ErrorEnvelope, ImageOptions, FetchRequest, Gravity, Colour },
  });
}

/** Where the document is kept in the source tree (server.ts serves it from there). */
export const OPENAPI_FILE = new URL('../../../backends/service/openapi.json', import.meta.url);

/** The file's exact text, as `npm run openapi` writes it. */
export function openApiText(): string {
  return `${JSON.stringify(backendOpenApi(), null, 2)}\n`;
}
