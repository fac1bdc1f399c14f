/**
 * Login flows in memory: a browser flow (PKCE, callback listener, manual paste of the redirect
 * URL) or a device-code flow (user code + polling that honours `interval` and `slow_down`).
 * A finished flow stores the account through the accounts repository (`source: login`).
 *
 * @module
 */
import type { AccountRepository } from "../accounts/repository.ts";
import { type Clock, systemClock, type TimerHandle } from "../core/clock.ts";
import { randomToken } from "../core/crypto.ts";
import type { Logger } from "../core/logging.ts";
import { type CallbackListener, listenCallback } from "../runtime/bun/callback-server.ts";
import type { Settings } from "../settings/schema.ts";
import {
  authorizeUrl,
  createPkce,
  type DeviceCode,
  exchangeCode,
  OAuthError,
  pollDeviceToken,
  requestDeviceCode,
} from "./client.ts";
import { resultPage } from "./page.ts";

/** A flow's state as `GET /api/oauth/status` reports it. */
export type FlowStatus = "pending" | "success" | "error";

interface Flow {
  readonly id: string;
  readonly method: "browser" | "device";
  readonly expiresAt: number;
  readonly state?: string;
  readonly verifier?: string;
  status: FlowStatus;
  errorMessage: string | null;
  accountId: string | null;
  /** Set while a code is being exchanged, so a second callback does not re-use the code. */
  busy: boolean;
}

const BROWSER_TTL_MS = 15 * 60_000;
const KEEP_FINISHED = 16;

/** The login flows of this process and the callback listener while a browser flow is pending. */
export class OAuthFlows {
  readonly #flows = new Map<string, Flow>();
  readonly #timers = new Set<TimerHandle>();
  #listener: CallbackListener | null = null;
  #stopped = false;

  constructor(
    private readonly settings: Readonly<Settings>,
    private readonly accounts: AccountRepository,
    private readonly log: Logger,
    /** Time and the device poll's timers (a FakeClock in tests). */
    private readonly time: Clock = systemClock,
  ) {}

  /** Starts a browser login: returns the URL to open and where the callback listener is. */
  async startBrowser() {
    this.#prune();
    const { verifier, challenge } = await createPkce();
    const state = randomToken(16);
    const flow = this.#add({
      method: "browser",
      expiresAt: this.time.now() + BROWSER_TTL_MS,
      state,
      verifier,
    });
    const listener = this.#ensureListener();
    return {
      flowId: flow.id,
      method: "browser" as const,
      authorizationUrl: authorizeUrl(this.settings.authBaseUrl, challenge, state),
      callbackUrl: `http://localhost:${listener.port}/auth/callback`,
      expiresInSeconds: BROWSER_TTL_MS / 1000,
    };
  }

  /** Starts a device-code login and its background poller. */
  async startDevice() {
    this.#prune();
    const device = await requestDeviceCode(this.settings.authBaseUrl, this.time.now());
    const flow = this.#add({ method: "device", expiresAt: this.time.now() + device.expiresInSeconds * 1000 });
    this.#schedulePoll(flow, device, device.intervalSeconds);
    return {
      flowId: flow.id,
      method: "device" as const,
      verificationUrl: device.verificationUrl,
      userCode: device.userCode,
      deviceAuthId: device.deviceAuthId,
      intervalSeconds: device.intervalSeconds,
      expiresInSeconds: device.expiresInSeconds,
    };
  }

  status(
    flowId: string,
  ): { status: FlowStatus; errorMessage: string | null; accountId: string | null } | null {
    const f = this.#flows.get(flowId);
    if (!f) return null;
    if (f.status === "pending" && this.time.now() > f.expiresAt)
      this.#finish(f, "error", "Login flow expired");
    return { status: f.status, errorMessage: f.errorMessage, accountId: f.accountId };
  }

  /**
   * Completes a browser flow from its redirect (`code`, `state`, `error`): the callback listener
   * and the manual paste both end here. A flow that already ended reports its outcome again.
   */
  async complete(params: URLSearchParams, flowId?: string | null) {
    const state = params.get("state");
    const flow = [...this.#flows.values()].find(
      (f) => f.method === "browser" && f.state !== undefined && f.state === state,
    );
    if (!flow || (flowId && flow.id !== flowId)) {
      return {
        status: "error" as const,
        errorMessage: "Unknown or expired login (state does not match)",
        accountId: null,
      };
    }
    if (flow.status !== "pending" || flow.busy) return this.status(flow.id)!;
    const error = params.get("error");
    const code = params.get("code");
    if (error) {
      this.#finish(
        flow,
        "error",
        `Login refused: ${(params.get("error_description") ?? error).slice(0, 200)}`,
      );
    } else if (!code) {
      this.#finish(flow, "error", "The redirect carries no authorization code");
    } else if (this.time.now() > flow.expiresAt) {
      this.#finish(flow, "error", "Login flow expired");
    } else {
      flow.busy = true;
      try {
        const tokens = await exchangeCode(this.settings.authBaseUrl, code, flow.verifier!);
        await this.#save(flow, tokens);
      } catch (e) {
        this.#finish(flow, "error", e instanceof OAuthError ? e.message : "Storing the account failed");
        if (!(e instanceof OAuthError))
          this.log.error({ err: e instanceof Error ? e.message : String(e) }, "login save failed");
      } finally {
        flow.busy = false;
      }
    }
    return this.status(flow.id)!;
  }

  /** Stops the poller timers and the callback listener (shutdown). */
  async stop(): Promise<void> {
    this.#stopped = true;
    for (const t of this.#timers) this.time.clearTimeout(t);
    this.#timers.clear();
    await this.#closeListener(true);
  }

  #add(f: Omit<Flow, "id" | "status" | "errorMessage" | "accountId" | "busy">): Flow {
    const flow: Flow = {
      ...f,
      id: randomToken(12),
      status: "pending",
      errorMessage: null,
      accountId: null,
      busy: false,
    };
    this.#flows.set(flow.id, flow);
    return flow;
  }

  async #save(flow: Flow, tokens: import("../plugin-host/api.ts").TokenSet) {
    const r = await this.accounts.upsertFromTokens(tokens, { source: "login" });
    flow.accountId = r.id;
    this.log.info(
      { flowId: flow.id, method: flow.method, accountId: r.id, created: r.created },
      "login completed",
    );
    this.#finish(flow, "success", null);
  }

  #finish(flow: Flow, status: FlowStatus, errorMessage: string | null) {
    flow.status = status;
    flow.errorMessage = errorMessage;
    if (status === "error")
      this.log.warn({ flowId: flow.id, method: flow.method, errorMessage }, "login failed");
    if (![...this.#flows.values()].some((f) => f.method === "browser" && f.status === "pending")) {
      void this.#closeListener();
    }
  }

  #prune() {
    const now = this.time.now();
    for (const f of this.#flows.values())
      if (f.status === "pending" && now > f.expiresAt) this.#finish(f, "error", "Login flow expired");
    const done = [...this.#flows.values()].filter((f) => f.status !== "pending");
    for (const f of done.slice(0, Math.max(0, done.length - KEEP_FINISHED))) this.#flows.delete(f.id);
  }

  #schedulePoll(flow: Flow, device: DeviceCode, intervalSeconds: number) {
    if (this.#stopped) return;
    const timer = this.time.setTimeout(async () => {
      this.#timers.delete(timer);
      if (flow.status !== "pending" || this.#stopped) return;
      if (this.time.now() > flow.expiresAt) return this.#finish(flow, "error", "Device code expired");
      let next = intervalSeconds;
      try {
        const r = await pollDeviceToken(this.settings.authBaseUrl, device);
        if (r.kind === "tokens") return await this.#save(flow, r.tokens);
        // slow_down: the server's new interval when it sends one, else RFC 8628's +5 s; never faster.
        if (r.slowDown) next = Math.max(intervalSeconds, r.intervalSeconds ?? intervalSeconds + 5);
      } catch (e) {
        if (e instanceof OAuthError && e.code !== "transport_error")
          return this.#finish(flow, "error", e.message);
        if (!(e instanceof OAuthError)) return this.#finish(flow, "error", "Storing the account failed");
        // A transport error is retried at the next interval.
      }
      this.#schedulePoll(flow, device, next);
    }, intervalSeconds * 1000);
    this.#timers.add(timer);
  }

  #ensureListener(): CallbackListener {
    this.#listener ??= listenCallback((req) => this.#onCallback(req), {
      host: this.settings.oauthCallbackHost,
      port: this.settings.oauthCallbackPort,
    });
    return this.#listener;
  }

  async #closeListener(force = false) {
    const l = this.#listener;
    this.#listener = null;
    if (l) await l.close(force);
  }

  async #onCallback(request: Request): Promise<Response> {
    const url = new URL(request.url);
    if (url.pathname !== "/auth/callback") return new Response("Not found", { status: 404 });
    const r = await this.complete(url.searchParams);
    return resultPage(r.status === "success", r.errorMessage);
  }
}
