/** Consumer groups on top of any engine; member.ts gives the overview. */
export { SUBSCRIBE_DEFAULTS, type Backoff, type SubscribeOptions } from './options.js';
export type { Delivery } from './delivery.js';
export { DISPATCH_SLICE_MS, Member, type ConsumerHost, type DeadLettered, type LeaseLapse, type Subscription, type SubscriptionStats } from './member.js';
