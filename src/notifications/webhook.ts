// Posts an event to the configured webhook: JSON, signed with HMAC-SHA256 when a secret is set, retried a few times.
import { createHmac } from 'node:crypto';

export const SIGNATURE_HEADER = 'X-VaultPAM-Signature';

export interface WebhookDelivery {
  delivered: boolean;
  attempts: number;
  /** The last failure (HTTP status or network error), when not delivered. */
  error?: string;
}

/** `sha256=<hex>`: what a receiver recomputes over the raw body with the shared secret. */
export function webhookSignature(body: string, secret: string): string {
  return `sha256=${createHmac('sha256', secret).update(body).digest('hex')}`;
}

export interface WebhookOptions {
  url: string;
  secret?: string;
  /** @default 3 */
  attempts?: number;
  /** Per attempt. @default 5000 */
  timeoutMs?: number;
  /** Before the second attempt, doubled each time. @default 500 */
  backoffMs?: number;
  /** Called on every attempt that did not deliver (heartbeats, logs). */
  onFailedAttempt?(attempt: number, error: string): void;
}

/** Never throws: a webhook that cannot be reached is reported, not fatal. A 2xx answer is delivered. */
export async function postWebhook(event: object, options: WebhookOptions): Promise<WebhookDelivery> {
  const body = JSON.stringify(event);
  const headers: Record<string, string> = { 'content-type': 'application/json' };
  if (options.secret) headers[SIGNATURE_HEADER] = webhookSignature(body, options.secret);
  const attempts = options.attempts ?? 3;
  let error = 'not attempted';
  for (let attempt = 1; attempt <= attempts; attempt += 1) {
    try {
      const response = await fetch(options.url, { method: 'POST', headers, body, signal: AbortSignal.timeout(options.timeoutMs ?? 5000) });
      await response.body?.cancel();
      if (response.ok) return { delivered: true, attempts: attempt };
      error = `HTTP ${response.status}`;
    } catch (err) {
      error = (err as Error).message;
    }
    options.onFailedAttempt?.(attempt, error);
    if (attempt < attempts) await new Promise((resolve) => setTimeout(resolve, (options.backoffMs ?? 500) * 2 ** (attempt - 1)));
  }
  return { delivered: false, attempts, error };
}
