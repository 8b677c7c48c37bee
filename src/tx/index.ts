/**
 * Distributed transactions on the store: cross-shard transactions (optimistic reads, two-phase
 * commit with durable intents and a durable decision record, recovery), leases and locks with
 * fencing tokens, durable workflows, idempotency keys. The only public entry of src/tx; see
 * docs/tx.md.
 */
export {};
