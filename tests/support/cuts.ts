/**
 * Cutting a byte stream into random pieces, as a network would deliver it: the stream tests feed
 * their paths the same bytes cut many ways.
 *
 * @module
 */

/**
 * `data` in pieces of 1 to `max` bytes, drawn from `next`; with `big`, a share of the pieces (each
 * drawn after its size's own draw) may be up to `big.max` bytes instead.
 */
export function randomCuts(
  data: Uint8Array,
  next: () => number,
  max: number,
  big?: { readonly share: number; readonly max: number },
): Uint8Array[] {
  const out: Uint8Array[] = [];
  for (let i = 0; i < data.length; ) {
    const n = 1 + Math.floor(next() * (big && next() < big.share ? big.max : max));
    out.push(data.slice(i, i + n));
    i += n;
  }
  return out;
}
