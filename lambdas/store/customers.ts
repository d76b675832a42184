/**
 * Billing customers (docs/billing.md "Objects"), table `main`: `CUSTOMER#<id>`, listed per merchant
 * on gsi1 (lambdas/store/billing-objects.ts). A customer has no status; updates bump `version`.
 */
import type { Customer } from '../billing/model.ts';
import { getMerchantObject, getObject, listObjects, putObject, updateObject } from './billing-objects.ts';

export const createCustomer = (c: Customer) => putObject('customer', c);
export const getCustomer = (id: string) => getObject<Customer>('customer', id);
export const getMerchantCustomer = (merchantId: string, id: string) =>
  getMerchantObject<Customer>('customer', merchantId, id);

/** Sets the given fields (undefined ones untouched); the new customer, or undefined if missing. */
export const updateCustomer = (
  id: string,
  set: Partial<Pick<Customer, 'email' | 'name' | 'country' | 'payment_method' | 'metadata'>>,
) => updateObject<Customer>('customer', id, { set });

export const listCustomers = (merchantId: string, limit: number, startingAfter?: string, email?: string) =>
  listObjects<Customer>('customer', merchantId, { limit, startingAfter, equals: { email } });
