import { isForbiddenAddress, parseIp } from '../../backends/net/address-policy.js';
import { checkUrl, defaultResolver, type Resolver } from '../../backends/net/safe-fetch.js';

// A customer's webhook_url, checked when it is registered by the rules sluice-webhooks
// applies to every delivery (backends/net/): http(s), no credentials in it, and no
// loopback, private, link-local or other special address unless `allow` lists it. The
// worker checks the resolved address again on every attempt (DNS may change); this is
// so that a wrong URL is refused where it is written, not found in a dead letter.

/** What is wrong with the URL itself (scheme, credentials, a literal address), or undefined. */
export function webhookUrlProblem(raw: string, allow: readonly string[]): string | undefined {
  let url: URL;
  try {
    url = checkUrl(raw, 'request');
  } catch (err) {
    return (err as Error).message;
  }
  const host = url.hostname.replace(/^\[|\]$/g, '');
  if (parseIp(host) !== undefined && isForbiddenAddress(host, allow)) return `${host} is a loopback, private or special address (billing.quota_warnings.allow lists exceptions)`;
  return undefined;
}

/** As webhookUrlProblem, and every address the host resolves to now must be allowed too. */
export async function checkWebhookUrl(raw: string, allow: readonly string[], resolve: Resolver = defaultResolver): Promise<string | undefined> {
  const problem = webhookUrlProblem(raw, allow);
  if (problem !== undefined) return problem;
  const host = new URL(raw).hostname.replace(/^\[|\]$/g, '');
  if (parseIp(host) !== undefined) return undefined;
  let addresses;
  try {
    addresses = await resolve(host);
  } catch {
    return `${host} does not resolve`;
  }
  const bad = addresses.find((a) => isForbiddenAddress(a.address, allow));
  return bad === undefined ? undefined : `${host} resolves to ${bad.address}, a loopback, private or special address`;
}
