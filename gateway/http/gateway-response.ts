import { ServerResponse, type IncomingMessage } from 'node:http';
import type { RequestContext } from '../pipeline/context.js';

/**
 * The gateway's responses (createServer's ServerResponse option). Each carries its
 * request's context and its in-flight slot, so one 'close' listener shared by every
 * request ends each of them: no closure and no `once` wrapper per request. Declared
 * fields keep them inside the object instead of in a property array added later.
 */
export class GatewayResponse<Request extends IncomingMessage = IncomingMessage> extends ServerResponse<Request> {
  ctx: RequestContext | undefined = undefined;
  /** Drain's slot for this response, handed back when it closes. */
  slot = -1;
}
