/**
 * Completing a payment after the shopper's redirect (3-D Secure on a processor that redirects the
 * shopper's browser, e.g. Adyen's RedirectShopper): the processor's proof of what the shopper did
 * (`redirectResult`) goes back to the processor, which answers like an authorization. A connector
 * that needs it implements `completeRedirect`; `types.ts` is left as it is (docs/connectors.md).
 */
import type { AuthorizeResult } from './types.ts';

export interface RedirectContext {
  paymentId: string;
  amount: number;
  captureMethod: 'automatic' | 'manual';
}

export interface CompletesRedirect {
  completeRedirect(redirectResult: string, context: RedirectContext): Promise<AuthorizeResult>;
}

export const completesRedirect = (a: unknown): a is CompletesRedirect =>
  typeof (a as { completeRedirect?: unknown } | null)?.completeRedirect === 'function';
