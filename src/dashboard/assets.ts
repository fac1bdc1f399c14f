/**
 * The browser UI's static files as the app sees them: bytes, type and a strong ETag. Where they
 * come from (embedded in the binary, or bundled from source) is the runtime seam's business
 * (`src/runtime/bun/ui-assets.ts`).
 *
 * @module
 */

/** One static file of the UI. */
export interface UiAsset {
  readonly name: string;
  readonly bytes: Uint8Array<ArrayBuffer>;
  /** Content-Type with charset. */
  readonly type: string;
  /** Strong ETag (quoted). */
  readonly etag: string;
}

/** The UI's files: the dashboard (`index.html` and its hashed chunks) and Swagger UI's. */
export interface UiAssets {
  /** `index.html` or a chunk name (`chunk-….js`); null when unknown. */
  dashboard(name: string): Promise<UiAsset | null>;
  /** `swagger-ui-bundle.js` or `swagger-ui.css`; null when unknown. */
  swagger(name: string): Promise<UiAsset | null>;
  /** Total bytes of the dashboard bundle (HTML, JS, CSS). */
  bundleSize(): Promise<number>;
}
