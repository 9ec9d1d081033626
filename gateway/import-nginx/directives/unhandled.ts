// Directives no handler translates, by what their absence does: `emulated` ones decide
// the answer (the location becomes a not_migrated route), the others are listed with the
// difference they leave. One table, so the whole policy is visible in one place.

import type { ItemKind } from '../report.js';

interface Rule { readonly names: readonly string[] | RegExp; readonly kind: Exclude<ItemKind, 'note'>; readonly reason: string }

const RULES: readonly Rule[] = [
  { names: ['fastcgi_pass', 'uwsgi_pass', 'scgi_pass', 'grpc_pass', 'memcached_pass'], kind: 'emulated', reason: 'Sluice proxies HTTP only' },
  { names: ['auth_basic', 'auth_request', 'auth_jwt', 'auth_digest'], kind: 'emulated', reason: 'nginx authenticates these requests; Sluice would not (use Sluice keys and plans: routes[].public: false)' },
  { names: ['limit_except'], kind: 'emulated', reason: 'method restrictions with their own access rules are not translated' },
  { names: ['stub_status', 'empty_gif', 'autoindex', 'perl', 'echo', 'js_content', 'flv', 'mp4', 'hls', 'dav_methods', 'image_filter'], kind: 'emulated', reason: 'nginx answers these requests itself; Sluice has no such handler' },
  { names: ['satisfy'], kind: 'emulated', reason: 'satisfy combines access and authentication rules; not translated' },
  { names: ['root', 'alias', 'index', 'autoindex_exact_size', 'autoindex_format', 'autoindex_localtime', 'open_file_cache', 'open_file_cache_valid', 'open_file_cache_min_uses', 'open_file_cache_errors', 'sendfile', 'tcp_nopush', 'tcp_nodelay', 'aio', 'directio', 'etag', 'if_modified_since', 'expires', 'log_not_found', 'disable_symlinks', 'types_hash_max_size', 'types_hash_bucket_size', 'server_names_hash_bucket_size', 'server_names_hash_max_size'],
    kind: 'listed', reason: 'static files: Sluice serves none (a location that would serve files answers 501 not_migrated)' },
  { names: /^(ssl_|proxy_ssl_)/, kind: 'listed', reason: 'TLS setting with no Sluice equivalent' },
  { names: /^(gzip|brotli)/, kind: 'listed', reason: 'compression: Sluice passes bodies as the upstream sent them' },
  { names: /^proxy_(cache|store|temp|buffer|busy_buffers|max_temp|no_cache|intercept_errors|request_buffering|ignore_headers|pass_header|pass_request|redirect|cookie|next_upstream|socket_keepalive|bind|method|set_body|headers_hash|force_ranges|limit_rate|pass_request_body|pass_request_headers)/,
    kind: 'listed', reason: 'proxy setting with no Sluice equivalent' },
  { names: /(_log|^log_format|^log_subrequest|^open_log_file_cache)$/, kind: 'listed', reason: 'logging: Sluice writes one JSON access line per request (log.access)' },
  { names: ['worker_processes', 'worker_connections', 'worker_rlimit_nofile', 'worker_cpu_affinity', 'worker_priority', 'worker_shutdown_timeout', 'events', 'user', 'pid', 'load_module', 'daemon', 'master_process', 'multi_accept', 'use', 'accept_mutex', 'thread_pool', 'timer_resolution', 'env', 'pcre_jit', 'lock_file', 'working_directory'],
    kind: 'listed', reason: 'nginx process setting with no Sluice equivalent (Sluice: --workers)' },
  { names: ['keepalive_timeout', 'keepalive_requests', 'client_header_timeout', 'client_body_timeout', 'send_timeout', 'reset_timedout_connection', 'lingering_close', 'lingering_time', 'lingering_timeout', 'client_header_buffer_size', 'large_client_header_buffers', 'client_body_buffer_size', 'client_body_in_file_only', 'client_body_in_single_buffer', 'server_tokens', 'charset', 'source_charset', 'merge_slashes', 'underscores_in_headers', 'ignore_invalid_headers', 'absolute_redirect', 'port_in_redirect', 'server_name_in_redirect', 'msie_padding', 'msie_refresh', 'recursive_error_pages', 'chunked_transfer_encoding', 'resolver', 'resolver_timeout', 'http2', 'http2_push_preload', 'http2_max_concurrent_streams', 'variables_hash_max_size', 'variables_hash_bucket_size', 'map_hash_bucket_size', 'map_hash_max_size', 'output_buffers', 'postpone_output', 'max_ranges'],
    kind: 'listed', reason: 'connection or protocol setting: Sluice has its own (server.* in the config)' },
  { names: ['map', 'geo', 'split_clients', 'types'], kind: 'listed', reason: 'computes variables; a Sluice route uses only the documented variables' },
  { names: ['sub_filter', 'sub_filter_once', 'sub_filter_types', 'sub_filter_last_modified', 'addition_types', 'add_before_body', 'add_after_body', 'ssi', 'xslt_stylesheet', 'more_set_headers', 'more_clear_headers', 'more_set_input_headers', 'more_clear_input_headers'],
    kind: 'listed', reason: 'response (or request) rewriting with no Sluice equivalent' },
  { names: ['mirror', 'mirror_request_body'], kind: 'listed', reason: 'request mirroring is not translated: the mirror gets nothing' },
  { names: ['limit_rate', 'limit_rate_after'], kind: 'listed', reason: 'response bandwidth limits are not translated' },
];

/** How an unhandled directive is reported. */
export function unhandled(name: string): { kind: Exclude<ItemKind, 'note'>; reason: string } {
  for (const r of RULES) {
    if (Array.isArray(r.names) ? r.names.includes(name) : (r.names as RegExp).test(name)) return r;
  }
  return { kind: 'listed', reason: 'no Sluice equivalent' };
}
