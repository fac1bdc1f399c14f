/**
 * Response schemas every admin route shares (the OpenAPI document shows them).
 *
 * @module
 */
import { t } from "elysia";

/** The admin error envelope: `{error: {code, message}}` (see `src/core/errors.ts`). */
export const ErrorBody = t.Object({ error: t.Object({ code: t.String(), message: t.String() }) });
