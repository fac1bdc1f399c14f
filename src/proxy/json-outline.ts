/**
 * An outline of a JSON object text, made without building its values: whether it is JSON that
 * `JSON.parse` accepts, where each top-level member is, and where each element of one array member
 * (a Responses body's `input`) and a few named members of each element are. A long Codex history
 * is mostly long strings: the outline jumps over them with `indexOf` and copies nothing, where
 * `JSON.parse` copies each into a new string (and the garbage collector then walks them).
 *
 * It declines (returns null) what it does not settle for certain; the caller then parses the text
 * with `JSON.parse` as before, which also gives the error of a text that is not JSON. So an outline
 * is only ever a faster way to the same value. It declines:
 * - text that is not JSON, or whose value is not an object;
 * - a key written twice in any object, or any key with an escape in it (two spellings of one key
 *   could not be told apart by their text), or a top-level `__proto__` key (assigned to a plain
 *   object it would set the prototype, where `JSON.parse` makes an own property);
 * - a number written with an exponent, longer than 20 characters, or minus zero ("-0", "-0.00":
 *   a minus sign and only zero digits). These are declined to keep the whole-parse path for odd
 *   numbers (an overflow, which `JSON.stringify` writes `null`; minus zero, written `0`), not
 *   because other numbers keep their value when re-read: the caller passes the client's text of
 *   what it does not change, so every number there keeps the client's spelling (`1.50` stays
 *   `1.50`, `9007199254740993` stays as written, where `JSON.stringify` would write
 *   `9007199254740992`), and the upstream reads the value the client wrote, as it does when a body
 *   goes unchanged.
 *
 * Runtime-neutral: string methods only.
 *
 * @module
 */

/** Where a value is in the text. */
export interface OutlineValue {
  readonly start: number;
  readonly end: number;
  /** A string without escapes: its value is the text between its quotes. */
  readonly plain: boolean;
}

/** A member of the top-level object: from its key's opening quote to the end of its value. */
export interface OutlineMember {
  readonly start: number;
  /** The end of its value. */
  readonly end: number;
  readonly value: OutlineValue;
}

/** An element of the outlined array member. */
export interface OutlineItem {
  readonly start: number;
  readonly end: number;
  /** The element is an object. */
  readonly object: boolean;
  /** The values of the element's members named in `itemKeys` (same order), null when absent. */
  readonly values: readonly (OutlineValue | null)[];
}

export interface JsonOutline {
  /** The top-level members by key, in the text's order. */
  readonly members: Map<string, OutlineMember>;
  /** The elements of the array member `arrayKey`; null when there is no such array. */
  readonly items: readonly OutlineItem[] | null;
}

/** Characters no JSON string may hold unescaped (and, outside strings, only as white space). */
// biome-ignore lint/suspicious/noControlCharactersInRegex: exactly the characters JSON forbids unescaped.
const CONTROL = /[\u0000-\u001f]/g;
const OBJECT = 1;
const ARRAY = 2;
/** Slots per top-level member in the flat record: key start and end, value start and end, plain. */
const TOP = 5;

/**
 * What reading strings has found so far (see {@link stringEnd}): one per text, read from its
 * start to its end (the searches it remembers only go forward).
 */
export class Scan {
  /** The next backslash and control character at or after where each was last looked for. */
  nextBackslash = -1;
  nextControl = -1;
  /** The string last read had an escape. */
  escaped = false;
}

/**
 * The outline of `text` when it is a JSON object text the outline settles for certain (see the
 * module's notes), else null. `arrayKey`: the top-level member whose elements are outlined, when an
 * array; `itemKeys`: the members of each element (an object) whose values are located.
 *
 * One function with its state in locals (white space skipped inline): closures over changing
 * variables made it about half as fast.
 */
export function outlineObject(
  text: string,
  arrayKey: string,
  itemKeys: readonly string[],
): JsonOutline | null {
  const s = text;
  const n = s.length;
  const scan = new Scan();
  // Open containers, innermost last, and for each object where its keys start in `keys`.
  const kinds: number[] = [];
  const keyBase: number[] = [];
  // Key ranges (opening quote, past the closing quote) of the open objects, flat.
  const keys: number[] = [];
  // Top-level members, TOP slots each.
  const top: number[] = [];
  // The elements of `arrayKey`'s array once it is found (`found`). Always an array, never null:
  // the engine's optimised code checks this variable's type at the top of the loop below, and a
  // null there (every call, until `input` is reached) sent each call back to slower code and had
  // the function compiled again and again (see the note at the read of `c` below).
  const items: OutlineItem[] = [];
  let found = false;
  // The top-level member being read is `arrayKey`'s array.
  let inArray = false;
  let itemStart = -1;
  let itemObject = false;
  let itemValues: (OutlineValue | null)[] = [];
  // The item member being read is `itemKeys[field]`.
  let field = -1;
  let fieldValue = -1;
  let topKeyStart = -1;
  let topKeyEnd = -1;
  let topValue = -1;
  // The value that just ended was a string without escapes.
  let plain = false;
  let c = 0;
  let i = 0;
  i = skipWs(s, i);
  c = s.charCodeAt(i);
  if (c !== 123) return null;
  // Where a key starts when one comes next (-1: a value comes next).
  let keyAt = -1;
  outer: for (;;) {
    if (keyAt >= 0) {
      // A key (at `keyAt`), its colon, then a value.
      const k = keyAt;
      if (s.charCodeAt(k) !== 34) return null;
      const end = stringEnd(s, k, scan);
      if (end < 0 || scan.escaped) return null;
      keys.push(k, end);
      i = end;
      i = skipWs(s, i);
      c = s.charCodeAt(i);
      if (c !== 58) return null;
      i++;
      i = skipWs(s, i);
      c = s.charCodeAt(i);
      const depth = kinds.length;
      if (depth === 1) {
        if (end - k === 11 && s.startsWith("__proto__", k + 1)) return null;
        topKeyStart = k;
        topKeyEnd = end;
        topValue = i;
      } else if (depth === 3 && inArray) {
        field = keyIndex(s, k, end, itemKeys);
        fieldValue = i;
      }
      keyAt = -1;
    }
    // A value starts at `i`.
    c = s.charCodeAt(i);
    plain = false;
    if (inArray && kinds.length === 2) {
      itemStart = i;
      itemObject = c === 123;
      itemValues = itemKeys.map(() => null);
    }
    if (c === 123 /* { */) {
      i++;
      i = skipWs(s, i);
      c = s.charCodeAt(i);
      if (c !== 125) {
        kinds.push(OBJECT);
        keyBase.push(keys.length);
        keyAt = i;
        continue;
      }
      i++;
    } else if (c === 91 /* [ */) {
      if (
        kinds.length === 1 &&
        topKeyEnd - topKeyStart - 2 === arrayKey.length &&
        s.startsWith(arrayKey, topKeyStart + 1)
      ) {
        inArray = true;
        found = true;
        items.length = 0;
      }
      i++;
      i = skipWs(s, i);
      c = s.charCodeAt(i);
      if (c !== 93) {
        kinds.push(ARRAY);
        keyBase.push(-1);
        continue;
      }
      i++;
    } else if (c === 34 /* " */) {
      i = stringEnd(s, i, scan);
      if (i < 0) return null;
      plain = !scan.escaped;
    } else if (c === 116) {
      if (!s.startsWith("true", i)) return null;
      i += 4;
    } else if (c === 102) {
      if (!s.startsWith("false", i)) return null;
      i += 5;
    } else if (c === 110) {
      if (!s.startsWith("null", i)) return null;
      i += 4;
    } else {
      i = numberEnd(s, i);
      if (i < 0) return null;
    }
    // A value ended at `i`: note it, close what it closes, then go to the next value.
    for (;;) {
      const d = kinds.length;
      if (d === 1) {
        top.push(topKeyStart, topKeyEnd, topValue, i, plain ? 1 : 0);
        inArray = false;
      } else if (inArray) {
        if (d === 2) items.push({ start: itemStart, end: i, object: itemObject, values: itemValues });
        else if (d === 3 && field >= 0) {
          itemValues[field] = { start: fieldValue, end: i, plain };
          field = -1;
        }
      }
      i = skipWs(s, i);
      if (d === 0) return i === n ? { members: membersOf(s, top), items: found ? items : null } : null;
      if (i >= n) return null;
      // Read only within the text: a read past its end (NaN, here at the end of every text) fails
      // the optimised code's guess that `c` is an integer. Failed guesses on every call made the
      // engine throw the function's optimised code away and compile it again, 5 times in 20 s of
      // long bodies, at 0.4 to 0.9 s of compile time each; now it is compiled once.
      c = s.charCodeAt(i);
      const kind = kinds[d - 1];
      if (c === 44 /* , */) {
        i++;
        i = skipWs(s, i);
        c = s.charCodeAt(i);
        if (i >= n) return null;
        if (kind === OBJECT) keyAt = i;
        continue outer;
      }
      if (c === 125 && kind === OBJECT) {
        const base = keyBase[d - 1]!;
        if (!keysUnique(s, keys, base)) return null;
        keys.length = base;
      } else if (!(c === 93 && kind === ARRAY)) return null;
      kinds.pop();
      keyBase.pop();
      plain = false;
      i++;
    }
  }
}

/**
 * The index of the first character at or after `k` that is not JSON white space. Shared with the
 * older top-level scanner in payload.ts ({@link stringEnd} too): this module's outline reads
 * bodies of at least `OUTLINE_MIN_LENGTH` characters that it settles; `topLevelMembers` there
 * reads the rest (short bodies and those the outline declines), after `JSON.parse` took them.
 */
export function skipWs(s: string, k: number): number {
  const n = s.length;
  while (k < n) {
    const c = s.charCodeAt(k);
    if (c !== 32 && c !== 10 && c !== 13 && c !== 9) return k;
    k++;
  }
  return k;
}

/**
 * The index past the closing quote of the string whose opening quote is at `k` in `s` (-1: not a
 * valid JSON string); `scan.escaped` tells whether it had an escape. The closing quote is found
 * with `indexOf`, and so are the backslashes and control characters, each search going on from
 * the last one found: a long history's strings are read in a few native scans.
 */
export function stringEnd(s: string, k: number, scan: Scan): number {
  const n = s.length;
  const from = k + 1;
  let q = s.indexOf('"', from);
  if (q < 0) return -1;
  scan.escaped = false;
  if (scan.nextBackslash < from) {
    const b = s.indexOf("\\", from);
    scan.nextBackslash = b < 0 ? n : b;
  }
  while (scan.nextBackslash < q) {
    scan.escaped = true;
    const b = scan.nextBackslash;
    const e = s.charCodeAt(b + 1);
    let next: number;
    if (e === 117 /* u */) {
      for (let h = b + 2; h < b + 6; h++) {
        const d = s.charCodeAt(h);
        if (!((d >= 48 && d <= 57) || (d >= 65 && d <= 70) || (d >= 97 && d <= 102))) return -1;
      }
      next = b + 6;
    } else if (
      e === 34 ||
      e === 92 ||
      e === 47 ||
      e === 98 ||
      e === 102 ||
      e === 110 ||
      e === 114 ||
      e === 116
    ) {
      next = b + 2;
    } else return -1;
    // The escape took the quote found (`\"`): the string ends at a later one.
    if (next > q) {
      q = s.indexOf('"', next);
      if (q < 0) return -1;
    }
    const nb = s.indexOf("\\", next);
    scan.nextBackslash = nb < 0 ? n : nb;
  }
  if (scan.nextControl < from) {
    CONTROL.lastIndex = from;
    scan.nextControl = CONTROL.test(s) ? CONTROL.lastIndex - 1 : n;
  }
  if (scan.nextControl < q) return -1;
  return q + 1;
}

/** The index past the number at `k` in `s` (-1: invalid, or a number the outline declines). */
function numberEnd(s: string, k: number): number {
  const begin = k;
  let c = s.charCodeAt(k);
  if (c === 45 /* - */) c = s.charCodeAt(++k);
  // "-0…": minus zero unless a later digit is not zero (then declined below).
  let minusZero = false;
  if (c === 48 /* 0 */) {
    minusZero = k > begin;
    c = s.charCodeAt(++k);
  } else if (c >= 49 && c <= 57) {
    do c = s.charCodeAt(++k);
    while (c >= 48 && c <= 57);
  } else return -1;
  if (c === 46 /* . */) {
    c = s.charCodeAt(++k);
    if (!(c >= 48 && c <= 57)) return -1;
    do {
      if (c !== 48) minusZero = false;
      c = s.charCodeAt(++k);
    } while (c >= 48 && c <= 57);
  }
  if (minusZero) return -1; // "-0", "-0.000": declined
  if (c === 101 || c === 69) return -1; // an exponent: declined
  return k - begin > 20 ? -1 : k;
}

/** The index in `names` of the key whose quotes are at `k` and `end - 1` in `s` (-1: none). */
function keyIndex(s: string, k: number, end: number, names: readonly string[]): number {
  const len = end - k - 2;
  for (let x = 0; x < names.length; x++) {
    const name = names[x]!;
    if (name.length !== len) continue;
    let y = 0;
    while (y < len && s.charCodeAt(k + 1 + y) === name.charCodeAt(y)) y++;
    if (y === len) return x;
  }
  return -1;
}

function membersOf(s: string, top: readonly number[]): Map<string, OutlineMember> {
  const out = new Map<string, OutlineMember>();
  for (let x = 0; x < top.length; x += TOP) {
    out.set(s.slice(top[x]! + 1, top[x + 1]! - 1), {
      start: top[x]!,
      end: top[x + 3]!,
      value: { start: top[x + 2]!, end: top[x + 3]!, plain: top[x + 4] === 1 },
    });
  }
  return out;
}

/**
 * False when two of the innermost object's keys (from `base` in the flat `keys`) are the same.
 * Keys have no escapes here, so the same text is the same key. Compared in place, without making
 * strings.
 */
function keysUnique(s: string, keys: readonly number[], base: number): boolean {
  const count = (keys.length - base) / 2;
  if (count < 2) return true;
  if (count > 32) {
    const seen = new Set<string>();
    for (let a = base; a < keys.length; a += 2) seen.add(s.slice(keys[a]!, keys[a + 1]!));
    return seen.size === count;
  }
  for (let a = base; a < keys.length; a += 2) {
    const aStart = keys[a]!;
    const len = keys[a + 1]! - aStart;
    for (let b = a + 2; b < keys.length; b += 2) {
      const bStart = keys[b]!;
      if (keys[b + 1]! - bStart !== len) continue;
      let x = 1;
      while (x < len - 1 && s.charCodeAt(aStart + x) === s.charCodeAt(bStart + x)) x++;
      if (x >= len - 1) return false;
    }
  }
  return true;
}
