;; The bulk framing scan of the byte pass-through (see event-scan.ts): one call finds, in whole SSE
;; events, every event that is not plainly passable, so JavaScript looks at those alone.
;;
;; Assembled by `bun scripts/build-event-scan.ts` into event-scan-wasm.ts (the bytes, embedded);
;; tests/proxy/event-scan.test.ts checks the two agree. Needs WebAssembly SIMD (fixed-width).
(module
  (memory (export "memory") 1)

  ;; "event: " and "\ndata: " as the low 7 bytes of a little-endian 64-bit load.
  (global $EVENT_LINE i64 (i64.const 0x00203a746e657665))
  (global $DATA_LINE i64 (i64.const 0x00203a617461640a))
  (global $SEVEN_BYTES i64 (i64.const 0x00ffffffffffffff))

  ;; The event `[s, p)` (p: the first line feed of its blank line) is plain: exactly one line feed
  ;; inside (at nl; `lfs` counts them), it starts with "event: ", its name (s+7 .. nl) is not
  ;; empty, its length is not one of `look` (bit L set: a name of length L needs a look; any
  ;; length of 64 and more is plain), it does not start with the prefix (when `pmask` is not 0: the
  ;; 8 bytes from the name's start, masked with `pmask`, are not `prefix`; a prefix has no line
  ;; feed, so a shorter name, whose line feed falls inside the mask, never matches), and its second
  ;; line starts with "data: ".
  (func $plain (param $s i32) (param $lfs i32) (param $nl i32) (param $look i64)
    (param $prefix i64) (param $pmask i64) (result i32)
    (local $len i32)
    (if (i32.ne (local.get $lfs) (i32.const 1)) (then (return (i32.const 0))))
    (local.set $len (i32.sub (i32.sub (local.get $nl) (local.get $s)) (i32.const 7)))
    ;; nl < s + 7 (a line feed inside "event: "): the start compare below fails; a length that
    ;; wrapped below 0 is not plain either.
    (if (i32.lt_s (local.get $len) (i32.const 1)) (then (return (i32.const 0))))
    (if (i32.lt_u (local.get $len) (i32.const 64))
      (then
        (if (i64.ne
              (i64.and (i64.shr_u (local.get $look) (i64.extend_i32_u (local.get $len))) (i64.const 1))
              (i64.const 0))
          (then (return (i32.const 0))))))
    (if (i64.ne (local.get $pmask) (i64.const 0))
      (then
        (if (i64.eq
              (i64.and (i64.load offset=7 (local.get $s)) (local.get $pmask))
              (local.get $prefix))
          (then (return (i32.const 0))))))
    (i32.and
      (i64.eq
        (i64.and (i64.load (local.get $s)) (global.get $SEVEN_BYTES))
        (global.get $EVENT_LINE))
      (i64.eq
        (i64.and (i64.load (local.get $nl)) (global.get $SEVEN_BYTES))
        (global.get $DATA_LINE))))

  ;; scan(len, out, look, prefix, pmask, runs): `memory[0, len)` is whole events (the last ends with its blank line),
  ;; and the 64 bytes after `len` are readable (their contents do not matter). Events are split as
  ;; a forward search for "\n\n" splits them: each ends at the first "\n\n" from its start, and
  ;; the next starts after it. Writes the start of every event that is not plain ($plain) as i32s
  ;; from `out` (4-aligned, past len + 64), in order, and returns how many. With `runs` not 0,
  ;; writes instead each run of such events that follow one another as two i32s, its start and its
  ;; end (after the last one's blank line), in order, and returns how many runs.
  (func (export "scan") (param $len i32) (param $out i32) (param $look i64)
    (param $prefix i64) (param $pmask i64) (param $runs i32) (result i32)
    (local $base i32) ;; the 64 bytes being looked at
    (local $mask i64) ;; their line feeds not handled yet, one bit each
    (local $p i32)    ;; the line feed being handled
    (local $s i32)    ;; where the current event starts
    (local $lfs i32)  ;; line feeds seen in the current event (before its blank line)
    (local $nl i32)   ;; the first of them
    (local $count i32)
    (local $lf v128)
    (local.set $lf (i8x16.splat (i32.const 10)))
    (block $done
      (loop $blocks
        (br_if $done (i32.ge_u (local.get $base) (local.get $len)))
        (local.set $mask
          (i64.or
            (i64.or
              (i64.extend_i32_u
                (i8x16.bitmask (i8x16.eq (v128.load (local.get $base)) (local.get $lf))))
              (i64.shl
                (i64.extend_i32_u
                  (i8x16.bitmask (i8x16.eq (v128.load offset=16 (local.get $base)) (local.get $lf))))
                (i64.const 16)))
            (i64.or
              (i64.shl
                (i64.extend_i32_u
                  (i8x16.bitmask (i8x16.eq (v128.load offset=32 (local.get $base)) (local.get $lf))))
                (i64.const 32))
              (i64.shl
                (i64.extend_i32_u
                  (i8x16.bitmask (i8x16.eq (v128.load offset=48 (local.get $base)) (local.get $lf))))
                (i64.const 48)))))
        (block $next
          (loop $feeds
            (br_if $next (i64.eqz (local.get $mask)))
            (local.set $p (i32.add (local.get $base) (i32.wrap_i64 (i64.ctz (local.get $mask)))))
            (local.set $mask (i64.and (local.get $mask) (i64.sub (local.get $mask) (i64.const 1))))
            ;; Past the data: everything is handled.
            (br_if $done (i32.ge_u (local.get $p) (local.get $len)))
            ;; A line feed before $s is the second of the last blank line: already handled.
            (if (i32.ge_u (local.get $p) (local.get $s))
              (then
                (if (i32.eq (i32.load8_u offset=1 (local.get $p)) (i32.const 10))
                  (then
                    ;; The event's blank line: it is [s, p).
                    (if (i32.eqz
                          (call $plain (local.get $s) (local.get $lfs) (local.get $nl) (local.get $look)
                            (local.get $prefix) (local.get $pmask)))
                      (then
                        (if (i32.eqz (local.get $runs))
                          (then
                            (i32.store
                              (i32.add (local.get $out) (i32.shl (local.get $count) (i32.const 2)))
                              (local.get $s))
                            (local.set $count (i32.add (local.get $count) (i32.const 1))))
                          (else
                            ;; The last run ends where this event starts: this one ends it now.
                            (if (i32.and
                                  (i32.ne (local.get $count) (i32.const 0))
                                  (i32.eq (local.get $s)
                                    (i32.load offset=4
                                      (i32.add (local.get $out)
                                        (i32.shl (i32.sub (local.get $count) (i32.const 1)) (i32.const 3))))))
                              (then
                                (i32.store offset=4
                                  (i32.add (local.get $out)
                                    (i32.shl (i32.sub (local.get $count) (i32.const 1)) (i32.const 3)))
                                  (i32.add (local.get $p) (i32.const 2))))
                              (else
                                (i32.store
                                  (i32.add (local.get $out) (i32.shl (local.get $count) (i32.const 3)))
                                  (local.get $s))
                                (i32.store offset=4
                                  (i32.add (local.get $out) (i32.shl (local.get $count) (i32.const 3)))
                                  (i32.add (local.get $p) (i32.const 2)))
                                (local.set $count (i32.add (local.get $count) (i32.const 1)))))))))
                    (local.set $s (i32.add (local.get $p) (i32.const 2)))
                    (local.set $lfs (i32.const 0)))
                  (else
                    (if (i32.eqz (local.get $lfs)) (then (local.set $nl (local.get $p))))
                    (local.set $lfs (i32.add (local.get $lfs) (i32.const 1)))))))
            (br $feeds)))
        (local.set $base (i32.add (local.get $base) (i32.const 64)))
        (br $blocks)))
    (local.get $count)))
