;; fastpath.wat -- the pieces wactor.wasm._fastpath builds the wrapper W of a
;; guest G from (see _fastpath.py for the layout of W).
;;
;; Why: wasmtime-py hands component values through the C API one
;; `wasmtime_component_val_t` per value: a `list<u8>` payload costs a C value
;; (and a Rust `Val`) per byte, and a component-message record a dozen C
;; values built one by one, while a `string` crosses as one buffer and a
;; scalar as one value.  W exports G's handle-message / handle-callback again
;; as functions of strings and scalars only, lifted with string-encoding=utf8
;; (wasmtime moves a UTF-8 string between the host and a memory with a memcpy
;; and a UTF-8 check), and $Main builds G's component-message from them:
;;
;;   handle-message(payload: string, metadata: string, timestamp: u64,
;;                  sender-namespace: u32, sender-name: u32,
;;                  sender-instance: u32, reply-to-namespace: u32,
;;                  reply-to-name: u32, reply-to-instance: u32,
;;                  correlation-id: u32, content-type: u32,
;;                  payload-encoding: u32) -> string
;;   handle-callback(the same) -> string
;;
;; `metadata` is the UTF-8 text of the record's other strings, one after the
;; other: sender namespace, name, instance, then (if present) reply-to
;; namespace, name, instance, correlation-id, content-type.  The u32 params
;; are their lengths in bytes; NONE (0xFFFFFFFF) as the length of
;; reply-to-namespace, correlation-id or content-type means the option is
;; none (and the other reply-to lengths are ignored).  The lengths must add
;; up to the metadata's length exactly, or the call traps.  `timestamp` is
;; nanoseconds since the epoch: the record's timestamp is
;; (timestamp / 10^9, timestamp % 10^9).
;;
;; The payload string is, with payload-encoding 0, the host's
;; `payload.decode("latin-1")`: one char per byte, so its UTF-8 form has each
;; byte < 0x80 as itself and each byte >= 0x80 as two bytes, 0xC2 / 0xC3 and a
;; continuation byte; with payload-encoding 1, two lowercase hex digits per
;; byte (the host's `payload.hex()`: ASCII, which wasmtime copies and checks as
;; UTF-8 in large steps, while it checks 2-byte chars one at a time).  $Latin1
;; turns either back into the raw bytes in place, and $Main hands them on to
;; the guest's `list<u8>`; the guest's reply `list<u8>` is turned into text
;; the same way.  A payload char above U+00FF (or anything else that is not
;; UTF-8 of latin-1 text), a payload that is not hex digits, and any other
;; payload-encoding trap.
;;
;; The answer is one string: a tag char, then text.
;;   "n"           ok(none) (handle-callback: ok)
;;   "a" TEXT      ok(some(reply)), every byte of the reply < 0x80: TEXT is
;;                 the reply's bytes as they are
;;   "s" TEXT      ok(some(reply)), some byte >= 0x80, less than 1/64 of
;;                 them: TEXT is the reply as latin-1 text, as above (the host
;;                 reads `TEXT.encode("latin-1")`)
;;   "x" TEXT      ok(some(reply)), 1/64 of the bytes or more >= 0x80: TEXT is
;;                 the reply's hex digits (`bytes.fromhex(TEXT)`)
;;   "0".."6" TEXT err(wasm-error case 0..6 with its string TEXT); case 3,
;;                 timeout, has no string
;;
;; The record's other strings and the guest's error strings are UTF-8 on both
;; sides and are copied as they are (componentize-py's cabi_realloc does not
;; survive a true realloc with old-ptr != 0, which wasmtime's transcoding
;; between other encodings does; $Main only ever asks G's realloc for fresh
;; blocks, as a utf8 -> utf8 copy by wasmtime does).
;;
;; W reaches G in one of two ways (_fastpath.py picks; the host cannot tell):
;;
;;   flat    G's own sections are W's first sections, so W sees G's core
;;           memory, realloc and the core functions G lifts as its
;;           handle-message / handle-callback (with their post-return).  W
;;           instantiates $Heap, $Latin1 and $Main itself, next to G's core
;;           instances, and $Main calls G's core functions directly: it
;;           allocates the message in G's memory with G's realloc and copies
;;           into it with memory.copy, as wasmtime's fused adapter would but
;;           without its byte-by-byte loop over a list<u8>.  $Check makes
;;           wasmtime check that G's lifecycle functions have the types
;;           $Main takes them to have.
;;   nested  G stays a nested component and $Adapter imports its lifecycle
;;           instance: $Nested calls G's functions lowered into the adapter's
;;           memory (wasmtime's fused adapter copies the message into G and
;;           the results back), and $Main's "guest" memory is its own.
;;
;; This file is one valid component holding, in this order (_fastpath.py
;; copies the sections it needs):
;;   the type $fast-func       the fast functions' type (for flat W; $Adapter
;;                             has its own copy, which must stay the same)
;;   component $Types          no imports; exports the record/variant types
;;                             $Adapter and $Check need (a component's imports
;;                             may only use *named* types, so they must come
;;                             from outside: W instantiates $Types and passes
;;                             that instance as their "types" import)
;;   component $Check          imports "types" and "lifecycle" exactly like
;;                             $Adapter, and nothing else
;;   component $Adapter        nested W's adapter: imports "types" and
;;                             "lifecycle" (G's
;;                             airssys:core/component-lifecycle@1.0.0
;;                             instance; only its handle-message and
;;                             handle-callback are required), exports
;;                             "wactor:fast/lifecycle@0.4.0"; its core modules
;;                             $Heap, $Latin1, $Main, $Nested (in this order)
;;                             are the ones flat W instantiates too
;;
;; Record layouts (canonical ABI):
;;   component-message (104 B, align 8):
;;     +0 sender.namespace, +8 sender.name, +16 sender.instance (ptr, len)
;;     +24 payload ptr, +28 payload len
;;     +32 correlation-id option<string>: u8 disc, +36 ptr, +40 len
;;     +44 reply-to option<component-id>: u8 disc, +48/+56/+64 its strings
;;     +72 timestamp (u64 seconds, +80 u32 nanoseconds)
;;     +88 content-type option<string>: u8 disc, +92 ptr, +96 len
;;   result<option<list<u8>>, wasm-error> (16 B, align 4): +0 u8 ok/err,
;;     ok: +4 u8 none/some, +8 ptr, +12 len; err: +4 u8 case, +8 ptr, +12 len
;;     (case 3, timeout, has no string).
;;   result<_, wasm-error> (16 B, align 4): same, without the option.
;; The fast functions' params flatten to 14 core values (<= 16 =
;; MAX_FLAT_PARAMS), so they arrive as core params; their string result
;; flattens to 2 (> 1 = MAX_FLAT_RESULTS), so the lifted export returns a
;; pointer to its (ptr, len).  component-message flattens to 23 core values,
;; so G's lifted handle-message takes one i32, a pointer to the message in
;; G's memory (allocated by the caller with G's realloc), and its result
;; flattening to 4 values, returns an i32 pointer to the result; lowered
;; (nested W), the pointer to the result is an extra last parameter instead.
(component $fastpath
  (type $fast-func (func
      (param "payload" string) (param "metadata" string) (param "timestamp" u64)
      (param "sender-namespace" u32) (param "sender-name" u32) (param "sender-instance" u32)
      (param "reply-to-namespace" u32) (param "reply-to-name" u32)
      (param "reply-to-instance" u32) (param "correlation-id" u32) (param "content-type" u32)
      (param "payload-encoding" u32)
      (result string)))


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
  ;; $Check: nothing but $Adapter's imports.  Flat W instantiates it with G's
  ;; lifecycle instance, so that wasmtime checks G's handle-message and
  ;; handle-callback against the types $Main builds and reads.
  ;; ===========================================================================
  (component $Check

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
      (alias outer $Check $bytes-message (type $message))
      (alias outer $Check $wasm-error (type $error))
      (export "handle-message" (func
        (param "msg" $message)
        (result (result (option (list u8)) (error $error)))))
      (export "handle-callback" (func
        (param "msg" $message)
        (result (result (error $error)))))
    ))
  )

  ;; ===========================================================================
  ;; $Adapter: the fast interface of nested W, and the core modules of both.
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

    ;; -------------------------------------------------------------------------
    ;; $Heap: the memory and allocator of the host-facing strings.
    ;;
    ;;   0x000  RET_MSG (16 B)  nested: G's result<option<payload>, wasm-error>
    ;;   0x010  ANSWER  (8 B)   the answer string's (ptr, len)
    ;;   0x020  RET_CB  (16 B)  nested: G's result<_, wasm-error>
    ;;   0x030  TAGS    (11 B)  "0123456nsax": the answers' tag chars (of $Main)
    ;;   0x040  PACK (2 KiB)    $Latin1's table (a data segment of $Latin1)
    ;;   0x1000 heap (bump allocator, grows memory on demand)
    ;;
    ;; One call allocates in two rounds.  1. The host lowers the export's
    ;; arguments: the payload and the metadata text (the payload's bytes then
    ;; replace its text in place).  2. After the guest has run, $Main adds the
    ;; answer's text (nested: after wasmtime has copied G's results in).  The
    ;; message is dead by round 2 ($Main copied it into G before G ran), and
    ;; everything is dead once the host has lifted the answer, before its next
    ;; call lowers anything.  So $Main calls `recycle` before the guest runs
    ;; and on its way out, and the next realloc first resets the heap: the
    ;; memory never grows beyond what the largest round needed (for an echo of
    ;; n bytes: n if they are ASCII, up to 2n + n if they are not), and no
    ;; post-return is required.  A realloc of the most recent block resizes it
    ;; in place.  Memory always extends 16 bytes past the end of the newest
    ;; block: $Latin1 reads up to 1 byte past a text and writes up to 16 bytes
    ;; past its output.  The byte before every block is free (no block ever
    ;; starts right at the bump pointer): when G's results are in this memory
    ;; (nested W), $Main writes an answer's tag char there instead of copying
    ;; the string after it.  `nop` is the post-return of a guest function that
    ;; has none; `shared` (0) says that this is not G's memory.
    ;; -------------------------------------------------------------------------
    (core module $Heap
      (memory (export "memory") 1)
      (global $bump (mut i32) (i32.const 0x1000))
      (global $last (mut i32) (i32.const 0))
      (global $recycle (mut i32) (i32.const 0))

      ;; Everything allocated so far is dead: the next realloc starts over.
      (func (export "recycle") (global.set $recycle (i32.const 1)))

      (func (export "nop") (param i32))
      (global (export "shared") i32 (i32.const 0))

      ;; Make sure memory covers [0, end + 16).  Traps when it cannot grow.
      (func $reserve (param $end i32)
        (local $pages i32)
        (local.set $pages
          (i32.wrap_i64
            (i64.shr_u
              (i64.add (i64.extend_i32_u (local.get $end)) (i64.const 0x1000f))
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
            (global.set $bump (i32.const 0x1000))
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
        ;; ptr = align_up(bump + 1, max(align, 16))   (align is a power of two):
        ;; $Latin1's loads of 16 bytes start aligned, the byte before ptr is free.
        (if (i32.lt_u (local.get $align) (i32.const 16))
          (then (local.set $align (i32.const 16))))
        (local.set $ptr
          (i32.and
            (i32.add (global.get $bump) (local.get $align))
            (i32.sub (i32.const 0) (local.get $align))))
        (if (i32.le_u (local.get $ptr) (global.get $bump)) (then unreachable))
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

    ;; -------------------------------------------------------------------------
    ;; $Latin1: latin-1 text <-> bytes, between a "text" memory (memory 0,
    ;; which holds PACK) and a "bytes" memory (memory 1; they may be the same
    ;; memory).  In W the text memory is $Heap's and the bytes memory G's
    ;; (flat) or $Heap's again (nested); the host's converter
    ;; (wactor.wasm._latin1) instantiates $Latin1 on its own with one memory
    ;; as both.
    ;;
    ;; Both conversions take 16 bytes at a time with SIMD: an all-ASCII block
    ;; is one load, one test and one store; any other block is converted with
    ;; a few shuffles, each half of the output packed by a lookup in PACK.
    ;; The last < 16 bytes go one at a time, without branches on the data.
    ;; (wasmtime meters fuel and checks the epoch at every loop iteration, so
    ;; a loop that does more per iteration pays those less often.)
    ;; -------------------------------------------------------------------------
    (core module $Latin1
      (import "text" "memory" (memory $text 1))
      (import "bytes" "memory" (memory $bytes 0))

      ;; PACK at 0x40: 256 entries of 8 bytes.  Entry k lists the lanes whose
      ;; bit is set in k, lowest first, then 0x80 (a swizzle index that yields
      ;; 0): swizzling 8 lanes with entry k packs the lanes k selects to the
      ;; front, popcnt(k) of them.  Packing 16 lanes by a 16-bit mask: the low
      ;; half with entry (mask & 0xff), stored as 8 bytes at o, o += popcnt;
      ;; the high half with entry (mask >> 8) + 8, the same.  This writes up
      ;; to 16 bytes from o on.  (Checked against its definition by
      ;; tests/wasm/test_fastpath.py.)
      (data (i32.const 0x40)
        "\80\80\80\80\80\80\80\80\00\80\80\80\80\80\80\80\01\80\80\80\80\80\80\80\00\01\80\80\80\80\80\80"
        "\02\80\80\80\80\80\80\80\00\02\80\80\80\80\80\80\01\02\80\80\80\80\80\80\00\01\02\80\80\80\80\80"
        "\03\80\80\80\80\80\80\80\00\03\80\80\80\80\80\80\01\03\80\80\80\80\80\80\00\01\03\80\80\80\80\80"
        "\02\03\80\80\80\80\80\80\00\02\03\80\80\80\80\80\01\02\03\80\80\80\80\80\00\01\02\03\80\80\80\80"
        "\04\80\80\80\80\80\80\80\00\04\80\80\80\80\80\80\01\04\80\80\80\80\80\80\00\01\04\80\80\80\80\80"
        "\02\04\80\80\80\80\80\80\00\02\04\80\80\80\80\80\01\02\04\80\80\80\80\80\00\01\02\04\80\80\80\80"
        "\03\04\80\80\80\80\80\80\00\03\04\80\80\80\80\80\01\03\04\80\80\80\80\80\00\01\03\04\80\80\80\80"
        "\02\03\04\80\80\80\80\80\00\02\03\04\80\80\80\80\01\02\03\04\80\80\80\80\00\01\02\03\04\80\80\80"
        "\05\80\80\80\80\80\80\80\00\05\80\80\80\80\80\80\01\05\80\80\80\80\80\80\00\01\05\80\80\80\80\80"
        "\02\05\80\80\80\80\80\80\00\02\05\80\80\80\80\80\01\02\05\80\80\80\80\80\00\01\02\05\80\80\80\80"
        "\03\05\80\80\80\80\80\80\00\03\05\80\80\80\80\80\01\03\05\80\80\80\80\80\00\01\03\05\80\80\80\80"
        "\02\03\05\80\80\80\80\80\00\02\03\05\80\80\80\80\01\02\03\05\80\80\80\80\00\01\02\03\05\80\80\80"
        "\04\05\80\80\80\80\80\80\00\04\05\80\80\80\80\80\01\04\05\80\80\80\80\80\00\01\04\05\80\80\80\80"
        "\02\04\05\80\80\80\80\80\00\02\04\05\80\80\80\80\01\02\04\05\80\80\80\80\00\01\02\04\05\80\80\80"
        "\03\04\05\80\80\80\80\80\00\03\04\05\80\80\80\80\01\03\04\05\80\80\80\80\00\01\03\04\05\80\80\80"
        "\02\03\04\05\80\80\80\80\00\02\03\04\05\80\80\80\01\02\03\04\05\80\80\80\00\01\02\03\04\05\80\80"
        "\06\80\80\80\80\80\80\80\00\06\80\80\80\80\80\80\01\06\80\80\80\80\80\80\00\01\06\80\80\80\80\80"
        "\02\06\80\80\80\80\80\80\00\02\06\80\80\80\80\80\01\02\06\80\80\80\80\80\00\01\02\06\80\80\80\80"
        "\03\06\80\80\80\80\80\80\00\03\06\80\80\80\80\80\01\03\06\80\80\80\80\80\00\01\03\06\80\80\80\80"
        "\02\03\06\80\80\80\80\80\00\02\03\06\80\80\80\80\01\02\03\06\80\80\80\80\00\01\02\03\06\80\80\80"
        "\04\06\80\80\80\80\80\80\00\04\06\80\80\80\80\80\01\04\06\80\80\80\80\80\00\01\04\06\80\80\80\80"
        "\02\04\06\80\80\80\80\80\00\02\04\06\80\80\80\80\01\02\04\06\80\80\80\80\00\01\02\04\06\80\80\80"
        "\03\04\06\80\80\80\80\80\00\03\04\06\80\80\80\80\01\03\04\06\80\80\80\80\00\01\03\04\06\80\80\80"
        "\02\03\04\06\80\80\80\80\00\02\03\04\06\80\80\80\01\02\03\04\06\80\80\80\00\01\02\03\04\06\80\80"
        "\05\06\80\80\80\80\80\80\00\05\06\80\80\80\80\80\01\05\06\80\80\80\80\80\00\01\05\06\80\80\80\80"
        "\02\05\06\80\80\80\80\80\00\02\05\06\80\80\80\80\01\02\05\06\80\80\80\80\00\01\02\05\06\80\80\80"
        "\03\05\06\80\80\80\80\80\00\03\05\06\80\80\80\80\01\03\05\06\80\80\80\80\00\01\03\05\06\80\80\80"
        "\02\03\05\06\80\80\80\80\00\02\03\05\06\80\80\80\01\02\03\05\06\80\80\80\00\01\02\03\05\06\80\80"
        "\04\05\06\80\80\80\80\80\00\04\05\06\80\80\80\80\01\04\05\06\80\80\80\80\00\01\04\05\06\80\80\80"
        "\02\04\05\06\80\80\80\80\00\02\04\05\06\80\80\80\01\02\04\05\06\80\80\80\00\01\02\04\05\06\80\80"
        "\03\04\05\06\80\80\80\80\00\03\04\05\06\80\80\80\01\03\04\05\06\80\80\80\00\01\03\04\05\06\80\80"
        "\02\03\04\05\06\80\80\80\00\02\03\04\05\06\80\80\01\02\03\04\05\06\80\80\00\01\02\03\04\05\06\80"
        "\07\80\80\80\80\80\80\80\00\07\80\80\80\80\80\80\01\07\80\80\80\80\80\80\00\01\07\80\80\80\80\80"
        "\02\07\80\80\80\80\80\80\00\02\07\80\80\80\80\80\01\02\07\80\80\80\80\80\00\01\02\07\80\80\80\80"
        "\03\07\80\80\80\80\80\80\00\03\07\80\80\80\80\80\01\03\07\80\80\80\80\80\00\01\03\07\80\80\80\80"
        "\02\03\07\80\80\80\80\80\00\02\03\07\80\80\80\80\01\02\03\07\80\80\80\80\00\01\02\03\07\80\80\80"
        "\04\07\80\80\80\80\80\80\00\04\07\80\80\80\80\80\01\04\07\80\80\80\80\80\00\01\04\07\80\80\80\80"
        "\02\04\07\80\80\80\80\80\00\02\04\07\80\80\80\80\01\02\04\07\80\80\80\80\00\01\02\04\07\80\80\80"
        "\03\04\07\80\80\80\80\80\00\03\04\07\80\80\80\80\01\03\04\07\80\80\80\80\00\01\03\04\07\80\80\80"
        "\02\03\04\07\80\80\80\80\00\02\03\04\07\80\80\80\01\02\03\04\07\80\80\80\00\01\02\03\04\07\80\80"
        "\05\07\80\80\80\80\80\80\00\05\07\80\80\80\80\80\01\05\07\80\80\80\80\80\00\01\05\07\80\80\80\80"
        "\02\05\07\80\80\80\80\80\00\02\05\07\80\80\80\80\01\02\05\07\80\80\80\80\00\01\02\05\07\80\80\80"
        "\03\05\07\80\80\80\80\80\00\03\05\07\80\80\80\80\01\03\05\07\80\80\80\80\00\01\03\05\07\80\80\80"
        "\02\03\05\07\80\80\80\80\00\02\03\05\07\80\80\80\01\02\03\05\07\80\80\80\00\01\02\03\05\07\80\80"
        "\04\05\07\80\80\80\80\80\00\04\05\07\80\80\80\80\01\04\05\07\80\80\80\80\00\01\04\05\07\80\80\80"
        "\02\04\05\07\80\80\80\80\00\02\04\05\07\80\80\80\01\02\04\05\07\80\80\80\00\01\02\04\05\07\80\80"
        "\03\04\05\07\80\80\80\80\00\03\04\05\07\80\80\80\01\03\04\05\07\80\80\80\00\01\03\04\05\07\80\80"
        "\02\03\04\05\07\80\80\80\00\02\03\04\05\07\80\80\01\02\03\04\05\07\80\80\00\01\02\03\04\05\07\80"
        "\06\07\80\80\80\80\80\80\00\06\07\80\80\80\80\80\01\06\07\80\80\80\80\80\00\01\06\07\80\80\80\80"
        "\02\06\07\80\80\80\80\80\00\02\06\07\80\80\80\80\01\02\06\07\80\80\80\80\00\01\02\06\07\80\80\80"
        "\03\06\07\80\80\80\80\80\00\03\06\07\80\80\80\80\01\03\06\07\80\80\80\80\00\01\03\06\07\80\80\80"
        "\02\03\06\07\80\80\80\80\00\02\03\06\07\80\80\80\01\02\03\06\07\80\80\80\00\01\02\03\06\07\80\80"
        "\04\06\07\80\80\80\80\80\00\04\06\07\80\80\80\80\01\04\06\07\80\80\80\80\00\01\04\06\07\80\80\80"
        "\02\04\06\07\80\80\80\80\00\02\04\06\07\80\80\80\01\02\04\06\07\80\80\80\00\01\02\04\06\07\80\80"
        "\03\04\06\07\80\80\80\80\00\03\04\06\07\80\80\80\01\03\04\06\07\80\80\80\00\01\03\04\06\07\80\80"
        "\02\03\04\06\07\80\80\80\00\02\03\04\06\07\80\80\01\02\03\04\06\07\80\80\00\01\02\03\04\06\07\80"
        "\05\06\07\80\80\80\80\80\00\05\06\07\80\80\80\80\01\05\06\07\80\80\80\80\00\01\05\06\07\80\80\80"
        "\02\05\06\07\80\80\80\80\00\02\05\06\07\80\80\80\01\02\05\06\07\80\80\80\00\01\02\05\06\07\80\80"
        "\03\05\06\07\80\80\80\80\00\03\05\06\07\80\80\80\01\03\05\06\07\80\80\80\00\01\03\05\06\07\80\80"
        "\02\03\05\06\07\80\80\80\00\02\03\05\06\07\80\80\01\02\03\05\06\07\80\80\00\01\02\03\05\06\07\80"
        "\04\05\06\07\80\80\80\80\00\04\05\06\07\80\80\80\01\04\05\06\07\80\80\80\00\01\04\05\06\07\80\80"
        "\02\04\05\06\07\80\80\80\00\02\04\05\06\07\80\80\01\02\04\05\06\07\80\80\00\01\02\04\05\06\07\80"
        "\03\04\05\06\07\80\80\80\00\03\04\05\06\07\80\80\01\03\04\05\06\07\80\80\00\01\03\04\05\06\07\80"
        "\02\03\04\05\06\07\80\80\00\02\03\04\05\06\07\80\01\02\03\04\05\06\07\80\00\01\02\03\04\05\06\07")

      ;; text-to-bytes(ptr, len) -> n: the len bytes at ptr (text memory)
      ;; are UTF-8 text whose code points are all <= U+00FF; they become the
      ;; n bytes of those code points, in place (the bytes never run ahead of
      ;; the text).  One char:
      ;;   b < 0x80:              b                               (1 byte)
      ;;   b = 0xC2 / 0xC3, c:    (b << 6 | c & 0x3F) & 0xFF      (2 bytes)
      ;; Anything else traps: a lead byte other than 0xC2 / 0xC3 (a code
      ;; point > U+00FF, a stray continuation byte, a byte that is never
      ;; UTF-8), a missing continuation byte, text that ends inside a char.
      ;;
      ;; A block of 16 bytes starts at a char boundary.  Its lead bytes take
      ;; their value from the next byte (the block loaded 1 byte further on),
      ;; its continuation bytes are dropped; a lead byte in the last lane is
      ;; dropped as well and starts the next block instead.  Checks, in the
      ;; sign bits of $bad: a continuation byte exactly after each lead byte,
      ;; every byte >= 0x80 a lead or a continuation byte.
      ;;
      ;; In place: the stores of a block reach at most 16 bytes past its
      ;; output position o <= p, and past p + 15 only when o = p -- in the
      ;; first block after the ASCII prefix, whose lane 0 is a lead byte, so
      ;; (if valid) lane 1 is a continuation byte: at most 7 + 8 bytes are
      ;; written.  So a block never overwrites bytes of the next one (input
      ;; that is not valid is garbage anyway: it traps at the end).
      (func (export "text-to-bytes") (param $start i32) (param $len i32) (result i32)
        (local $p i32) (local $end i32) (local $o i32)
        (local $keep i32) (local $k0 i32) (local $k1 i32) (local $last i32)
        (local $v v128) (local $lead v128) (local $cont v128) (local $vals v128) (local $bad v128)
        (local $b i32) (local $c i32) (local $hi i32) (local $err i32)
        (local.set $end (i32.add (local.get $start) (local.get $len)))
        ;; The ASCII prefix stays as it is; all ASCII: done.
        (local.set $p (local.get $start))
        (block $found
          (loop $scan
            (br_if $found (i32.gt_u (i32.add (local.get $p) (i32.const 16)) (local.get $end)))
            (br_if $found (i8x16.bitmask (v128.load (local.get $p))))
            (local.set $p (i32.add (local.get $p) (i32.const 16)))
            (br $scan)))
        (block $found
          (loop $scan
            (br_if $found (i32.ge_u (local.get $p) (local.get $end)))
            (br_if $found (i32.ge_u (i32.load8_u (local.get $p)) (i32.const 0x80)))
            (local.set $p (i32.add (local.get $p) (i32.const 1)))
            (br $scan)))
        (if (i32.eq (local.get $p) (local.get $end)) (then (return (local.get $len))))
        (local.set $o (local.get $p))
        (block $tail
          (loop $blocks
            (br_if $tail (i32.gt_u (i32.add (local.get $p) (i32.const 16)) (local.get $end)))
            (local.set $v (v128.load (local.get $p)))
            (if (i32.eqz (i8x16.bitmask (local.get $v)))
              (then
                (v128.store (local.get $o) (local.get $v))
                (local.set $p (i32.add (local.get $p) (i32.const 16)))
                (local.set $o (i32.add (local.get $o) (i32.const 16)))
                (br $blocks)))
            ;; Eight 2-byte chars (lead 0xC2 / 0xC3 in the low byte of each
            ;; 16-bit lane, continuation byte in the high one): eight bytes.
            (if (i16x8.all_true (i16x8.eq
                  (v128.and (local.get $v) (v128.const i16x8 0xc0fe 0xc0fe 0xc0fe 0xc0fe
                                                              0xc0fe 0xc0fe 0xc0fe 0xc0fe))
                  (v128.const i16x8 0x80c2 0x80c2 0x80c2 0x80c2 0x80c2 0x80c2 0x80c2 0x80c2)))
              (then
                ;; the continuation byte, with bit 6 from the lead byte's bit 0
                (local.set $vals (v128.or
                  (i16x8.shr_u (local.get $v) (i32.const 8))
                  (i16x8.shl (v128.and (local.get $v) (v128.const i16x8 1 1 1 1 1 1 1 1))
                             (i32.const 6))))
                (i64.store (local.get $o) (i64x2.extract_lane 0
                  (i8x16.narrow_i16x8_u (local.get $vals) (local.get $vals))))
                (local.set $p (i32.add (local.get $p) (i32.const 16)))
                (local.set $o (i32.add (local.get $o) (i32.const 8)))
                (br $blocks)))
            (local.set $cont (i8x16.eq
              (v128.and (local.get $v)
                        (v128.const i8x16 0xc0 0xc0 0xc0 0xc0 0xc0 0xc0 0xc0 0xc0
                                          0xc0 0xc0 0xc0 0xc0 0xc0 0xc0 0xc0 0xc0))
              (v128.const i8x16 0x80 0x80 0x80 0x80 0x80 0x80 0x80 0x80
                                0x80 0x80 0x80 0x80 0x80 0x80 0x80 0x80)))
            (local.set $lead (i8x16.eq
              (v128.and (local.get $v)
                        (v128.const i8x16 0xfe 0xfe 0xfe 0xfe 0xfe 0xfe 0xfe 0xfe
                                          0xfe 0xfe 0xfe 0xfe 0xfe 0xfe 0xfe 0xfe))
              (v128.const i8x16 0xc2 0xc2 0xc2 0xc2 0xc2 0xc2 0xc2 0xc2
                                0xc2 0xc2 0xc2 0xc2 0xc2 0xc2 0xc2 0xc2)))
            (local.set $bad (v128.or (local.get $bad)
              (v128.or
                ;; continuation byte <=> lead byte in the lane before
                (v128.xor (local.get $cont)
                  (i8x16.shuffle 0 16 17 18 19 20 21 22 23 24 25 26 27 28 29 30
                    (v128.const i64x2 0 0) (local.get $lead)))
                ;; >= 0x80 but neither
                (v128.andnot (local.get $v) (v128.or (local.get $lead) (local.get $cont))))))
            (local.set $vals (v128.bitselect
              (v128.or
                (i8x16.shl (local.get $v) (i32.const 6))
                (v128.and (v128.load offset=1 (local.get $p))
                          (v128.const i8x16 0x3f 0x3f 0x3f 0x3f 0x3f 0x3f 0x3f 0x3f
                                            0x3f 0x3f 0x3f 0x3f 0x3f 0x3f 0x3f 0x3f)))
              (local.get $v)
              (local.get $lead)))
            (local.set $last (i32.and (i8x16.extract_lane_u 15 (local.get $lead)) (i32.const 1)))
            (local.set $keep
              (i32.and (i32.xor (i8x16.bitmask (local.get $cont)) (i32.const 0xffff))
                       (i32.xor (i32.shl (local.get $last) (i32.const 15)) (i32.const 0xffff))))
            ;; PACK: the kept lanes of each half, in order (8 bytes stored, popcnt kept)
            (local.set $k0 (i32.and (local.get $keep) (i32.const 0xff)))
            (local.set $k1 (i32.shr_u (local.get $keep) (i32.const 8)))
            (i64.store (local.get $o) (i64x2.extract_lane 0 (i8x16.swizzle (local.get $vals)
              (v128.load64_zero offset=0x40 (i32.shl (local.get $k0) (i32.const 3))))))
            (local.set $o (i32.add (local.get $o) (i32.popcnt (local.get $k0))))
            (i64.store (local.get $o) (i64x2.extract_lane 0 (i8x16.swizzle (local.get $vals)
              (i8x16.add (v128.load64_zero offset=0x40 (i32.shl (local.get $k1) (i32.const 3)))
                         (v128.const i8x16 8 8 8 8 8 8 8 8 0 0 0 0 0 0 0 0)))))
            (local.set $o (i32.add (local.get $o) (i32.popcnt (local.get $k1))))
            (local.set $p (i32.sub (i32.add (local.get $p) (i32.const 16)) (local.get $last)))
            (br $blocks)))
        ;; The last bytes, one char at a time (reading the byte after the
        ;; char even when there is none).
        (block $done
          (loop $chars
            (br_if $done (i32.ge_u (local.get $p) (local.get $end)))
            (local.set $b (i32.load8_u (local.get $p)))
            (local.set $c (i32.load8_u offset=1 (local.get $p)))
            (local.set $hi (i32.shr_u (local.get $b) (i32.const 7)))
            (i32.store8 (local.get $o)
              (select
                (i32.or (i32.shl (local.get $b) (i32.const 6))
                        (i32.and (local.get $c) (i32.const 0x3f)))
                (local.get $b)
                (local.get $hi)))
            (local.set $err (i32.or (local.get $err)
              (i32.and (local.get $hi)
                (i32.or
                  (i32.ne (i32.and (local.get $b) (i32.const 0xfe)) (i32.const 0xc2))
                  (i32.ne (i32.and (local.get $c) (i32.const 0xc0)) (i32.const 0x80))))))
            (local.set $o (i32.add (local.get $o) (i32.const 1)))
            (local.set $p (i32.add (local.get $p) (i32.add (local.get $hi) (i32.const 1))))
            (br $chars)))
        ;; (p > end: the text ended inside a char)
        (if (i32.or (i32.or (local.get $err) (i8x16.bitmask (local.get $bad)))
                    (i32.ne (local.get $p) (local.get $end)))
          (then unreachable))
        (i32.sub (local.get $o) (local.get $start)))

      ;; hex-to-bytes(ptr, len) -> len / 2: the len bytes at ptr (text memory)
      ;; are lowercase hex digits, two per byte; they become those bytes, in
      ;; place.  Anything else traps: an odd length, a char that is not one
      ;; of 0-9 a-f.  32 digits at a time (the high and the low digits of 16
      ;; bytes), the last ones two at a time.  A digit's value: c - '0' when
      ;; that is below 10, else c - 'a' + 10 when c - 'a' is below 6, else
      ;; the digit is bad (the sign bits of $bad).
      (func (export "hex-to-bytes") (param $start i32) (param $len i32) (result i32)
        (local $p i32) (local $end i32) (local $o i32) (local $bad v128)
        (local $x v128) (local $y v128) (local $high v128) (local $low v128)
        (local $digit v128) (local $letter v128)
        (if (i32.and (local.get $len) (i32.const 1)) (then unreachable))
        (local.set $p (local.get $start))
        (local.set $o (local.get $start))
        (local.set $end (i32.add (local.get $start) (local.get $len)))
        (block $tail
          (loop $blocks
            (br_if $tail (i32.gt_u (i32.add (local.get $p) (i32.const 32)) (local.get $end)))
            (local.set $x (v128.load (local.get $p)))
            (local.set $y (v128.load offset=16 (local.get $p)))
            ;; the high digits
            (local.set $high (i8x16.shuffle 0 2 4 6 8 10 12 14 16 18 20 22 24 26 28 30
              (local.get $x) (local.get $y)))
            (local.set $digit (i8x16.sub (local.get $high) (global.get $zeros)))
            (local.set $letter (i8x16.sub (local.get $high) (global.get $as)))
            (local.set $x (i8x16.lt_u (local.get $digit) (global.get $tens)))
            (local.set $high (v128.bitselect (local.get $digit)
              (i8x16.add (local.get $letter) (global.get $tens)) (local.get $x)))
            (local.set $bad (v128.or (local.get $bad) (v128.not (v128.or (local.get $x)
              (i8x16.lt_u (local.get $letter) (global.get $sixes))))))
            ;; the low digits
            (local.set $low (i8x16.shuffle 1 3 5 7 9 11 13 15 17 19 21 23 25 27 29 31
              (v128.load (local.get $p)) (local.get $y)))
            (local.set $digit (i8x16.sub (local.get $low) (global.get $zeros)))
            (local.set $letter (i8x16.sub (local.get $low) (global.get $as)))
            (local.set $x (i8x16.lt_u (local.get $digit) (global.get $tens)))
            (local.set $low (v128.bitselect (local.get $digit)
              (i8x16.add (local.get $letter) (global.get $tens)) (local.get $x)))
            (local.set $bad (v128.or (local.get $bad) (v128.not (v128.or (local.get $x)
              (i8x16.lt_u (local.get $letter) (global.get $sixes))))))
            (v128.store (local.get $o)
              (v128.or (i8x16.shl (local.get $high) (i32.const 4)) (local.get $low)))
            (local.set $p (i32.add (local.get $p) (i32.const 32)))
            (local.set $o (i32.add (local.get $o) (i32.const 16)))
            (br $blocks)))
        (block $done
          (loop $pairs  ;; lanes 0 and 1: the two digits of a byte
            (br_if $done (i32.ge_u (local.get $p) (local.get $end)))
            (local.set $x (v128.load16_splat (local.get $p)))
            (local.set $digit (i8x16.sub (local.get $x) (global.get $zeros)))
            (local.set $letter (i8x16.sub (local.get $x) (global.get $as)))
            (local.set $y (i8x16.lt_u (local.get $digit) (global.get $tens)))
            (local.set $x (v128.bitselect (local.get $digit)
              (i8x16.add (local.get $letter) (global.get $tens)) (local.get $y)))
            (local.set $bad (v128.or (local.get $bad) (v128.not (v128.or (local.get $y)
              (i8x16.lt_u (local.get $letter) (global.get $sixes))))))
            (i32.store8 (local.get $o) (i32.or
              (i32.shl (i8x16.extract_lane_u 0 (local.get $x)) (i32.const 4))
              (i8x16.extract_lane_u 1 (local.get $x))))
            (local.set $p (i32.add (local.get $p) (i32.const 2)))
            (local.set $o (i32.add (local.get $o) (i32.const 1)))
            (br $pairs)))
        (if (i8x16.bitmask (local.get $bad)) (then unreachable))
        (i32.shr_u (local.get $len) (i32.const 1)))

      (global $zeros v128 (v128.const i8x16 0x30 0x30 0x30 0x30 0x30 0x30 0x30 0x30
                                            0x30 0x30 0x30 0x30 0x30 0x30 0x30 0x30))
      (global $as v128 (v128.const i8x16 0x61 0x61 0x61 0x61 0x61 0x61 0x61 0x61
                                         0x61 0x61 0x61 0x61 0x61 0x61 0x61 0x61))
      (global $tens v128 (v128.const i8x16 10 10 10 10 10 10 10 10 10 10 10 10 10 10 10 10))
      (global $sixes v128 (v128.const i8x16 6 6 6 6 6 6 6 6 6 6 6 6 6 6 6 6))

      ;; bytes-to-hex(src, len, dst) -> 2 len: the lowercase hex digits of the
      ;; len bytes at src (bytes memory), two per byte, written at dst (text
      ;; memory).  Reads nothing outside the bytes, writes nothing past the
      ;; digits.
      (func (export "bytes-to-hex") (param $src i32) (param $len i32) (param $dst i32) (result i32)
        (local $p i32) (local $end i32) (local $o i32) (local $b i32)
        (local $v v128) (local $high v128) (local $low v128)
        (local.set $p (local.get $src))
        (local.set $o (local.get $dst))
        (local.set $end (i32.add (local.get $src) (local.get $len)))
        (block $tail
          (loop $blocks
            (br_if $tail (i32.gt_u (i32.add (local.get $p) (i32.const 16)) (local.get $end)))
            (local.set $v (v128.load $bytes (local.get $p)))
            (local.set $high (i8x16.swizzle (global.get $digits)
              (i8x16.shr_u (local.get $v) (i32.const 4))))
            (local.set $low (i8x16.swizzle (global.get $digits)
              (v128.and (local.get $v)
                (v128.const i8x16 15 15 15 15 15 15 15 15 15 15 15 15 15 15 15 15))))
            (v128.store (local.get $o) (i8x16.shuffle
              0 16 1 17 2 18 3 19 4 20 5 21 6 22 7 23 (local.get $high) (local.get $low)))
            (v128.store offset=16 (local.get $o) (i8x16.shuffle
              8 24 9 25 10 26 11 27 12 28 13 29 14 30 15 31 (local.get $high) (local.get $low)))
            (local.set $p (i32.add (local.get $p) (i32.const 16)))
            (local.set $o (i32.add (local.get $o) (i32.const 32)))
            (br $blocks)))
        (block $done
          (loop $bytes
            (br_if $done (i32.ge_u (local.get $p) (local.get $end)))
            (local.set $b (i32.load8_u $bytes (local.get $p)))
            (i32.store8 (local.get $o) (i8x16.extract_lane_u 0 (i8x16.swizzle (global.get $digits)
              (i8x16.splat (i32.shr_u (local.get $b) (i32.const 4))))))
            (i32.store8 offset=1 (local.get $o) (i8x16.extract_lane_u 0 (i8x16.swizzle
              (global.get $digits) (i8x16.splat (i32.and (local.get $b) (i32.const 15))))))
            (local.set $p (i32.add (local.get $p) (i32.const 1)))
            (local.set $o (i32.add (local.get $o) (i32.const 2)))
            (br $bytes)))
        (i32.shl (local.get $len) (i32.const 1)))

      (global $digits v128 (v128.const i8x16 0x30 0x31 0x32 0x33 0x34 0x35 0x36 0x37
                                             0x38 0x39 0x61 0x62 0x63 0x64 0x65 0x66))

      ;; high-count(ptr, len) -> the number of bytes >= 0x80 among the len
      ;; bytes at ptr (bytes memory), which is how much longer than len their
      ;; text is.  Reads nothing outside them.
      (func (export "high-count") (param $p i32) (param $len i32) (result i32)
        (local $end i32) (local $extra i32)
        (local.set $end (i32.add (local.get $p) (local.get $len)))
        (block $counted
          (loop $count
            (br_if $counted (i32.gt_u (i32.add (local.get $p) (i32.const 16)) (local.get $end)))
            (local.set $extra (i32.add (local.get $extra)
              (i32.popcnt (i8x16.bitmask (v128.load $bytes (local.get $p))))))
            (local.set $p (i32.add (local.get $p) (i32.const 16)))
            (br $count)))
        (block $counted
          (loop $count
            (br_if $counted (i32.ge_u (local.get $p) (local.get $end)))
            (local.set $extra (i32.add (local.get $extra)
              (i32.shr_u (i32.load8_u $bytes (local.get $p)) (i32.const 7))))
            (local.set $p (i32.add (local.get $p) (i32.const 1)))
            (br $count)))
        (local.get $extra))

      ;; bytes-to-text(src, len, dst) -> m: the UTF-8 text of the chars
      ;; U+0000..U+00FF that the len bytes at src (bytes memory) stand for,
      ;; written at dst (text memory): b < 0x80 is b, any other b is
      ;; 0xC0 | b >> 6, 0x80 | b & 0x3F; m = len + high-count.  Reads nothing
      ;; outside the bytes; writes up to 16 bytes past the text.
      ;;
      ;; A block of 16 bytes becomes the pairs (lead, continuation) of its
      ;; bytes, 8 bytes -> 16 lanes at a time; each half of those lanes is
      ;; packed with PACK, keeping every lead and the continuations of the
      ;; bytes >= 0x80 (for an ASCII byte, "lead" is the byte itself).
      (func (export "bytes-to-text") (param $src i32) (param $len i32) (param $dst i32) (result i32)
        (local $p i32) (local $end i32)
        (local $o i32) (local $keep i32) (local $k0 i32) (local $k1 i32)
        (local $b i32) (local $hi32 i32)
        (local $v v128) (local $hi v128) (local $lead v128) (local $cont v128) (local $pairs v128)
        (local.set $end (i32.add (local.get $src) (local.get $len)))
        (local.set $o (local.get $dst))
        (local.set $p (local.get $src))
        (block $tail
          (loop $blocks
            (br_if $tail (i32.gt_u (i32.add (local.get $p) (i32.const 16)) (local.get $end)))
            (local.set $v (v128.load $bytes (local.get $p)))
            (local.set $p (i32.add (local.get $p) (i32.const 16)))
            (if (i32.eqz (i8x16.bitmask (local.get $v)))
              (then
                (v128.store (local.get $o) (local.get $v))
                (local.set $o (i32.add (local.get $o) (i32.const 16)))
                (br $blocks)))
            (local.set $hi (i8x16.lt_s (local.get $v) (v128.const i64x2 0 0)))
            (local.set $lead (v128.bitselect
              (v128.or (i8x16.shr_u (local.get $v) (i32.const 6))
                       (v128.const i8x16 0xc0 0xc0 0xc0 0xc0 0xc0 0xc0 0xc0 0xc0
                                         0xc0 0xc0 0xc0 0xc0 0xc0 0xc0 0xc0 0xc0))
              (local.get $v)
              (local.get $hi)))
            (local.set $cont (v128.or
              (v128.and (local.get $v)
                        (v128.const i8x16 0x3f 0x3f 0x3f 0x3f 0x3f 0x3f 0x3f 0x3f
                                          0x3f 0x3f 0x3f 0x3f 0x3f 0x3f 0x3f 0x3f))
              (v128.const i8x16 0x80 0x80 0x80 0x80 0x80 0x80 0x80 0x80
                                0x80 0x80 0x80 0x80 0x80 0x80 0x80 0x80)))
            (if (i32.eq (i8x16.bitmask (local.get $v)) (i32.const 0xffff))
              (then  ;; every byte >= 0x80: the (lead, cont) pairs as they are
                (v128.store (local.get $o) (i8x16.shuffle
                  0 16 1 17 2 18 3 19 4 20 5 21 6 22 7 23 (local.get $lead) (local.get $cont)))
                (v128.store offset=16 (local.get $o) (i8x16.shuffle
                  8 24 9 25 10 26 11 27 12 28 13 29 14 30 15 31 (local.get $lead) (local.get $cont)))
                (local.set $o (i32.add (local.get $o) (i32.const 32)))
                (br $blocks)))
            ;; bytes 0-7, then 8-15: (lead, cont) pairs, the cont kept for >= 0x80,
            ;; packed with PACK as in $text-to-bytes
            (local.set $pairs (i8x16.shuffle
              0 16 1 17 2 18 3 19 4 20 5 21 6 22 7 23
              (local.get $lead) (local.get $cont)))
            (local.set $keep (i8x16.bitmask (i8x16.shuffle
              0 16 1 17 2 18 3 19 4 20 5 21 6 22 7 23
              (v128.const i64x2 -1 -1) (local.get $hi))))
            (local.set $k0 (i32.and (local.get $keep) (i32.const 0xff)))
            (local.set $k1 (i32.shr_u (local.get $keep) (i32.const 8)))
            (i64.store (local.get $o) (i64x2.extract_lane 0 (i8x16.swizzle (local.get $pairs)
              (v128.load64_zero offset=0x40 (i32.shl (local.get $k0) (i32.const 3))))))
            (local.set $o (i32.add (local.get $o) (i32.popcnt (local.get $k0))))
            (i64.store (local.get $o) (i64x2.extract_lane 0 (i8x16.swizzle (local.get $pairs)
              (i8x16.add (v128.load64_zero offset=0x40 (i32.shl (local.get $k1) (i32.const 3)))
                         (v128.const i8x16 8 8 8 8 8 8 8 8 0 0 0 0 0 0 0 0)))))
            (local.set $o (i32.add (local.get $o) (i32.popcnt (local.get $k1))))
            (local.set $pairs (i8x16.shuffle
              8 24 9 25 10 26 11 27 12 28 13 29 14 30 15 31
              (local.get $lead) (local.get $cont)))
            (local.set $keep (i8x16.bitmask (i8x16.shuffle
              8 24 9 25 10 26 11 27 12 28 13 29 14 30 15 31
              (v128.const i64x2 -1 -1) (local.get $hi))))
            (local.set $k0 (i32.and (local.get $keep) (i32.const 0xff)))
            (local.set $k1 (i32.shr_u (local.get $keep) (i32.const 8)))
            (i64.store (local.get $o) (i64x2.extract_lane 0 (i8x16.swizzle (local.get $pairs)
              (v128.load64_zero offset=0x40 (i32.shl (local.get $k0) (i32.const 3))))))
            (local.set $o (i32.add (local.get $o) (i32.popcnt (local.get $k0))))
            (i64.store (local.get $o) (i64x2.extract_lane 0 (i8x16.swizzle (local.get $pairs)
              (i8x16.add (v128.load64_zero offset=0x40 (i32.shl (local.get $k1) (i32.const 3)))
                         (v128.const i8x16 8 8 8 8 8 8 8 8 0 0 0 0 0 0 0 0)))))
            (local.set $o (i32.add (local.get $o) (i32.popcnt (local.get $k1))))
            (br $blocks)))
        ;; The last bytes, one at a time: 2 bytes written, 1 or 2 kept.
        (block $done
          (loop $bytes
            (br_if $done (i32.ge_u (local.get $p) (local.get $end)))
            (local.set $b (i32.load8_u $bytes (local.get $p)))
            (local.set $hi32 (i32.shr_u (local.get $b) (i32.const 7)))
            (i32.store16 (local.get $o)
              (select
                (i32.or
                  (i32.or (i32.const 0x80c0) (i32.shr_u (local.get $b) (i32.const 6)))
                  (i32.shl (i32.and (local.get $b) (i32.const 0x3f)) (i32.const 8)))
                (local.get $b)
                (local.get $hi32)))
            (local.set $o (i32.add (local.get $o) (i32.add (local.get $hi32) (i32.const 1))))
            (local.set $p (i32.add (local.get $p) (i32.const 1)))
            (br $bytes)))
        (i32.sub (local.get $o) (local.get $dst)))
    )

    ;; -------------------------------------------------------------------------
    ;; $Main: copy the message into G's memory (the payload's text turned into
    ;; its bytes), call G's handle-message / handle-callback with it, copy the
    ;; results out as the tagged answer (a reply's bytes turned into text),
    ;; call G's post-return.  "guest" is G's memory, realloc, core functions
    ;; and post-returns (flat W), or $Heap's memory and realloc and $Nested's
    ;; functions (nested W).
    ;; -------------------------------------------------------------------------
    (core module $Main
      (import "heap" "memory" (memory $heap 1))
      (import "heap" "realloc" (func $realloc (param i32 i32 i32 i32) (result i32)))
      (import "heap" "recycle" (func $recycle))
      (import "guest" "memory" (memory $guest 0))
      (import "guest" "realloc" (func $guest-realloc (param i32 i32 i32 i32) (result i32)))
      (import "guest" "handle-message" (func $guest-handle-message (param i32) (result i32)))
      (import "guest" "handle-callback" (func $guest-handle-callback (param i32) (result i32)))
      (import "guest" "post-message" (func $post-message (param i32)))
      (import "guest" "post-callback" (func $post-callback (param i32)))
      (import "guest" "shared" (global $shared i32))  ;; 1: G's memory is $Heap's
      (import "latin1" "text-to-bytes" (func $text-to-bytes (param i32 i32) (result i32)))
      (import "latin1" "high-count" (func $high-count (param i32 i32) (result i32)))
      (import "latin1" "bytes-to-text" (func $bytes-to-text (param i32 i32 i32) (result i32)))
      (import "latin1" "hex-to-bytes" (func $hex-to-bytes (param i32 i32) (result i32)))
      (import "latin1" "bytes-to-hex" (func $bytes-to-hex (param i32 i32 i32) (result i32)))

      (data (memory $heap) (i32.const 0x30) "0123456nsax")

      ;; The component-message in G's memory, from the export's params (see
      ;; the top of this file), in the order wasmtime's fused adapter would
      ;; allocate its parts: the record (realloc(0, 0, 8, 104)), then every
      ;; string and the payload, field by field, each a fresh block
      ;; (realloc(0, 0, 1, len)) and a memory.copy.  Traps before it
      ;; allocates anything unless the lengths of the metadata's strings add
      ;; up to its length.  Returns the record's address.
      (func $message
        (param $payload i32) (param $payload-len i32) (param $meta i32) (param $meta-len i32)
        (param $timestamp i64)
        (param $sender-namespace i32) (param $sender-name i32) (param $sender-instance i32)
        (param $reply-namespace i32) (param $reply-name i32) (param $reply-instance i32)
        (param $correlation i32) (param $content-type i32) (param $encoding i32)
        (result i32)
        (local $msg i32) (local $p i32) (local $reply i32) (local $total i64)
        ;; where the reply-to strings start (the correlation-id's start, when none)
        (local.set $reply (i32.add (i32.add (i32.add (local.get $meta)
          (local.get $sender-namespace)) (local.get $sender-name))
          (local.get $sender-instance)))
        (local.set $total (i64.add (i64.add (i64.add
          (i64.extend_i32_u (local.get $sender-namespace))
          (i64.extend_i32_u (local.get $sender-name)))
          (i64.extend_i32_u (local.get $sender-instance)))
          (i64.add (call $size (local.get $correlation))
                   (call $size (local.get $content-type)))))
        (if (i32.ne (local.get $reply-namespace) (i32.const -1))
          (then
            (local.set $total (i64.add (i64.add (i64.add (local.get $total)
              (i64.extend_i32_u (local.get $reply-namespace)))
              (i64.extend_i32_u (local.get $reply-name)))
              (i64.extend_i32_u (local.get $reply-instance))))))
        (if (i64.ne (local.get $total) (i64.extend_i32_u (local.get $meta-len)))
          (then unreachable))
        (if (i32.gt_u (local.get $encoding) (i32.const 1)) (then unreachable))
        (local.set $msg (call $guest-realloc (i32.const 0) (i32.const 0) (i32.const 8) (i32.const 104)))
        (if (i32.and (local.get $msg) (i32.const 7)) (then unreachable))
        (memory.fill $guest (local.get $msg) (i32.const 0) (i32.const 104))
        ;; sender
        (local.set $p (call $give (local.get $msg) (local.get $meta) (local.get $sender-namespace)))
        (local.set $p (call $give (i32.add (local.get $msg) (i32.const 8))
          (local.get $p) (local.get $sender-name)))
        (drop (call $give (i32.add (local.get $msg) (i32.const 16))
          (local.get $p) (local.get $sender-instance)))
        ;; payload: its text (or hex digits) becomes its bytes, in place, then goes to G
        (drop (call $give (i32.add (local.get $msg) (i32.const 24)) (local.get $payload)
          (if (result i32) (local.get $encoding)
            (then (call $hex-to-bytes (local.get $payload) (local.get $payload-len)))
            (else (call $text-to-bytes (local.get $payload) (local.get $payload-len))))))
        ;; metadata: correlation-id (its text follows reply-to's), reply-to
        (local.set $p (local.get $reply))
        (if (i32.ne (local.get $reply-namespace) (i32.const -1))
          (then
            (local.set $p (i32.add (i32.add (i32.add (local.get $p)
              (local.get $reply-namespace)) (local.get $reply-name))
              (local.get $reply-instance)))))
        (local.set $p (call $option (i32.add (local.get $msg) (i32.const 32))
          (local.get $p) (local.get $correlation)))
        (if (i32.ne (local.get $reply-namespace) (i32.const -1))
          (then
            (i32.store8 $guest offset=44 (local.get $msg) (i32.const 1))
            (local.set $reply (call $give (i32.add (local.get $msg) (i32.const 48))
              (local.get $reply) (local.get $reply-namespace)))
            (local.set $reply (call $give (i32.add (local.get $msg) (i32.const 56))
              (local.get $reply) (local.get $reply-name)))
            (drop (call $give (i32.add (local.get $msg) (i32.const 64))
              (local.get $reply) (local.get $reply-instance)))))
        ;; timestamp: u64 seconds (+72), u32 nanoseconds (+80)
        (i64.store $guest offset=72 (local.get $msg)
          (i64.div_u (local.get $timestamp) (i64.const 1000000000)))
        (i64.store32 $guest offset=80 (local.get $msg)
          (i64.rem_u (local.get $timestamp) (i64.const 1000000000)))
        (drop (call $option (i32.add (local.get $msg) (i32.const 88))
          (local.get $p) (local.get $content-type)))
        (local.get $msg))

      ;; The string (src, len) of $Heap's memory into a fresh block of G's;
      ;; its (ptr, len) stored at $at in G's memory (when G's memory is
      ;; $Heap's, the string as it is: wasmtime copies it into G).  Returns
      ;; src + len, where the next string of the metadata starts.
      (func $give (param $at i32) (param $src i32) (param $len i32) (result i32)
        (local $ptr i32)
        (local.set $ptr (local.get $src))
        (if (i32.eqz (global.get $shared))
          (then
            (local.set $ptr
              (call $guest-realloc (i32.const 0) (i32.const 0) (i32.const 1) (local.get $len)))
            (memory.copy $guest $heap (local.get $ptr) (local.get $src) (local.get $len))))
        (i32.store $guest (local.get $at) (local.get $ptr))
        (i32.store $guest offset=4 (local.get $at) (local.get $len))
        (i32.add (local.get $src) (local.get $len)))

      ;; The option<string> at $at in G's memory (disc; ptr and len at +4):
      ;; none when $len is NONE, else the string (src, len).  Returns where
      ;; the next string of the metadata starts.
      (func $option (param $at i32) (param $src i32) (param $len i32) (result i32)
        (if (result i32) (i32.eq (local.get $len) (i32.const -1))
          (then (local.get $src))
          (else
            (i32.store8 $guest (local.get $at) (i32.const 1))
            (call $give (i32.add (local.get $at) (i32.const 4)) (local.get $src) (local.get $len)))))

      ;; The bytes an option's length stands for (NONE: none).
      (func $size (param $len i32) (result i64)
        (select (i64.const 0) (i64.extend_i32_u (local.get $len))
          (i32.eq (local.get $len) (i32.const -1))))

      ;; G's result<option<list<u8>>, wasm-error> at $ret (G's memory), as
      ;; the answer (see the top of this file).  Traps on a discriminant that
      ;; is out of range, as wasmtime does when it lifts one.
      (func $answer-message (param $ret i32)
        (local $disc i32)
        (local.set $disc (i32.load8_u $guest (local.get $ret)))
        (if (local.get $disc)
          (then
            (if (i32.ne (local.get $disc) (i32.const 1)) (then unreachable))
            (return (call $error (local.get $ret)))))
        (local.set $disc (i32.load8_u $guest offset=4 (local.get $ret)))
        (if (i32.eqz (local.get $disc)) (then (return (call $tag-only (i32.const 7)))))   ;; "n"
        (if (i32.ne (local.get $disc) (i32.const 1)) (then unreachable))
        (call $reply (i32.load $guest offset=8 (local.get $ret))
                     (i32.load $guest offset=12 (local.get $ret))))

      ;; G's result<_, wasm-error> at $ret, as the answer.
      (func $answer-callback (param $ret i32)
        (local $disc i32)
        (local.set $disc (i32.load8_u $guest (local.get $ret)))
        (if (i32.eqz (local.get $disc)) (then (return (call $tag-only (i32.const 7)))))   ;; "n"
        (if (i32.ne (local.get $disc) (i32.const 1)) (then unreachable))
        (call $error (local.get $ret)))

      ;; The err(wasm-error) at $ret: its case at +4, its string at +8.
      (func $error (param $ret i32)
        (local $case i32)
        (local.set $case (i32.load8_u $guest offset=4 (local.get $ret)))
        (if (i32.ge_u (local.get $case) (i32.const 7)) (then unreachable))
        (if (i32.eq (local.get $case) (i32.const 3))                 ;; timeout: no string
          (then (return (call $tag-only (local.get $case)))))
        (call $tagged (local.get $case)
          (i32.load $guest offset=8 (local.get $ret))
          (i32.load $guest offset=12 (local.get $ret))))

      ;; The reply's bytes (ptr, len) in G's memory: "a" and the bytes when
      ;; they are all ASCII, "x" and their hex digits when 1/64 of them or
      ;; more are >= 0x80 (from there on hex costs less: its text is ASCII,
      ;; which every copy and UTF-8 check after this one takes in large steps),
      ;; else "s" and their text.
      (func $reply (param $ptr i32) (param $len i32)
        (local $extra i32) (local $text i32)
        (local.set $extra (call $high-count (local.get $ptr) (local.get $len)))
        (if (i32.eqz (local.get $extra))
          (then (return (call $tagged (i32.const 9) (local.get $ptr) (local.get $len)))))  ;; "a"
        (if (i32.ge_u (local.get $extra) (i32.shr_u (local.get $len) (i32.const 6)))
          (then
            (local.set $text (call $realloc (i32.const 0) (i32.const 0) (i32.const 1)
              (i32.add (i32.shl (local.get $len) (i32.const 1)) (i32.const 1))))
            (i32.store8 $heap (local.get $text) (i32.const 0x78))                 ;; "x"
            (drop (call $bytes-to-hex (local.get $ptr) (local.get $len)
              (i32.add (local.get $text) (i32.const 1))))
            (return (call $set-answer (local.get $text)
              (i32.add (i32.shl (local.get $len) (i32.const 1)) (i32.const 1))))))
        (local.set $text (call $realloc (i32.const 0) (i32.const 0) (i32.const 1)
          (i32.add (i32.add (local.get $len) (local.get $extra)) (i32.const 1))))
        (i32.store8 $heap (local.get $text) (i32.const 0x73))                     ;; "s"
        (drop (call $bytes-to-text (local.get $ptr) (local.get $len)
          (i32.add (local.get $text) (i32.const 1))))
        (call $set-answer (local.get $text)
          (i32.add (i32.add (local.get $len) (local.get $extra)) (i32.const 1))))

      ;; The answer TAGS[$tag] followed by the string (ptr, len) of G's memory
      ;; (when that is $Heap's, the string stays where it is, with the tag in
      ;; the free byte before it).
      (func $tagged (param $tag i32) (param $ptr i32) (param $len i32)
        (local $at i32)
        (if (i32.eqz (local.get $len)) (then (return (call $tag-only (local.get $tag)))))
        (if (global.get $shared)
          (then
            (local.set $at (i32.sub (local.get $ptr) (i32.const 1)))
            (i32.store8 $heap (local.get $at) (i32.load8_u $heap offset=0x30 (local.get $tag)))
            (return (call $set-answer (local.get $at) (i32.add (local.get $len) (i32.const 1))))))
        (local.set $at (call $realloc (i32.const 0) (i32.const 0) (i32.const 1)
          (i32.add (local.get $len) (i32.const 1))))
        (i32.store8 $heap (local.get $at) (i32.load8_u $heap offset=0x30 (local.get $tag)))
        (memory.copy $heap $guest (i32.add (local.get $at) (i32.const 1))
          (local.get $ptr) (local.get $len))
        (call $set-answer (local.get $at) (i32.add (local.get $len) (i32.const 1))))

      ;; The answer of one char: TAGS[$tag].
      (func $tag-only (param $tag i32)
        (call $set-answer (i32.add (i32.const 0x30) (local.get $tag)) (i32.const 1)))

      (func $set-answer (param $ptr i32) (param $len i32)
        (i32.store $heap (i32.const 0x10) (local.get $ptr))
        (i32.store $heap (i32.const 0x14) (local.get $len)))

      ;; G has its copy of the message before it runs, and its results are
      ;; copied out after: the message's text is dead by then, so the answer
      ;; reuses its memory ($recycle before the call), and the host's next
      ;; call reuses everything ($recycle once the answer is made).  G's
      ;; post-return runs once its results have been copied out.
      (func (export "handle-message")
        (param i32 i32 i32 i32 i64 i32 i32 i32 i32 i32 i32 i32 i32 i32) (result i32)
        (local $ret i32)
        (local.set $ret (call $message (local.get 0) (local.get 1) (local.get 2) (local.get 3)
          (local.get 4) (local.get 5) (local.get 6) (local.get 7) (local.get 8) (local.get 9)
          (local.get 10) (local.get 11) (local.get 12) (local.get 13)))
        (call $recycle)
        (local.set $ret (call $guest-handle-message (local.get $ret)))
        (if (i32.and (local.get $ret) (i32.const 3)) (then unreachable))
        (call $answer-message (local.get $ret))
        (call $post-message (local.get $ret))
        (call $recycle)
        (i32.const 0x10))

      (func (export "handle-callback")
        (param i32 i32 i32 i32 i64 i32 i32 i32 i32 i32 i32 i32 i32 i32) (result i32)
        (local $ret i32)
        (local.set $ret (call $message (local.get 0) (local.get 1) (local.get 2) (local.get 3)
          (local.get 4) (local.get 5) (local.get 6) (local.get 7) (local.get 8) (local.get 9)
          (local.get 10) (local.get 11) (local.get 12) (local.get 13)))
        (call $recycle)
        (local.set $ret (call $guest-handle-callback (local.get $ret)))
        (if (i32.and (local.get $ret) (i32.const 3)) (then unreachable))
        (call $answer-callback (local.get $ret))
        (call $post-callback (local.get $ret))
        (call $recycle)
        (i32.const 0x10))
    )

    ;; -------------------------------------------------------------------------
    ;; $Nested: G's functions lowered into $Heap's memory, in the shape $Main
    ;; calls them (the message's address in, the result's address out: RET_MSG
    ;; and RET_CB).
    ;; -------------------------------------------------------------------------
    (core module $Nested
      (import "lowered" "handle-message" (func $handle-message (param i32 i32)))
      (import "lowered" "handle-callback" (func $handle-callback (param i32 i32)))
      (global (export "shared") i32 (i32.const 1))
      (func (export "handle-message") (param $msg i32) (result i32)
        (call $handle-message (local.get $msg) (i32.const 0x00))
        (i32.const 0x00))
      (func (export "handle-callback") (param $msg i32) (result i32)
        (call $handle-callback (local.get $msg) (i32.const 0x20))
        (i32.const 0x20))
    )

    (core instance $heap (instantiate $Heap))
    (alias core export $heap "memory" (core memory $mem))
    (alias core export $heap "realloc" (core func $realloc))
    (alias core export $heap "nop" (core func $nop))

    ;; G's functions, lowered with string-encoding=utf8 (like the export, so
    ;; wasmtime copies every string as it is).  Both lower to (param i32 i32):
    ;; the message's address, the result's address.
    (core func $guest-handle-message-core
      (canon lower (func $guest-handle-message)
        string-encoding=utf8 (memory $mem) (realloc $realloc)))
    (core func $guest-handle-callback-core
      (canon lower (func $guest-handle-callback)
        string-encoding=utf8 (memory $mem) (realloc $realloc)))
    (core instance $lowered
      (export "handle-message" (func $guest-handle-message-core))
      (export "handle-callback" (func $guest-handle-callback-core)))
    (core instance $nested (instantiate $Nested (with "lowered" (instance $lowered))))
    (alias core export $nested "handle-message" (core func $nested-handle-message))
    (alias core export $nested "handle-callback" (core func $nested-handle-callback))
    (alias core export $nested "shared" (core global $shared))
    (core instance $guest
      (export "memory" (memory $mem))
      (export "realloc" (func $realloc))
      (export "handle-message" (func $nested-handle-message))
      (export "handle-callback" (func $nested-handle-callback))
      (export "post-message" (func $nop))
      (export "post-callback" (func $nop))
      (export "shared" (global $shared)))
    (core instance $latin1 (instantiate $Latin1
      (with "text" (instance $heap))
      (with "bytes" (instance $guest))))
    (core instance $main (instantiate $Main
      (with "heap" (instance $heap))
      (with "guest" (instance $guest))
      (with "latin1" (instance $latin1))))
    (alias core export $main "handle-message" (core func $handle-message-core))
    (alias core export $main "handle-callback" (core func $handle-callback-core))

    (type $fast-func (func
      (param "payload" string) (param "metadata" string) (param "timestamp" u64)
      (param "sender-namespace" u32) (param "sender-name" u32) (param "sender-instance" u32)
      (param "reply-to-namespace" u32) (param "reply-to-name" u32)
      (param "reply-to-instance" u32) (param "correlation-id" u32) (param "content-type" u32)
      (param "payload-encoding" u32)
      (result string)))
    (func $handle-message (type $fast-func)
      (canon lift (core func $handle-message-core)
        string-encoding=utf8 (memory $mem) (realloc $realloc)))
    (func $handle-callback (type $fast-func)
      (canon lift (core func $handle-callback-core)
        string-encoding=utf8 (memory $mem) (realloc $realloc)))

    (instance $fast
      (export "handle-message" (func $handle-message))
      (export "handle-callback" (func $handle-callback)))
    (export "wactor:fast/lifecycle@0.4.0" (instance $fast))
  )
)
