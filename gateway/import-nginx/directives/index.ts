// Every directive the importer reads, one handler each (or one per small family). A new
// nginx directive: a file beside this one and a line here. Directives in no handler are
// reported by unhandled.ts's table.

import type { DirectiveHandler } from '../table.js';
import { access, errorPage, ifDirective, internal, returnDirective, rewrite, set, tryFiles } from './answers.js';
import { events, http, location, server } from './blocks.js';
import { limitConnZone, limitReqZone } from './limit-zones.js';
import { limitConn, limitReq, limitStatus } from './limits.js';
import { listen, serverName } from './listen.js';
import { luaInit, luaPhase, luaSettings, luaSharedDict } from './lua.js';
import { proxyHideHeader, proxyHttpVersion, proxyPass, proxySetHeader, proxyTimeouts } from './proxy.js';
import { addHeader, clientMaxBodySize, defaultType, include, realIp, ssl } from './settings.js';
import { upstream } from './upstream.js';

export const HANDLERS: readonly DirectiveHandler[] = [
  http, server, location, events, include,
  listen, serverName, ssl,
  upstream, limitReqZone, limitConnZone, limitReq, limitConn, limitStatus,
  proxyPass, proxySetHeader, proxyHideHeader, proxyHttpVersion, proxyTimeouts,
  returnDirective, rewrite, set, ifDirective, internal, tryFiles, access, errorPage,
  addHeader, clientMaxBodySize, defaultType, realIp,
  luaPhase, luaInit, luaSharedDict, luaSettings,
];
