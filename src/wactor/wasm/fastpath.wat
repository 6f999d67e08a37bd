;; fastpath.wat -- the two small components that wactor.wasm._fastpath nests into
;; every wrapped guest W (see _fastpath.py for the layout of W).
;;
;; Why: wasmtime-py hands component values through the C API one
;; `wasmtime_component_val_t` per value: a `list<u8>` payload costs a C value
;; (and a Rust `Val`) per byte, and a component-message record a dozen C
;; values built one by one, while a `string` crosses as one buffer and a
;; scalar as one value.  $Adapter re-exports the guest's handle-message /
;; handle-callback as functions of strings and scalars only, lifted with
;; string-encoding=utf8 (wasmtime moves a UTF-8 string between the host and
;; the adapter's memory with a memcpy and a UTF-8 check), and builds the
;; component-message record for the guest in its own memory:
;;
;;   handle-message(payload: string, metadata: string, timestamp: u64,
;;                  sender-namespace: u32, sender-name: u32,
;;                  sender-instance: u32, reply-to-namespace: u32,
;;                  reply-to-name: u32, reply-to-instance: u32,
;;                  correlation-id: u32, content-type: u32) -> string
;;   handle-callback(the same) -> string
;;
;; `metadata` is the UTF-8 text of the record's other strings, one after the
;; other: sender namespace, name, instance, then (if present) reply-to
;; namespace, name, instance, correlation-id, content-type.  The u32 params
;; are their lengths in bytes; NONE (0xFFFFFFFF) as the length of
;; reply-to-namespace, correlation-id or content-type means the option is
;; none (and the other reply-to lengths are ignored).  The lengths must add
;; up to the metadata's length exactly, or the adapter traps.  `timestamp`
;; is nanoseconds since the epoch: the record's timestamp is
;; (timestamp / 10^9, timestamp % 10^9).
;;
;; The payload string is the host's `payload.decode("latin-1")`: one char per
;; byte, so its UTF-8 form has each byte < 0x80 as itself and each byte
;; >= 0x80 as two bytes, 0xC2 / 0xC3 and a continuation byte.  $Main turns
;; that back into the raw bytes in place (runs of ASCII a word at a time) and
;; hands (ptr, len) on to the guest's `list<u8>`; the guest's reply `list<u8>`
;; is turned into UTF-8 text the same way (ASCII replies are passed as they
;; are).  A payload char above U+00FF (or anything else that is not UTF-8 of
;; latin-1 text) traps.
;;
;; The answer is one string: a tag char, then text.
;;   "n"           ok(none) (handle-callback: ok)
;;   "s" TEXT      ok(some(reply)): TEXT is the reply as latin-1 text, as above
;;   "0".."6" TEXT err(wasm-error case 0..6 with its string TEXT); case 3,
;;                 timeout, has no string
;; The host reads the reply as `TEXT.encode("latin-1")`.
;;
;; The record's strings and the guest's error strings are UTF-8 on both sides
;; of the adapter and are copied by wasmtime as they are; towards G the
;; adapter lowers with string-encoding=utf8 as well, so wasmtime's fused
;; adapter copies utf8 -> utf8 with one fresh allocation per string, exactly
;; like a direct host call (componentize-py's cabi_realloc does not survive a
;; true realloc with old-ptr != 0, which wasmtime's transcoding between other
;; encodings does).
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
;;                  "wactor:fast/lifecycle@0.3.0".
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
;; The fast functions' params flatten to 13 core values (<= 16 =
;; MAX_FLAT_PARAMS), so they arrive as core params; their string result
;; flattens to 2 (> 1 = MAX_FLAT_RESULTS), so the lifted export returns a
;; pointer to its (ptr, len).  component-message flattens to 23 core values,
;; so the lowered guest function takes one i32 pointer to it (the record
;; $Main builds at MSG) and, its result flattening to 4 values, a result
;; pointer as an extra last parameter.
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

    ;; -------------------------------------------------------------------------
    ;; $Heap: the adapter's memory and allocator.
    ;;
    ;;   0x000  RET_MSG (16 B)  result<option<payload>, wasm-error>
    ;;   0x010  ANSWER  (8 B)   the answer string's (ptr, len)
    ;;   0x020  RET_CB  (16 B)  result<_, wasm-error>
    ;;   0x030  TAGS    (9 B)   "0123456ns": the answers' tag chars (data of $Main)
    ;;   0x040  PACK (2 KiB)    $Main's table (a data segment of $Main)
    ;;   0x840  MSG    (104 B)  the component-message $Main builds for G
    ;;   0x1000 heap (bump allocator, grows memory on demand)
    ;;
    ;; One call allocates in two rounds.  1. The host lowers the export's
    ;; arguments: the payload and the metadata text (the payload's bytes
    ;; then replace its text in place; the record's strings point into the
    ;; metadata).  2. After the guest has run, wasmtime
    ;; copies its results in (reply bytes, error strings) and $Main adds the
    ;; reply's text.  The message is dead by round 2 (the guest got its own
    ;; copy before it ran), and everything is dead once the host has lifted
    ;; the results, before its next call lowers anything.  So $Main calls
    ;; `recycle` before the guest runs and on its way out, and the next
    ;; realloc first resets the heap: the memory never grows beyond what the
    ;; largest round needed (for an echo of n bytes: n if they are ASCII, up
    ;; to 3n if they are not), and no post-return is required.  A realloc of
    ;; the most recent block resizes it in place.  Memory always extends 16
    ;; bytes past the end of the newest block: $Main reads up to 1 byte past
    ;; a string and writes up to 8 bytes past its output.  The byte before
    ;; every block is free (no block ever starts right at the bump pointer):
    ;; $Main writes the answer's tag char there instead of copying the text.
    ;; -------------------------------------------------------------------------
    (core module $Heap
      (memory (export "memory") 1)
      (global $bump (mut i32) (i32.const 0x1000))
      (global $last (mut i32) (i32.const 0))
      (global $recycle (mut i32) (i32.const 0))

      ;; Everything allocated so far is dead: the next realloc starts over.
      (func (export "recycle") (global.set $recycle (i32.const 1)))

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
        ;; $Main's loads of 16 bytes start aligned, the byte before ptr is free.
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
    (core instance $heap (instantiate $Heap))
    (alias core export $heap "memory" (core memory $mem))
    (alias core export $heap "realloc" (core func $realloc))

    ;; -------------------------------------------------------------------------
    ;; The guest's functions, lowered with string-encoding=utf8 (like the
    ;; export, so wasmtime copies every string as it is).
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
    ;; $Main: build the component-message at MSG from the payload and the
    ;; metadata (turning the payload's text into its bytes), call the guest
    ;; with it, turn a reply's bytes into text, return the tagged answer.
    ;;
    ;; Both conversions take 16 bytes at a time with SIMD: an all-ASCII block
    ;; is one load, one test and one store; any other block is converted with
    ;; a few shuffles, each half of the output packed by a lookup in PACK.
    ;; The last < 16 bytes go one at a time, without branches on the data.
    ;; (wasmtime meters fuel and checks the epoch at every loop iteration, so
    ;; a loop that does more per iteration pays those less often.)
    ;; -------------------------------------------------------------------------
    (core module $Main
      (import "heap" "memory" (memory 1))
      (import "heap" "realloc" (func $realloc (param i32 i32 i32 i32) (result i32)))
      (import "heap" "recycle" (func $recycle))
      (import "guest" "handle-message" (func $guest-handle-message (param i32 i32)))
      (import "guest" "handle-callback" (func $guest-handle-callback (param i32 i32)))

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

      ;; The (ptr, len) at $at is UTF-8 text whose code points are all
      ;; <= U+00FF; it becomes the bytes of those code points, in place (the
      ;; bytes never run ahead of the text).  One char:
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
      (func $text-to-bytes (param $at i32)
        (local $start i32) (local $p i32) (local $end i32) (local $o i32)
        (local $keep i32) (local $k0 i32) (local $k1 i32) (local $last i32)
        (local $v v128) (local $lead v128) (local $cont v128) (local $vals v128) (local $bad v128)
        (local $b i32) (local $c i32) (local $hi i32) (local $err i32)
        (local.set $start (i32.load (local.get $at)))
        (local.set $end (i32.add (local.get $start) (i32.load offset=4 (local.get $at))))
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
        (if (i32.eq (local.get $p) (local.get $end)) (then (return)))
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
        (i32.store offset=4 (local.get $at) (i32.sub (local.get $o) (local.get $start))))

      ;; The (ptr, len) at $at is bytes; it becomes the UTF-8 text of the
      ;; chars U+0000..U+00FF they stand for (left as it is when every byte
      ;; is ASCII, else in a new block): b < 0x80 is b, any other b is
      ;; 0xC0 | b >> 6, 0x80 | b & 0x3F.
      ;;
      ;; A block of 16 bytes becomes the pairs (lead, continuation) of its
      ;; bytes, 8 bytes -> 16 lanes at a time; each half of those lanes is
      ;; packed with PACK, keeping every lead and the continuations of the
      ;; bytes >= 0x80 (for an ASCII byte, "lead" is the byte itself).
      (func $bytes-to-text (param $at i32)
        (local $src i32) (local $p i32) (local $end i32) (local $len i32) (local $extra i32)
        (local $dst i32) (local $o i32) (local $keep i32) (local $k0 i32) (local $k1 i32)
        (local $b i32) (local $hi32 i32)
        (local $v v128) (local $hi v128) (local $lead v128) (local $cont v128) (local $pairs v128)
        (local.set $src (i32.load (local.get $at)))
        (local.set $len (i32.load offset=4 (local.get $at)))
        (local.set $end (i32.add (local.get $src) (local.get $len)))
        ;; Count the bytes >= 0x80: each takes one more byte.
        (local.set $p (local.get $src))
        (block $counted
          (loop $count
            (br_if $counted (i32.gt_u (i32.add (local.get $p) (i32.const 16)) (local.get $end)))
            (local.set $extra (i32.add (local.get $extra)
              (i32.popcnt (i8x16.bitmask (v128.load (local.get $p))))))
            (local.set $p (i32.add (local.get $p) (i32.const 16)))
            (br $count)))
        (block $counted
          (loop $count
            (br_if $counted (i32.ge_u (local.get $p) (local.get $end)))
            (local.set $extra (i32.add (local.get $extra)
              (i32.shr_u (i32.load8_u (local.get $p)) (i32.const 7))))
            (local.set $p (i32.add (local.get $p) (i32.const 1)))
            (br $count)))
        (if (i32.eqz (local.get $extra)) (then (return)))
        (local.set $dst (call $realloc (i32.const 0) (i32.const 0) (i32.const 1)
                          (i32.add (local.get $len) (local.get $extra))))
        (local.set $o (local.get $dst))
        (local.set $p (local.get $src))
        (block $tail
          (loop $blocks
            (br_if $tail (i32.gt_u (i32.add (local.get $p) (i32.const 16)) (local.get $end)))
            (local.set $v (v128.load (local.get $p)))
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
            (local.set $b (i32.load8_u (local.get $p)))
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
        (i32.store (local.get $at) (local.get $dst))
        (i32.store offset=4 (local.get $at) (i32.add (local.get $len) (local.get $extra))))

;; The component-message at MSG, from the export's params (see the top
      ;; of this file): the strings point into the payload and the metadata
      ;; where the host lowered them.  Traps unless the lengths of the
      ;; metadata's strings add up to its length.
      (func $message
        (param $payload i32) (param $payload-len i32) (param $meta i32) (param $meta-len i32)
        (param $timestamp i64)
        (param $sender-namespace i32) (param $sender-name i32) (param $sender-instance i32)
        (param $reply-namespace i32) (param $reply-name i32) (param $reply-instance i32)
        (param $correlation i32) (param $content-type i32)
        (local $p i32) (local $total i64)
        (local.set $p (local.get $meta))
        (local.set $p (call $piece (i32.const 0x840) (local.get $p) (local.get $sender-namespace)))
        (local.set $p (call $piece (i32.const 0x848) (local.get $p) (local.get $sender-name)))
        (local.set $p (call $piece (i32.const 0x850) (local.get $p) (local.get $sender-instance)))
        (local.set $total (i64.add (i64.add
          (i64.extend_i32_u (local.get $sender-namespace))
          (i64.extend_i32_u (local.get $sender-name)))
          (i64.extend_i32_u (local.get $sender-instance))))
        (i32.store (i32.const 0x86c) (i32.const 0))       ;; reply-to: none (disc +44, +48..)
        (i64.store (i32.const 0x870) (i64.const 0))
        (i64.store (i32.const 0x878) (i64.const 0))
        (i64.store (i32.const 0x880) (i64.const 0))
        (i64.store (i32.const 0x888) (i64.const 0))
        (if (i32.ne (local.get $reply-namespace) (i32.const -1))
          (then
            (i32.store8 (i32.const 0x86c) (i32.const 1))
            (local.set $p (call $piece (i32.const 0x870) (local.get $p) (local.get $reply-namespace)))
            (local.set $p (call $piece (i32.const 0x878) (local.get $p) (local.get $reply-name)))
            (local.set $p (call $piece (i32.const 0x880) (local.get $p) (local.get $reply-instance)))
            (local.set $total (i64.add (i64.add (i64.add (local.get $total)
              (i64.extend_i32_u (local.get $reply-namespace)))
              (i64.extend_i32_u (local.get $reply-name)))
              (i64.extend_i32_u (local.get $reply-instance))))))
        (local.set $p (call $option (i32.const 0x860) (local.get $p) (local.get $correlation)))
        (local.set $total (i64.add (local.get $total) (call $size (local.get $correlation))))
        (local.set $p (call $option (i32.const 0x898) (local.get $p) (local.get $content-type)))
        (local.set $total (i64.add (local.get $total) (call $size (local.get $content-type))))
        (if (i64.ne (local.get $total) (i64.extend_i32_u (local.get $meta-len)))
          (then unreachable))
        ;; timestamp: u64 seconds (+72), u32 nanoseconds (+80)
        (i64.store (i32.const 0x888)
          (i64.div_u (local.get $timestamp) (i64.const 1000000000)))
        (i64.store (i32.const 0x890)
          (i64.rem_u (local.get $timestamp) (i64.const 1000000000)))
        ;; the payload: its text becomes its bytes, in place
        (i32.store (i32.const 0x858) (local.get $payload))
        (i32.store (i32.const 0x85c) (local.get $payload-len))
        (call $text-to-bytes (i32.const 0x858)))

      ;; Store the string (p, len) at $at; return where the next one starts.
      (func $piece (param $at i32) (param $p i32) (param $len i32) (result i32)
        (i32.store (local.get $at) (local.get $p))
        (i32.store offset=4 (local.get $at) (local.get $len))
        (i32.add (local.get $p) (local.get $len)))

      ;; The option<string> at $at (disc; ptr and len at +4): none when $len
      ;; is NONE, else the string (p, len).  Returns where the next one starts.
      (func $option (param $at i32) (param $p i32) (param $len i32) (result i32)
        (i64.store (local.get $at) (i64.const 0))
        (i32.store offset=8 (local.get $at) (i32.const 0))
        (if (result i32) (i32.eq (local.get $len) (i32.const -1))
          (then (local.get $p))
          (else
            (i32.store8 (local.get $at) (i32.const 1))
            (call $piece (i32.add (local.get $at) (i32.const 4)) (local.get $p) (local.get $len)))))

      ;; The bytes an option's length stands for (NONE: none).
      (func $size (param $len i32) (result i64)
        (select (i64.const 0) (i64.extend_i32_u (local.get $len))
          (i32.eq (local.get $len) (i32.const -1))))

      ;; The answer (see the top of this file) for the guest's result at
      ;; $ret, a result<option<list<u8>>, wasm-error>: for ok(some) the
      ;; reply bytes at $ret + 8 become text first.  The tag char goes in the free byte
      ;; before the text (see $Heap); an empty text answers the tag alone,
      ;; from TAGS.  Returns ANSWER.
      (func $answer (param $ret i32) (result i32)
        (local $tag i32) (local $ptr i32) (local $len i32)
        (if (i32.load8_u (local.get $ret))
          (then                                           ;; err(case)
            (local.set $tag (i32.load8_u offset=4 (local.get $ret)))
            (if (i32.eq (local.get $tag) (i32.const 3))   ;; timeout: no string
              (then (return (call $tag-only (local.get $tag))))))
          (else
            (if (i32.eqz (i32.load8_u offset=4 (local.get $ret)))
              (then (return (call $tag-only (i32.const 7)))))     ;; "n"
            (call $bytes-to-text (i32.add (local.get $ret) (i32.const 8)))
            (local.set $tag (i32.const 8))))                      ;; "s"
        (local.set $ptr (i32.load offset=8 (local.get $ret)))
        (local.set $len (i32.load offset=12 (local.get $ret)))
        (if (i32.eqz (local.get $len))
          (then (return (call $tag-only (local.get $tag)))))
        (local.set $ptr (i32.sub (local.get $ptr) (i32.const 1)))
        (i32.store8 (local.get $ptr) (i32.load8_u offset=0x30 (local.get $tag)))
        (i32.store (i32.const 0x10) (local.get $ptr))
        (i32.store (i32.const 0x14) (i32.add (local.get $len) (i32.const 1)))
        (i32.const 0x10))

      ;; The answer of one char: TAGS[$tag].
      (func $tag-only (param $tag i32) (result i32)
        (i32.store (i32.const 0x10) (i32.add (i32.const 0x30) (local.get $tag)))
        (i32.store (i32.const 0x14) (i32.const 1))
        (i32.const 0x10))

      (data (i32.const 0x30) "0123456ns")

      ;; The guest has its copy of the message before it runs, and wasmtime
      ;; copies its results in after: the message is dead by then, so the
      ;; results reuse its memory ($recycle before the call), and the host's
      ;; next call reuses everything ($recycle once the answer is made: the
      ;; text of a reply is allocated after the reply's bytes).
      (func (export "handle-message")
        (param i32 i32 i32 i32 i64 i32 i32 i32 i32 i32 i32 i32 i32) (result i32)
        (call $message (local.get 0) (local.get 1) (local.get 2) (local.get 3) (local.get 4)
          (local.get 5) (local.get 6) (local.get 7) (local.get 8) (local.get 9)
          (local.get 10) (local.get 11) (local.get 12))
        (call $recycle)
        (call $guest-handle-message (i32.const 0x840) (i32.const 0x00))
        (drop (call $answer (i32.const 0x00)))
        (call $recycle)
        (i32.const 0x10))

      (func (export "handle-callback")
        (param i32 i32 i32 i32 i64 i32 i32 i32 i32 i32 i32 i32 i32) (result i32)
        (call $message (local.get 0) (local.get 1) (local.get 2) (local.get 3) (local.get 4)
          (local.get 5) (local.get 6) (local.get 7) (local.get 8) (local.get 9)
          (local.get 10) (local.get 11) (local.get 12))
        (call $recycle)
        (call $guest-handle-callback (i32.const 0x840) (i32.const 0x20))
        ;; result<_, wasm-error>: ok has no option, err is as in RET_MSG
        (drop (if (result i32) (i32.load8_u (i32.const 0x20))
          (then (call $answer (i32.const 0x20)))
          (else (call $tag-only (i32.const 7)))))
        (call $recycle)
        (i32.const 0x10))
    )
    (core instance $main (instantiate $Main
      (with "heap" (instance $heap))
      (with "guest" (instance $guest))))
    (alias core export $main "handle-message" (core func $handle-message-core))
    (alias core export $main "handle-callback" (core func $handle-callback-core))

    (type $fast-func (func
      (param "payload" string) (param "metadata" string) (param "timestamp" u64)
      (param "sender-namespace" u32) (param "sender-name" u32) (param "sender-instance" u32)
      (param "reply-to-namespace" u32) (param "reply-to-name" u32)
      (param "reply-to-instance" u32) (param "correlation-id" u32) (param "content-type" u32)
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
    (export "wactor:fast/lifecycle@0.3.0" (instance $fast))
  )
)
