;; fastpath.wat -- the two small components that wactor.wasm._fastpath nests into
;; every wrapped guest W (see _fastpath.py for the layout of W).
;;
;; Why: wasmtime-py hands component values through the C API one
;; `wasmtime_component_val_t` per list element, so a `list<u8>` payload costs
;; a C value (and a Rust `Val`) per byte, while a `string` crosses as one
;; buffer.  $Adapter re-exports the guest's handle-message / handle-callback
;; with every `list<u8>` payload typed as a `string` lifted and lowered with
;; string-encoding=latin1+utf16.  A host string whose chars are all <= U+00FF
;; is lowered by wasmtime as latin1 -- one byte per char, UTF-16 tag bit (bit
;; 31 of the length) clear -- so its (ptr, len) is exactly a `list<u8>` of
;; those bytes, and vice versa for the reply.  The host passes
;; `payload.decode("latin-1")` and reads `reply.encode("latin-1")`.
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
;;   component-message (104 B, align 8): sender +0 (3 strings), payload ptr
;;   +24 / len +28, metadata +32 (see tests/fixtures/wat/echo.wat).
;;   result<option<payload>, wasm-error> (16 B, align 4): +0 u8 ok/err,
;;   ok: +4 u8 none/some, +8 ptr, +12 len; err: +4 u8 case, +8 ptr, +12 len.
;;   result<_, wasm-error> (16 B, align 4): same, without the option.
;; component-message flattens to 23 core values (> 16), so a lifted export
;; receives one i32 pointer to it and a lowered import takes one i32 pointer
;; to it; both results flatten to 4 values (> 1), so the lifted export returns
;; a pointer to its result and the lowered import takes a result pointer as an
;; extra last parameter.  The adapter therefore forwards pointers only: the
;; bytes are copied host -> adapter memory -> guest memory and back by
;; wasmtime itself (a memcpy for list<u8> / latin1).
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

    ;; Both lower to (param i32 i32): message pointer, result pointer.
    (core func $guest-handle-message-core
      (canon lower (func $guest-handle-message)
        string-encoding=latin1+utf16 (memory $mem) (realloc $realloc)))
    (core func $guest-handle-callback-core
      (canon lower (func $guest-handle-callback)
        string-encoding=latin1+utf16 (memory $mem) (realloc $realloc)))
    (core instance $guest
      (export "handle-message" (func $guest-handle-message-core))
      (export "handle-callback" (func $guest-handle-callback-core)))

    ;; -------------------------------------------------------------------------
    ;; $Main: forward the argument pointer, return the result area.
    ;; -------------------------------------------------------------------------
    (core module $Main
      (import "heap" "call-end" (func $call-end))
      (import "guest" "handle-message" (func $handle-message (param i32 i32)))
      (import "guest" "handle-callback" (func $handle-callback (param i32 i32)))

      (func (export "handle-message") (param $msg i32) (result i32)
        (call $handle-message (local.get $msg) (i32.const 0x00))
        (call $call-end)
        (i32.const 0x00))

      (func (export "handle-callback") (param $msg i32) (result i32)
        (call $handle-callback (local.get $msg) (i32.const 0x20))
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
