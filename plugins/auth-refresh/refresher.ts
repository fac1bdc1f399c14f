/**
 * Token refresh with single flight. Refresh tokens are single-use, so at most one refresh per
 * account is in flight: concurrent callers wait for it and share its result, and a caller that
 * arrives just after it re-reads the stored tokens instead of sending the used refresh token again.
 * A failed result is reused for a few seconds (`refreshFailureReuseSeconds`). Failures are classified by the `refresh.failed`
 * hook (the core applies what its handlers decide); this file only reports them.
 *
 * Across replicas sharing one database the same holds: a refresh is sent only under a claim
 * (`services.cluster.claimRefresh`, keyed by the refresh token's generation); a replica that finds
 * the claim taken waits and reads the tokens the claimer stored, or reports the failure it recorded.
 *
 * @module
 */
import {
  type AccountCredentials,
  type FailureDetails,
  failureFromHttp,
  failureFromTransport,
  GatewayError,
  type GatewayServices,
  OAUTH_CLIENT_ID,
  type PluginLogger,
  type RefreshFailedEvent,
  type Settings,
  type StoredCredentials,
  sleep,
  type TimerHandle,
} from "../../src/plugin-api.ts";

const DEAD = new Set(["reauth_required", "deactivated"]);
const DAY_MS = 24 * 3600_000;
/** How often a replica waiting on another replica's refresh looks at the store again. */
const CLAIM_POLL_MS = 50;

/** A token with less than this left is treated as expired (a request may take that long to start). */
const VALID_SLACK_MS = 30_000;
const FIRST_RETRY_MS = 5_000;
const MAX_RETRY_MS = 300_000;
/**
 * The refresh call itself is given this long (at least 60 s, 10 × the refresh timeout) before it is
 * abandoned: `CODEX_LB_REFRESH_TIMEOUT_SECONDS` only releases the requests waiting for it. A late
 * answer is still stored, so a rotated refresh token is never lost to an impatient timeout.
 */
const hardLimitMs = (timeoutMs: number) => Math.max(60_000, 10 * timeoutMs);

/** What started a refresh (carried by `refresh.failed`). */
export type Trigger = RefreshFailedEvent["trigger"];

interface RefreshOptions {
  readonly trigger: Trigger;
  readonly requestId?: string | null;
  /** Refresh even when the token is not due, unless the stored access token differs from this one. */
  readonly forceAfter?: string;
}

/** Refreshes tokens (one flight per account) and serves the credentials provider. */
export class Refresher {
  /**
   * What the proxy gets of each stored credentials object, one per object: the store's cached
   * credentials stay the same object until the tokens change, so what is built from them once
   * (the upstream headers' account part) is found again.
   */
  readonly #views = new WeakMap<StoredCredentials, AccountCredentials>();
  readonly #inflight = new Map<string, Promise<StoredCredentials>>();
  readonly #failures = new Map<string, { until: number; refreshToken: string; error: GatewayError }>();
  readonly #retries = new Map<
    string,
    { attempt: number; timer: ReturnType<GatewayServices["timers"]["setTimeout"]> | null }
  >();
  #stopped = false;
  /** Refresh calls sent to the auth server (for the log and tests of single flight). */
  sent = 0;

  constructor(
    private readonly services: GatewayServices,
    private readonly settings: Readonly<Settings>,
    private readonly log: PluginLogger,
  ) {}

  /** True when the tokens should be refreshed now (expiry within the margin + `lookaheadMs`, or too old). */
  isDue(c: StoredCredentials, now: number, lookaheadMs = 0): boolean {
    const margin = this.settings.refreshMarginSeconds * 1000 + lookaheadMs;
    if (c.accessTokenExpiresAt !== null && c.accessTokenExpiresAt - now <= margin) return true;
    return c.lastRefreshAt === null || now - c.lastRefreshAt > this.settings.refreshMaxAgeDays * DAY_MS;
  }

  /** True while the access token has at least {@link VALID_SLACK_MS} left. */
  stillValid(c: StoredCredentials, now: number): boolean {
    return c.accessTokenExpiresAt !== null && c.accessTokenExpiresAt - now > VALID_SLACK_MS;
  }

  /**
   * Retries a failed refresh in the background with backoff (5 s, 10 s, 20 s, ... at most 5 min, never
   * sooner than the failure-reuse window), until it succeeds, fails for good, or the token expires.
   */
  #scheduleRetry(accountId: string): void {
    if (this.#stopped) return;
    const existing = this.#retries.get(accountId);
    if (existing && existing.timer !== null) return;
    const attempt = (existing?.attempt ?? 0) + 1;
    const delay = Math.max(
      this.settings.refreshFailureReuseSeconds * 1000 + 50,
      Math.min(MAX_RETRY_MS, FIRST_RETRY_MS * 2 ** (attempt - 1)),
    );
    const timer = this.services.timers.setTimeout(() => {
      this.#retries.set(accountId, { attempt, timer: null });
      void this.refresh(accountId, { trigger: "background" }).then(
        () => this.#retries.delete(accountId),
        async (e: unknown) => {
          const creds = await this.services.accounts.credentials(accountId).catch(() => null);
          const transient = e instanceof GatewayError && e.code === "refresh_failed";
          if (transient && creds && this.stillValid(creds, this.services.now()))
            this.#scheduleRetry(accountId);
          else this.#retries.delete(accountId);
        },
      );
    }, delay);
    this.#retries.set(accountId, { attempt, timer });
  }

  /** Background retries scheduled now (account id → attempt number). */
  get retrying(): ReadonlyMap<string, number> {
    return new Map([...this.#retries].map(([id, r]) => [id, r.attempt]));
  }

  /** Cancels background retries (plugin stop). */
  stop(): void {
    this.#stopped = true;
    for (const r of this.#retries.values()) if (r.timer !== null) this.services.timers.clearTimeout(r.timer);
    this.#retries.clear();
  }

  /** The credentials provider's `get`: usable credentials, refreshed first when due or forced. */
  async get(
    accountId: string,
    options: { forceRefresh?: boolean; requestId?: string | null; trigger?: Trigger } = {},
  ): Promise<AccountCredentials> {
    // The cached account list (dropped on every change) keeps the store off a proxied request's path.
    const snap = (await this.services.accounts.list()).find((a) => a.id === accountId) ?? null;
    if (!snap) throw new GatewayError("account_not_found", `No account ${JSON.stringify(accountId)}`);
    if (DEAD.has(snap.status)) {
      throw new GatewayError(
        "account_unusable",
        `Account ${accountId} is ${snap.status}${snap.statusReason ? `: ${snap.statusReason}` : ""}`,
        { accountId },
      );
    }
    let creds = await this.services.accounts.credentials(accountId);
    if (!creds)
      throw new GatewayError("account_unusable", `Account ${accountId} holds no tokens`, { accountId });
    if (options.forceRefresh || this.isDue(creds, this.services.now())) {
      try {
        creds = await this.refresh(accountId, {
          trigger: options.trigger ?? (options.forceRefresh ? "upstream_401" : "request"),
          requestId: options.requestId ?? null,
          ...(options.forceRefresh ? { forceAfter: creds.accessToken } : {}),
        });
      } catch (e) {
        // A transient failure (auth server down, slow, 5xx) while the access token is still valid:
        // serve with it and retry the refresh in the background. Only an expired token, a token the
        // upstream refused (forced refresh), or a permanent failure stops the request.
        const transient = e instanceof GatewayError && e.code === "refresh_failed";
        if (!transient || options.forceRefresh || !this.stillValid(creds, this.services.now())) throw e;
        this.#scheduleRetry(accountId);
        this.log.warn(
          {
            accountId,
            validForSeconds: Math.floor(((creds.accessTokenExpiresAt ?? 0) - this.services.now()) / 1000),
          },
          "token refresh failed; serving with the still-valid access token and retrying in the background",
        );
      }
    }
    let view = this.#views.get(creds);
    if (!view) {
      view = {
        accessToken: creds.accessToken,
        chatgptAccountId: creds.chatgptAccountId,
        installationId: creds.installationId,
      };
      this.#views.set(creds, view);
    }
    return view;
  }

  /** Refreshes one account (joining a refresh already in flight). */
  async refresh(accountId: string, opts: RefreshOptions): Promise<StoredCredentials> {
    const running = this.#inflight.get(accountId);
    if (running) return this.#waitFor(accountId, running);
    const failed = this.#failures.get(accountId);
    if (failed && failed.until > this.services.now()) {
      // A new login since the failure replaced the refresh token: the old result no longer applies.
      const current = await this.services.accounts.credentials(accountId);
      if (current?.refreshToken === failed.refreshToken) throw failed.error;
    }
    const again = this.#inflight.get(accountId);
    if (again) return this.#waitFor(accountId, again);
    const flight = this.#run(accountId, opts).finally(() => this.#inflight.delete(accountId));
    // Nobody may be waiting when it fails late: that failure is reported by #fail already.
    flight.catch(() => {});
    this.#inflight.set(accountId, flight);
    return this.#waitFor(accountId, flight);
  }

  /**
   * Waits for a refresh flight at most `CODEX_LB_REFRESH_TIMEOUT_SECONDS`: then the caller gets
   * `refresh_failed`, while the flight itself goes on and stores a late answer.
   */
  #waitFor(accountId: string, flight: Promise<StoredCredentials>): Promise<StoredCredentials> {
    const timeoutMs = this.settings.refreshTimeoutSeconds * 1000;
    let timer: TimerHandle | undefined;
    const timeout = new Promise<never>((_, reject) => {
      // On the gateway's clock, like every request-path deadline.
      timer = this.services.timers.setTimeout(
        () =>
          reject(
            new GatewayError(
              "refresh_failed",
              `Token refresh for account ${accountId} did not answer within ${this.settings.refreshTimeoutSeconds} s; it goes on in the background`,
              { accountId },
            ),
          ),
        timeoutMs,
      );
    });
    return Promise.race([flight, timeout]).finally(() => this.services.timers.clearTimeout(timer));
  }

  async #run(accountId: string, opts: RefreshOptions): Promise<StoredCredentials> {
    const timeoutMs = hardLimitMs(this.settings.refreshTimeoutSeconds * 1000);
    // Waiting on another replica's refresh gives up after it could have timed out twice.
    let waitsLeft = Math.ceil((2 * timeoutMs + 2_000) / CLAIM_POLL_MS);
    for (;;) {
      // Read the store, not the cache: another replica may have refreshed or taken the account out.
      const snap = await this.services.accounts.get(accountId);
      const creds = await this.services.accounts.credentials(accountId, { fresh: true });
      if (!snap || !creds)
        throw new GatewayError("account_not_found", `No account ${JSON.stringify(accountId)}`);
      if (DEAD.has(snap.status))
        throw new GatewayError("account_unusable", `Account ${accountId} is ${snap.status}`, { accountId });
      const now = this.services.now();
      // Someone refreshed just before this flight started (or while it waited): use their tokens.
      if (opts.forceAfter !== undefined ? creds.accessToken !== opts.forceAfter : !this.isDue(creds, now)) {
        return creds;
      }
      const claim = await this.services.cluster.claimRefresh(
        accountId,
        creds.refreshToken,
        timeoutMs + 2_000,
      );
      if (claim.status === "failed") {
        const f = claim.failure;
        throw new GatewayError(f.dead ? "account_unusable" : "refresh_failed", f.message, { accountId });
      }
      if (claim.status === "busy") {
        if (--waitsLeft < 0)
          throw new GatewayError(
            "refresh_failed",
            `Token refresh for account ${accountId} is taking too long on another replica`,
            { accountId },
          );
        // On the gateway's timers (a FakeClock's in tests).
        await sleep(CLAIM_POLL_MS, this.services.timers);
        continue;
      }
      // The claim is ours; the token may still have changed between the read and the claim.
      const check = await this.services.accounts.credentials(accountId, { fresh: true });
      if (check?.refreshToken !== creds.refreshToken) {
        await claim.done();
        continue;
      }
      try {
        const out = await this.#send(snap, creds, opts);
        await claim.done();
        return out;
      } catch (e) {
        if (e instanceof GatewayError && (e.code === "account_unusable" || e.code === "refresh_failed")) {
          const failure = { code: e.code, message: e.message, dead: e.code === "account_unusable" };
          await claim.done(failure, this.settings.refreshFailureReuseSeconds * 1000).catch(() => {});
        } else {
          await claim.done().catch(() => {});
        }
        throw e;
      }
    }
  }

  /** Sends the refresh (under a claim) and stores the new tokens. */
  async #send(
    snap: NonNullable<Awaited<ReturnType<GatewayServices["accounts"]["get"]>>>,
    creds: StoredCredentials,
    opts: RefreshOptions,
  ): Promise<StoredCredentials> {
    const accountId = snap.id;
    this.sent++;
    let res: Response;
    let text: string;
    try {
      res = await fetch(`${this.settings.authBaseUrl}/oauth/token`, {
        method: "POST",
        headers: {
          "content-type": "application/json",
          accept: "application/json",
          ...(opts.requestId ? { "x-request-id": opts.requestId } : {}),
        },
        body: JSON.stringify({
          grant_type: "refresh_token",
          client_id: OAUTH_CLIENT_ID,
          refresh_token: creds.refreshToken,
          scope: "openid profile email",
        }),
        signal: AbortSignal.timeout(hardLimitMs(this.settings.refreshTimeoutSeconds * 1000)),
      });
      text = await res.text();
    } catch (e) {
      return this.#fail(snap, creds, failureFromTransport(e), opts);
    }
    if (!res.ok) return this.#fail(snap, creds, failureFromHttp(res.status, text), opts);
    let body: Record<string, unknown> = {};
    try {
      body = JSON.parse(text) as Record<string, unknown>;
    } catch {
      // handled below as a missing token
    }
    const s = (k: string) => (typeof body[k] === "string" && body[k] !== "" ? (body[k] as string) : null);
    const accessToken = s("access_token");
    if (!accessToken) {
      const f: FailureDetails = {
        httpStatus: res.status,
        errorCode: "invalid_response",
        errorType: null,
        message: "Refresh response missing tokens",
        transport: false,
      };
      return this.#fail(snap, creds, f, opts);
    }
    const tokens = {
      accessToken,
      // The auth server rotates the refresh token; keep the old one only if it sent none.
      refreshToken: s("refresh_token") ?? creds.refreshToken,
      idToken: s("id_token") ?? creds.idToken,
    };
    // Saved by the core (this plugin is the credentials provider); not if a new login won meanwhile.
    const [result] = await this.services.apply(
      [{ type: "tokens.save", accountId, ...tokens, replacing: creds.refreshToken }],
      { source: "refresh", requestId: opts.requestId ?? null },
    );
    const saved = result?.status === "applied" ? "saved" : (result?.status ?? "missing");
    this.#failures.delete(accountId);
    this.log.info({ accountId, trigger: opts.trigger, saved }, "tokens refreshed");
    if (snap.failureStreak > 0 || snap.cooldownUntil !== null) {
      await this.services.apply([{ type: "account.healthy", accountId }], {
        source: "refresh",
        requestId: opts.requestId ?? null,
      });
    }
    const fresh = await this.services.accounts.credentials(accountId);
    if (!fresh) throw new GatewayError("account_not_found", `No account ${JSON.stringify(accountId)}`);
    return fresh;
  }

  async #fail(
    snap: NonNullable<Awaited<ReturnType<GatewayServices["accounts"]["get"]>>>,
    creds: StoredCredentials,
    details: FailureDetails,
    opts: RefreshOptions,
  ): Promise<never> {
    const outcome = await this.services.fire(
      "refresh.failed",
      {
        ...details,
        account: snap,
        trigger: opts.trigger,
        now: this.services.now(),
        accessTokenExpiresAt: opts.forceAfter !== undefined ? null : creds.accessTokenExpiresAt,
      },
      { requestId: opts.requestId ?? null },
    );
    const dead = outcome.actions.some((a) => a.type === "account.deactivate" && a.accountId === snap.id);
    this.log.warn(
      {
        accountId: snap.id,
        trigger: opts.trigger,
        httpStatus: details.httpStatus,
        errorCode: details.errorCode,
        permanent: dead,
      },
      "token refresh failed",
    );
    const code = details.errorCode ?? (details.httpStatus ? `HTTP ${details.httpStatus}` : "error");
    const error = dead
      ? new GatewayError(
          "account_unusable",
          `Account ${snap.id} needs a new login (refresh failed: ${code})`,
          {
            accountId: snap.id,
          },
        )
      : new GatewayError("refresh_failed", `Token refresh failed for account ${snap.id} (${code})`, {
          accountId: snap.id,
        });
    this.#failures.set(snap.id, {
      until: this.services.now() + this.settings.refreshFailureReuseSeconds * 1000,
      refreshToken: creds.refreshToken,
      error,
    });
    throw error;
  }
}
