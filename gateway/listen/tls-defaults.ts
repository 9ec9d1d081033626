/**
 * The default cipher list: every TLS 1.3 suite, and for TLS 1.2 only forward-secret
 * AEAD suites (ECDHE with AES-GCM or ChaCha20-Poly1305), in the server's order. It is
 * Mozilla's "intermediate" list without the DHE suites, which need DH parameters and
 * which no client that negotiates ECDHE needs.
 */
export const DEFAULT_CIPHERS = [
  'TLS_AES_128_GCM_SHA256', 'TLS_AES_256_GCM_SHA384', 'TLS_CHACHA20_POLY1305_SHA256',
  'ECDHE-ECDSA-AES128-GCM-SHA256', 'ECDHE-RSA-AES128-GCM-SHA256',
  'ECDHE-ECDSA-AES256-GCM-SHA384', 'ECDHE-RSA-AES256-GCM-SHA384',
  'ECDHE-ECDSA-CHACHA20-POLY1305', 'ECDHE-RSA-CHACHA20-POLY1305',
].join(':');
