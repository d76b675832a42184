/**
 * Local defaults of the processors' provided secrets (lib/topology.ts and ./webhooks.ts declare
 * the secrets): what the local runtime uses, and gives its simulators, when the operator's
 * environment does not set ADYEN_API_KEY / ADYEN_HMAC_KEY. Test values only, never valid at a
 * processor.
 */

/** The Adyen simulator's API key (X-API-Key). */
export const ADYEN_LOCAL_API_KEY = 'AQE_paystep_local_adyen_simulator_key';

/** The HMAC key of the Adyen simulator's notifications: hex, as Adyen's Customer Area shows it. */
export const ADYEN_LOCAL_HMAC_KEY = '44782DEF547AAA06C910C43932B1EB0C71FC68D9D0C057550C48EC2ACF6BA056';

/** The merchant account the local runtime uses unless ADYEN_MERCHANT_ACCOUNT is set. */
export const ADYEN_LOCAL_MERCHANT_ACCOUNT = 'PaystepLocalECOM';
