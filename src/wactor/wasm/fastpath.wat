;; fastpath.wat -- the two small components that wactor.wasm._fastpath nests into
;; every wrapped guest W (see _fastpath.py for the layout of W).
;;
;; Why: wasmtime-py hands component values through the C API one
;; `wasmtime_component_val_t` per list element, so a `list<u8>` payload costs
;; a C value (and a Rust `Val`) per byte, while a `string` crosses as one
;; buffer.  $Adapter re-exports the guest's handle-message / handle-callback
;; with the `list<u8>` payload typed as a `string`, lifted with
;; string-encoding=latin1+utf16.  A host string whose chars are all <= U+00FF
;; is lowered by wasmtime as latin1 -- one byte per char, UTF-16 tag bit (bit
;; 31 of the length) clear -- so its (ptr, len) is exactly a `list<u8>` of
;; those bytes, and the guest's reply `list<u8>` lifts as the latin1 string of
;; its bytes.  The host passes `payload.decode("latin-1")` and reads
;; `reply.encode("latin-1")`.  (A payload char > U+00FF would be lowered as
;; UTF-16, tag bit set: as a list<u8> length that is out of bounds, so the
;; call traps -- it cannot pass garbage.)
;;
;; The guest's functions are lowered with string-encoding=utf8, and $Main
;; converts the message's *other* strings (sender, correlation-id, reply-to,
;; content-type) to UTF-8 itself, and the guest's error string back to
;; latin1 / UTF-16.  See the comment at the `canon lower`s for why.
;;
;; This file is one valid component holding the two nested component
;; definitions, in this order (the wrapper copies their component sections):
;;   1. $Types   -- no imports; exports the record/variant types $Adapter needs
;;                  (a component's imports may only use *named* types, so they
;;                  must come from outside $Adapter: W instantiates $Types and
;;                  passes that instance as $Adapter's "types" import).
;;   2. $Adapter -- imports "types" and "lifecycle" (the guest's
;;                  airssys:core/component-lifecycle@1.0.0 instance; only its
;;                  handle-message and handle-callback are required), exports
;;                  "wactor:fast/lifecycle@0.1.0".
;;
;; Record layouts (canonical ABI; identical for the list<u8> and string
;; variants, which is the whole point):
;;   component-message (104 B, align 8):
;;     +0 sender.namespace, +8 sender.name, +16 sender.instance (ptr, len)
;;     +24 payload ptr, +28 payload len
;;     +32 correlation-id option<string>: u8 disc, +36 ptr, +40 len
;;     +44 reply-to option<component-id>: u8 disc, +48/+56/+64 its strings
;;     +72 timestamp (u64 seconds, +80 u32 nanoseconds)
;;     +88 content-type option<string>: u8 disc, +92 ptr, +96 len
;;   result<option<payload>, wasm-error> (16 B, align 4): +0 u8 ok/err,
;;     ok: +4 u8 none/some, +8 ptr, +12 len; err: +4 u8 case, +8 ptr, +12 len
;;     (case 3, timeout, has no string).
;;   result<_, wasm-error> (16 B, align 4): same, without the option.
;; component-message flattens to 23 core values (> 16 = MAX_FLAT_PARAMS), so a
;; lifted export receives one i32 pointer to it (in memory the host allocated
;; through our realloc) and a lowered import takes one i32 pointer to it; both
;; results flatten to 4 values (> 1 = MAX_FLAT_RESULTS), so the lifted export
;; returns a pointer to its result and the lowered import takes a result
;; pointer as an extra last parameter.  The adapter forwards the very same
;; message pointer: the payload bytes are copied host -> adapter memory ->
;; guest memory and back by wasmtime itself (a memcpy for list<u8> / latin1).
(component $fastpath

  ;; ===========================================================================
  ;; $Types: the airssys:core value types handle-message/handle-callback use.
  ;; Exported under the WIT names so that they are named types for $Adapter.
  ;; ===========================================================================
  (component $Types
    (type $component-id' (record
      (field "namespace" string)
      (field "name" string)
      (field "instance" string)))
    (export $component-id "component-id" (type $component-id'))
    (type $timestamp' (record
      (field "seconds" u64)
      (field "nanoseconds" u32)))
    (export $timestamp "timestamp" (type $timestamp'))
    (type $message-metadata' (record
      (field "correlation-id" (option string))
      (field "reply-to" (option $component-id))
      (field "timestamp" $timestamp)
      (field "content-type" (option string))))
    (export $message-metadata "message-metadata" (type $message-metadata'))
    (type $component-message' (record
      (field "sender" $component-id)
      (field "payload" (list u8))
      (field "metadata" $message-metadata)))
    (export "component-message" (type $component-message'))
    (type $wasm-error' (variant
      (case "component-not-found" string)
      (case "instantiation-failed" string)
      (case "export-not-found" string)
      (case "timeout")
      (case "resource-limit-exceeded" string)
      (case "invalid-component" string)
      (case "runtime-error" string)))
    (export "wasm-error" (type $wasm-error'))
  )

  ;; ===========================================================================
  ;; $Adapter: the fast interface.
  ;; ===========================================================================
  (component $Adapter

    (import "types" (instance $types
      (type $component-id' (record
        (field "namespace" string)
        (field "name" string)
        (field "instance" string)))
      (export "component-id" (type $component-id (eq $component-id')))
      (type $timestamp' (record
        (field "seconds" u64)
        (field "nanoseconds" u32)))
      (export "timestamp" (type $timestamp (eq $timestamp')))
      (type $message-metadata' (record
        (field "correlation-id" (option string))
        (field "reply-to" (option $component-id))
        (field "timestamp" $timestamp)
        (field "content-type" (option string))))
      (export "message-metadata" (type $message-metadata (eq $message-metadata')))
      (type $component-message' (record
        (field "sender" $component-id)
        (field "payload" (list u8))
        (field "metadata" $message-metadata)))
      (export "component-message" (type $component-message (eq $component-message')))
      (type $wasm-error' (variant
        (case "component-not-found" string)
        (case "instantiation-failed" string)
        (case "export-not-found" string)
        (case "timeout")
        (case "resource-limit-exceeded" string)
        (case "invalid-component" string)
        (case "runtime-error" string)))
      (export "wasm-error" (type $wasm-error (eq $wasm-error')))
    ))
    (alias export $types "component-id" (type $component-id))
    (alias export $types "timestamp" (type $timestamp))
    (alias export $types "message-metadata" (type $message-metadata))
    (alias export $types "component-message" (type $bytes-message))
    (alias export $types "wasm-error" (type $wasm-error))

    ;; The guest's lifecycle instance (it may export more; only these two are used).
    (import "lifecycle" (instance $lifecycle
      (alias outer $Adapter $bytes-message (type $message))
      (alias outer $Adapter $wasm-error (type $error))
      (export "handle-message" (func
        (param "msg" $message)
        (result (result (option (list u8)) (error $error)))))
      (export "handle-callback" (func
        (param "msg" $message)
        (result (result (error $error)))))
    ))
    (alias export $lifecycle "handle-message" (func $guest-handle-message))
    (alias export $lifecycle "handle-callback" (func $guest-handle-callback))

    ;; The fast variant of component-message: payload is a string.
    (type $string-message (record
      (field "sender" $component-id)
      (field "payload" string)
      (field "metadata" $message-metadata)))

    ;; -------------------------------------------------------------------------
    ;; $Heap: the adapter's memory and allocator.
    ;;
    ;;   0x00  RET_MSG (16 B)  result<option<payload>, wasm-error>
    ;;   0x20  RET_CB  (16 B)  result<_, wasm-error>
    ;;   0x40  heap (bump allocator, grows memory on demand)
    ;;
    ;; Allocations of one call: the host lowering the export's arguments
    ;; (message record and its strings), then wasmtime copying the guest's
    ;; results (reply bytes, error strings) in.  All of it is dead once the
    ;; host has lifted the results, which happens before the host's next
    ;; call lowers anything: every export sets `recycle` on its way out and
    ;; the next realloc first resets the heap.  So the memory never grows
    ;; beyond what the largest call needed, and no post-return is required.
    ;; A realloc of the most recent block (wasmtime shrinks a latin1 string
    ;; after transcoding) resizes it in place.
    ;; -------------------------------------------------------------------------
    (core module $Heap
      (memory (export "memory") 1)
      (global $bump (mut i32) (i32.const 0x40))
      (global $last (mut i32) (i32.const 0))
      (global $recycle (mut i32) (i32.const 0))

      (func (export "call-end") (global.set $recycle (i32.const 1)))

      ;; Make sure memory covers [0, end).  Traps when it cannot grow.
      (func $reserve (param $end i32)
        (local $pages i32)
        (local.set $pages
          (i32.wrap_i64
            (i64.shr_u
              (i64.add (i64.extend_i32_u (local.get $end)) (i64.const 0xffff))
              (i64.const 16))))
        (if (i32.gt_u (local.get $pages) (memory.size))
          (then
            (if (i32.eq (memory.grow (i32.sub (local.get $pages) (memory.size)))
                        (i32.const -1))
              (then unreachable)))))

      ;; cabi_realloc(old-ptr, old-size, align, new-size) -> ptr
      (func (export "realloc")
        (param $old i32) (param $old-size i32) (param $align i32) (param $new-size i32)
        (result i32)
        (local $ptr i32) (local $end i32)
        (if (global.get $recycle)
          (then
            (global.set $bump (i32.const 0x40))
            (global.set $last (i32.const 0))
            (global.set $recycle (i32.const 0))))
        ;; Resize the most recent block in place.
        (if (i32.and (i32.ne (local.get $old) (i32.const 0))
                     (i32.eq (local.get $old) (global.get $last)))
          (then
            (local.set $end (i32.add (local.get $old) (local.get $new-size)))
            (if (i32.lt_u (local.get $end) (local.get $old)) (then unreachable))
            (call $reserve (local.get $end))
            (global.set $bump (local.get $end))
            (return (local.get $old))))
        ;; ptr = align_up(bump, max(align, 8))   (align is a power of two).
        ;; At least 8, not just `align`: the guest's reply list<u8> is copied in
        ;; with align 1 but lifted as a latin1+utf16 string, which must be
        ;; 2-aligned ("string pointer not aligned to 2" otherwise).
        (if (i32.lt_u (local.get $align) (i32.const 8))
          (then (local.set $align (i32.const 8))))
        (local.set $ptr
          (i32.and
            (i32.add (global.get $bump) (i32.sub (local.get $align) (i32.const 1)))
            (i32.sub (i32.const 0) (local.get $align))))
        (local.set $end (i32.add (local.get $ptr) (local.get $new-size)))
        (if (i32.lt_u (local.get $end) (local.get $ptr)) (then unreachable))
        (call $reserve (local.get $end))
        (if (local.get $old)
          (then
            (memory.copy (local.get $ptr) (local.get $old)
              (select (local.get $old-size) (local.get $new-size)
                (i32.lt_u (local.get $old-size) (local.get $new-size))))))
        (global.set $bump (local.get $end))
        (global.set $last (local.get $ptr))
        (local.get $ptr))
    )
    (core instance $heap (instantiate $Heap))
    (alias core export $heap "memory" (core memory $mem))
    (alias core export $heap "realloc" (core func $realloc))

    ;; -------------------------------------------------------------------------
    ;; The guest's functions, lowered with string-encoding=utf8.
    ;;
    ;; Why utf8 here (and latin1+utf16 only towards the host): with
    ;; latin1+utf16 on both sides, wasmtime's fused adapter transcodes every
    ;; non-ASCII string for the guest by allocating a worst-case buffer and then
    ;; shrinking it with a *true* realloc (old-ptr != 0) in the guest.  The
    ;; canonical ABI allows that, but componentize-py's cabi_realloc panics on
    ;; it (the panic handler then calls WASI from inside realloc: "cannot leave
    ;; component instance").  The host's own utf8 lowering never does this, so
    ;; guests never meet it.  So $Main converts the message's strings to UTF-8
    ;; itself, and the adapter copies utf8 -> utf8 with one fresh allocation per
    ;; string, exactly like a direct host call.  The payload is a list<u8> for
    ;; the guest: copied as is.  The guest's error strings come back as UTF-8
    ;; and $Main converts them to latin1 / UTF-16 for the lift.
    ;;
    ;; Both lower to (param i32 i32): message pointer, result pointer.
    ;; -------------------------------------------------------------------------
    (core func $guest-handle-message-core
      (canon lower (func $guest-handle-message)
        string-encoding=utf8 (memory $mem) (realloc $realloc)))
    (core func $guest-handle-callback-core
      (canon lower (func $guest-handle-callback)
        string-encoding=utf8 (memory $mem) (realloc $realloc)))
    (core instance $guest
      (export "handle-message" (func $guest-handle-message-core))
      (export "handle-callback" (func $guest-handle-callback-core)))

    ;; -------------------------------------------------------------------------
    ;; $Main: convert the message's strings to UTF-8 in place, forward the
    ;; argument pointer, convert an error string back, return the result area.
    ;; Each conversion leaves ASCII strings (the usual case) untouched; invalid
    ;; input (unpaired surrogates, malformed UTF-8) traps like the canonical
    ;; ABI does.
    ;; -------------------------------------------------------------------------
    (core module $Main
      (import "heap" "memory" (memory 1))
      (import "heap" "realloc" (func $realloc (param i32 i32 i32 i32) (result i32)))
      (import "heap" "call-end" (func $call-end))
      (import "guest" "handle-message" (func $guest-handle-message (param i32 i32)))
      (import "guest" "handle-callback" (func $guest-handle-callback (param i32 i32)))

      ;; Write the UTF-8 bytes of code point $c (< 0x10000, not a surrogate)
      ;; at $o; return the next output position.
      (func $put-bmp (param $o i32) (param $c i32) (result i32)
        (if (i32.lt_u (local.get $c) (i32.const 0x80))
          (then
            (i32.store8 (local.get $o) (local.get $c))
            (return (i32.add (local.get $o) (i32.const 1)))))
        (if (i32.lt_u (local.get $c) (i32.const 0x800))
          (then
            (i32.store8 (local.get $o)
              (i32.or (i32.const 0xc0) (i32.shr_u (local.get $c) (i32.const 6))))
            (i32.store8 offset=1 (local.get $o)
              (i32.or (i32.const 0x80) (i32.and (local.get $c) (i32.const 0x3f))))
            (return (i32.add (local.get $o) (i32.const 2)))))
        (i32.store8 (local.get $o)
          (i32.or (i32.const 0xe0) (i32.shr_u (local.get $c) (i32.const 12))))
        (i32.store8 offset=1 (local.get $o)
          (i32.or (i32.const 0x80)
            (i32.and (i32.shr_u (local.get $c) (i32.const 6)) (i32.const 0x3f))))
        (i32.store8 offset=2 (local.get $o)
          (i32.or (i32.const 0x80) (i32.and (local.get $c) (i32.const 0x3f))))
        (i32.add (local.get $o) (i32.const 3)))

      ;; The (ptr: i32, len: i32) string at $at, latin1+utf16 (bit 31 of len
      ;; set = UTF-16 code units, else latin1 bytes), becomes UTF-8.
      (func $to-utf8 (param $at i32)
        (local $src i32) (local $len i32) (local $i i32) (local $extra i32)
        (local $dst i32) (local $o i32) (local $c i32) (local $lo i32)
        (local.set $src (i32.load (local.get $at)))
        (local.set $len (i32.load offset=4 (local.get $at)))
        (if (i32.lt_s (local.get $len) (i32.const 0))
          (then
            ;; UTF-16: at most 3 bytes per code unit (a pair: 4 bytes for 2).
            (local.set $len (i32.and (local.get $len) (i32.const 0x7fffffff)))
            (if (i32.gt_u (local.get $len) (i32.const 0x3fffffff)) (then unreachable))
            (local.set $dst (call $realloc (i32.const 0) (i32.const 0) (i32.const 1)
                              (i32.mul (local.get $len) (i32.const 3))))
            (local.set $o (local.get $dst))
            (block $done
              (loop $next
                (br_if $done (i32.ge_u (local.get $i) (local.get $len)))
                (local.set $c (i32.load16_u
                  (i32.add (local.get $src) (i32.shl (local.get $i) (i32.const 1)))))
                (local.set $i (i32.add (local.get $i) (i32.const 1)))
                (if (i32.ne (i32.and (local.get $c) (i32.const 0xf800)) (i32.const 0xd800))
                  (then
                    (local.set $o (call $put-bmp (local.get $o) (local.get $c)))
                    (br $next)))
                ;; A surrogate: a high one followed by a low one, or invalid.
                (if (i32.or (i32.ge_u (local.get $c) (i32.const 0xdc00))
                            (i32.ge_u (local.get $i) (local.get $len)))
                  (then unreachable))
                (local.set $lo (i32.load16_u
                  (i32.add (local.get $src) (i32.shl (local.get $i) (i32.const 1)))))
                (if (i32.ne (i32.and (local.get $lo) (i32.const 0xfc00)) (i32.const 0xdc00))
                  (then unreachable))
                (local.set $i (i32.add (local.get $i) (i32.const 1)))
                (local.set $c (i32.add (i32.const 0x10000)
                  (i32.or (i32.shl (i32.and (local.get $c) (i32.const 0x3ff)) (i32.const 10))
                          (i32.and (local.get $lo) (i32.const 0x3ff)))))
                (i32.store8 (local.get $o)
                  (i32.or (i32.const 0xf0) (i32.shr_u (local.get $c) (i32.const 18))))
                (i32.store8 offset=1 (local.get $o)
                  (i32.or (i32.const 0x80)
                    (i32.and (i32.shr_u (local.get $c) (i32.const 12)) (i32.const 0x3f))))
                (i32.store8 offset=2 (local.get $o)
                  (i32.or (i32.const 0x80)
                    (i32.and (i32.shr_u (local.get $c) (i32.const 6)) (i32.const 0x3f))))
                (i32.store8 offset=3 (local.get $o)
                  (i32.or (i32.const 0x80) (i32.and (local.get $c) (i32.const 0x3f))))
                (local.set $o (i32.add (local.get $o) (i32.const 4)))
                (br $next)))
            (i32.store (local.get $at) (local.get $dst))
            (i32.store offset=4 (local.get $at) (i32.sub (local.get $o) (local.get $dst)))
            (return)))
        ;; latin1: ASCII is UTF-8 already; each byte >= 0x80 takes 2 bytes.
        (block $counted
          (loop $count
            (br_if $counted (i32.ge_u (local.get $i) (local.get $len)))
            (local.set $extra (i32.add (local.get $extra)
              (i32.shr_u (i32.load8_u (i32.add (local.get $src) (local.get $i))) (i32.const 7))))
            (local.set $i (i32.add (local.get $i) (i32.const 1)))
            (br $count)))
        (if (i32.eqz (local.get $extra)) (then (return)))
        (local.set $dst (call $realloc (i32.const 0) (i32.const 0) (i32.const 1)
                          (i32.add (local.get $len) (local.get $extra))))
        (local.set $o (local.get $dst))
        (local.set $i (i32.const 0))
        (block $done
          (loop $next
            (br_if $done (i32.ge_u (local.get $i) (local.get $len)))
            (local.set $o (call $put-bmp (local.get $o)
              (i32.load8_u (i32.add (local.get $src) (local.get $i)))))
            (local.set $i (i32.add (local.get $i) (i32.const 1)))
            (br $next)))
        (i32.store (local.get $at) (local.get $dst))
        (i32.store offset=4 (local.get $at) (i32.add (local.get $len) (local.get $extra))))

      ;; Decode one UTF-8 sequence at $p (before $end): (code point, length).
      ;; Malformed, overlong, surrogate or > U+10FFFF: trap.
      (func $decode (param $p i32) (param $end i32) (result i32 i32)
        (local $b i32) (local $n i32) (local $c i32) (local $k i32) (local $min i32)
        (local.set $b (i32.load8_u (local.get $p)))
        (if (i32.lt_u (local.get $b) (i32.const 0x80))
          (then (return (local.get $b) (i32.const 1))))
        (if (i32.lt_u (local.get $b) (i32.const 0xc2)) (then unreachable))
        (if (i32.lt_u (local.get $b) (i32.const 0xe0))
          (then
            (local.set $n (i32.const 2))
            (local.set $c (i32.and (local.get $b) (i32.const 0x1f)))
            (local.set $min (i32.const 0x80)))
          (else
            (if (i32.lt_u (local.get $b) (i32.const 0xf0))
              (then
                (local.set $n (i32.const 3))
                (local.set $c (i32.and (local.get $b) (i32.const 0x0f)))
                (local.set $min (i32.const 0x800)))
              (else
                (if (i32.ge_u (local.get $b) (i32.const 0xf5)) (then unreachable))
                (local.set $n (i32.const 4))
                (local.set $c (i32.and (local.get $b) (i32.const 0x07)))
                (local.set $min (i32.const 0x10000))))))
        (if (i32.gt_u (local.get $n) (i32.sub (local.get $end) (local.get $p)))
          (then unreachable))
        (local.set $k (i32.const 1))
        (loop $more
          (local.set $b (i32.load8_u (i32.add (local.get $p) (local.get $k))))
          (if (i32.ne (i32.and (local.get $b) (i32.const 0xc0)) (i32.const 0x80))
            (then unreachable))
          (local.set $c (i32.or (i32.shl (local.get $c) (i32.const 6))
                                (i32.and (local.get $b) (i32.const 0x3f))))
          (local.set $k (i32.add (local.get $k) (i32.const 1)))
          (br_if $more (i32.lt_u (local.get $k) (local.get $n))))
        (if (i32.or (i32.lt_u (local.get $c) (local.get $min))
              (i32.or (i32.gt_u (local.get $c) (i32.const 0x10ffff))
                      (i32.eq (i32.and (local.get $c) (i32.const 0xfffff800))
                              (i32.const 0xd800))))
          (then unreachable))
        (local.get $c)
        (local.get $n))

      ;; The UTF-8 (ptr, len) string at $at becomes latin1+utf16: latin1 when
      ;; every code point is <= U+00FF, else UTF-16 with the tag bit set.
      (func $from-utf8 (param $at i32)
        (local $src i32) (local $end i32) (local $p i32) (local $c i32) (local $n i32)
        (local $max i32) (local $units i32) (local $latin1 i32) (local $dst i32) (local $o i32)
        (local.set $src (i32.load (local.get $at)))
        (local.set $end (i32.add (local.get $src) (i32.load offset=4 (local.get $at))))
        ;; Pass 1: validate; largest code point; length in UTF-16 code units.
        (local.set $p (local.get $src))
        (block $done
          (loop $next
            (br_if $done (i32.ge_u (local.get $p) (local.get $end)))
            (call $decode (local.get $p) (local.get $end))
            (local.set $n)
            (local.set $c)
            (local.set $p (i32.add (local.get $p) (local.get $n)))
            (if (i32.gt_u (local.get $c) (local.get $max)) (then (local.set $max (local.get $c))))
            (local.set $units (i32.add (local.get $units)
              (select (i32.const 2) (i32.const 1) (i32.ge_u (local.get $c) (i32.const 0x10000)))))
            (br $next)))
        (if (i32.lt_u (local.get $max) (i32.const 0x80)) (then (return)))
        (local.set $latin1 (i32.le_u (local.get $max) (i32.const 0xff)))
        (local.set $dst (call $realloc (i32.const 0) (i32.const 0) (i32.const 2)
          (select (local.get $units) (i32.shl (local.get $units) (i32.const 1))
                  (local.get $latin1))))
        ;; Pass 2: write.
        (local.set $o (local.get $dst))
        (local.set $p (local.get $src))
        (block $done
          (loop $next
            (br_if $done (i32.ge_u (local.get $p) (local.get $end)))
            (call $decode (local.get $p) (local.get $end))
            (local.set $n)
            (local.set $c)
            (local.set $p (i32.add (local.get $p) (local.get $n)))
            (if (local.get $latin1)
              (then
                (i32.store8 (local.get $o) (local.get $c))
                (local.set $o (i32.add (local.get $o) (i32.const 1))))
              (else
                (if (i32.ge_u (local.get $c) (i32.const 0x10000))
                  (then
                    (local.set $c (i32.sub (local.get $c) (i32.const 0x10000)))
                    (i32.store16 (local.get $o)
                      (i32.or (i32.const 0xd800) (i32.shr_u (local.get $c) (i32.const 10))))
                    (i32.store16 offset=2 (local.get $o)
                      (i32.or (i32.const 0xdc00) (i32.and (local.get $c) (i32.const 0x3ff))))
                    (local.set $o (i32.add (local.get $o) (i32.const 4))))
                  (else
                    (i32.store16 (local.get $o) (local.get $c))
                    (local.set $o (i32.add (local.get $o) (i32.const 2)))))))
            (br $next)))
        (i32.store (local.get $at) (local.get $dst))
        (i32.store offset=4 (local.get $at)
          (select (local.get $units) (i32.or (local.get $units) (i32.const 0x80000000))
                  (local.get $latin1))))

      ;; Every string of a component-message (offsets: see the file header).
      (func $message-to-utf8 (param $msg i32)
        (call $to-utf8 (local.get $msg))                              ;; sender.namespace
        (call $to-utf8 (i32.add (local.get $msg) (i32.const 8)))      ;; sender.name
        (call $to-utf8 (i32.add (local.get $msg) (i32.const 16)))     ;; sender.instance
        (if (i32.load8_u offset=32 (local.get $msg))                  ;; correlation-id
          (then (call $to-utf8 (i32.add (local.get $msg) (i32.const 36)))))
        (if (i32.load8_u offset=44 (local.get $msg))                  ;; reply-to
          (then
            (call $to-utf8 (i32.add (local.get $msg) (i32.const 48)))
            (call $to-utf8 (i32.add (local.get $msg) (i32.const 56)))
            (call $to-utf8 (i32.add (local.get $msg) (i32.const 64)))))
        (if (i32.load8_u offset=88 (local.get $msg))                  ;; content-type
          (then (call $to-utf8 (i32.add (local.get $msg) (i32.const 92))))))

      ;; result<_, wasm-error> / result<option<list<u8>>, wasm-error> at $ret:
      ;; every err case but timeout (3) carries a string at +8.
      (func $error-from-utf8 (param $ret i32)
        (if (i32.and (i32.eq (i32.load8_u (local.get $ret)) (i32.const 1))
                     (i32.ne (i32.load8_u offset=4 (local.get $ret)) (i32.const 3)))
          (then (call $from-utf8 (i32.add (local.get $ret) (i32.const 8))))))

      (func (export "handle-message") (param $msg i32) (result i32)
        (call $message-to-utf8 (local.get $msg))
        (call $guest-handle-message (local.get $msg) (i32.const 0x00))
        (call $error-from-utf8 (i32.const 0x00))
        (call $call-end)
        (i32.const 0x00))

      (func (export "handle-callback") (param $msg i32) (result i32)
        (call $message-to-utf8 (local.get $msg))
        (call $guest-handle-callback (local.get $msg) (i32.const 0x20))
        (call $error-from-utf8 (i32.const 0x20))
        (call $call-end)
        (i32.const 0x20))
    )
    (core instance $main (instantiate $Main
      (with "heap" (instance $heap))
      (with "guest" (instance $guest))))
    (alias core export $main "handle-message" (core func $handle-message-core))
    (alias core export $main "handle-callback" (core func $handle-callback-core))

    (func $handle-message (param "msg" $string-message)
      (result (result (option string) (error $wasm-error)))
      (canon lift (core func $handle-message-core)
        string-encoding=latin1+utf16 (memory $mem) (realloc $realloc)))
    (func $handle-callback (param "msg" $string-message)
      (result (result (error $wasm-error)))
      (canon lift (core func $handle-callback-core)
        string-encoding=latin1+utf16 (memory $mem) (realloc $realloc)))

    (instance $fast
      (export "component-id" (type $component-id))
      (export "timestamp" (type $timestamp))
      (export "message-metadata" (type $message-metadata))
      (export "component-message" (type $string-message))
      (export "wasm-error" (type $wasm-error))
      (export "handle-message" (func $handle-message))
      (export "handle-callback" (func $handle-callback)))
    (export "wactor:fast/lifecycle@0.1.0" (instance $fast))
  )
)
