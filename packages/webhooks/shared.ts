// What the API's services share with the senders (#webhooks/shared): the address guard the endpoint's URL is checked
// against and the context its secret is sealed under, without the senders' HTTP client and queue (#webhooks).
export { addressRefusal, resolveAllowed, urlRefusal, type AddressPolicy } from './address.ts';
export { webhookSecretContext } from './secret.ts';
