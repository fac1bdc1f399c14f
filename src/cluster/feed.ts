/**
 * Cache invalidation across replicas. A replica that changes something other replicas cache
 * (accounts, API keys, runtime settings, the firewall allowlist, sticky bindings) publishes the topic; every other
 * replica drops its cached copy when the message arrives (PostgreSQL NOTIFY: milliseconds). After
 * the listening connection was lost and re-opened, every topic is dropped, since messages sent
 * meanwhile are gone. On SQLite (one gateway per file) publishing does nothing.
 *
 * One message per change, but not one statement: a publish is sent at once when no send is under
 * way; those made while one is under way wait for it and then go together, in one statement (so
 * a burst of new sticky bindings costs a few round trips, not one each). Each message keeps the
 * one-change form, so replicas of an earlier version read them as before.
 *
 * @module
 */
import type { Notifications } from "../store/postgres.ts";

export const changeTopics = ["accounts", "api_keys", "settings", "firewall", "sticky"] as const;
export type ChangeTopic = (typeof changeTopics)[number];

const CHANNEL = "codex_lb_changes";
/**
 * Messages sent in one statement at most. Each is at most about 3.1 KB (a sticky key of 512
 * characters, JSON-escaped: measured 3,104 bytes for control characters), under PostgreSQL's
 * 8,000 bytes a payload; a full batch is about 1.5 MB.
 */
const MAX_BATCH = 500;

export interface ChangeFeed {
  /** Tells the other replicas that `topic` (one `key` of it, or all when null) changed. */
  publish(topic: ChangeTopic, key?: string | null): void;
  /** Runs `fn` when another replica changed `topic` (`key` null: all of it). */
  subscribe(topic: ChangeTopic, fn: (key: string | null) => void): void;
  start(): Promise<void>;
  stop(): Promise<void>;
}

interface Message {
  readonly o: string;
  readonly t: ChangeTopic;
  readonly k: string | null;
}

export function createChangeFeed(
  replicaId: string,
  notifications: Notifications | undefined,
  onError: (err: unknown) => void,
): ChangeFeed {
  const subscribers = new Map<ChangeTopic, ((key: string | null) => void)[]>();
  let stopListening: (() => Promise<void>) | null = null;
  /** Messages waiting for the send under way (a Set: the same change twice is sent once). */
  const waiting = new Set<string>();
  /** The sends under way until nothing waits; null when none. */
  let sending: Promise<void> | null = null;
  const drain = async (n: Notifications): Promise<void> => {
    while (waiting.size > 0) {
      const batch: string[] = [];
      for (const m of waiting) {
        batch.push(m);
        waiting.delete(m);
        if (batch.length === MAX_BATCH) break;
      }
      try {
        await n.notify(CHANNEL, batch);
      } catch (e) {
        onError(e);
      }
    }
  };
  const kick = (n: Notifications): void => {
    if (sending) return;
    sending = drain(n).finally(() => {
      sending = null;
      // Published after the loop's last check, before this ran.
      if (waiting.size > 0) kick(n);
    });
  };
  const deliver = (topic: ChangeTopic, key: string | null) => {
    for (const fn of subscribers.get(topic) ?? []) {
      try {
        fn(key);
      } catch (e) {
        onError(e);
      }
    }
  };
  return {
    publish(topic, key = null) {
      if (!notifications) return;
      const msg: Message = { o: replicaId, t: topic, k: key };
      waiting.add(JSON.stringify(msg));
      kick(notifications);
    },
    subscribe(topic, fn) {
      subscribers.set(topic, [...(subscribers.get(topic) ?? []), fn]);
    },
    async start() {
      if (!notifications || stopListening) return;
      stopListening = await notifications.listen(
        CHANNEL,
        (payload) => {
          let msg: Message;
          try {
            msg = JSON.parse(payload) as Message;
          } catch {
            return;
          }
          if (msg.o === replicaId || !(changeTopics as readonly string[]).includes(msg.t)) return;
          deliver(msg.t, typeof msg.k === "string" ? msg.k : null);
        },
        () => {
          for (const t of changeTopics) deliver(t, null);
        },
      );
    },
    async stop() {
      const s = stopListening;
      stopListening = null;
      await s?.();
      // Changes already published still reach the others.
      while (sending) await sending;
    },
  };
}
