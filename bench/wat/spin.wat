;; spin.wat -- hand-written WAT component (benchmark guest; built from tests/fixtures/wat/echo.wat)
;;
;; Guest contract: src/wactor/wit/airssys-core.wit, world airssys:core/runtime-host@1.0.0, the
;; lifecycle exports exactly as echo.wat has them (metadata name "wat-spin").
;;
;; handle-message computes first when the payload asks for it, then returns the payload
;; unchanged, like echo.wat:
;;   payload = "spin" ++ u32 little-endian N ++ anything  -> N rounds of a 64-bit LCG
;;             (each round's value is stored to memory, so the loop cannot be removed), then echo;
;;   any other payload                                   -> echo at once.
;; The benchmark calibrates N against wall time on the machine it runs on.
(component $C

  ;; ===========================================================================
  ;; Types
  ;;
  ;; The interface `use`s types.{...} and errors.{...}.  Like wit-component does
  ;; for such a world, the types come from *type-only* instance imports of
  ;; airssys:core/types@1.0.0 and airssys:core/errors@1.0.0 (only the types
  ;; this component needs are listed).  Such imports carry no functions, so a
  ;; wasmtime linker need not define them at all (defining them as empty
  ;; instances also works).
  ;; ===========================================================================
  (import "airssys:core/types@1.0.0" (instance $types
    (type $component-id' (record
      (field "namespace" string)
      (field "name" string)
      (field "instance" string)))
    (export "component-id" (type $component-id (eq $component-id')))
    (type $correlation-id' string)
    (export "correlation-id" (type $correlation-id (eq $correlation-id')))
    (type $message-payload' (list u8))
    (export "message-payload" (type $message-payload (eq $message-payload')))
    (type $timestamp' (record
      (field "seconds" u64)
      (field "nanoseconds" u32)))
    (export "timestamp" (type $timestamp (eq $timestamp')))
    (type $message-metadata' (record
      (field "correlation-id" (option $correlation-id))
      (field "reply-to" (option $component-id))
      (field "timestamp" $timestamp)
      (field "content-type" (option string))))
    (export "message-metadata" (type $message-metadata (eq $message-metadata')))
    (type $component-message' (record
      (field "sender" $component-id)
      (field "payload" $message-payload)
      (field "metadata" $message-metadata)))
    (export "component-message" (type $component-message (eq $component-message')))
    (type $resource-limits' (record
      (field "max-memory-bytes" u64)
      (field "max-execution-time-ms" u64)
      (field "max-fuel" (option u64))))
    (export "resource-limits" (type $resource-limits (eq $resource-limits')))
    (type $component-config' (record
      (field "env-vars" (list (tuple string string)))
      (field "config-data" (option $message-payload))
      (field "resource-limits" $resource-limits)))
    (export "component-config" (type $component-config (eq $component-config')))
    (type $health-status' (enum "healthy" "degraded" "unhealthy" "unknown"))
    (export "health-status" (type $health-status (eq $health-status')))
  ))
  (alias export $types "component-id" (type $component-id))
  (alias export $types "correlation-id" (type $correlation-id))
  (alias export $types "message-payload" (type $message-payload))
  (alias export $types "component-message" (type $component-message))
  (alias export $types "component-config" (type $component-config))
  (alias export $types "health-status" (type $health-status))

  (import "airssys:core/errors@1.0.0" (instance $errors
    (type $wasm-error' (variant
      (case "component-not-found" string)
      (case "instantiation-failed" string)
      (case "export-not-found" string)
      (case "timeout")
      (case "resource-limit-exceeded" string)
      (case "invalid-component" string)
      (case "runtime-error" string)))
    (export "wasm-error" (type $wasm-error (eq $wasm-error')))
    (type $component-error' (variant
      (case "initialization-failed" string)
      (case "already-initialized")
      (case "not-initialized")
      (case "shutdown-failed" string)
      (case "invalid-state" string)))
    (export "component-error" (type $component-error (eq $component-error')))
  ))
  (alias export $errors "wasm-error" (type $wasm-error))
  (alias export $errors "component-error" (type $component-error))

  ;; Defined by the component-lifecycle interface itself.
  (type $component-metadata (record
    (field "name" string)
    (field "version" string)
    (field "description" string)
    (field "author" string)
    (field "license" string)
    (field "supported-operations" (list string))
    (field "stateful" bool)))

  ;; ===========================================================================
  ;; $Alloc: linear memory + bump allocator (cabi_realloc).
  ;;
  ;; It is a module of its own so that imported host functions can be lowered
  ;; against its memory/realloc *before* $Main (which imports those lowered
  ;; functions) is instantiated.
  ;;
  ;; Heap = [0x1000, ...).  Everything below 0x1000 is static data of $Main.
  ;; The memory starts at 1 page and grows on demand (no declared maximum:
  ;; the host's store limits are the cap).  If memory.grow fails, realloc
  ;; executes `unreachable`.
  ;;
  ;; Recycling: every export of $Main calls `call-begin` on entry and
  ;; `call-end` right before it returns.  After `call-end`, the next
  ;; cabi_realloc can only be the host lowering the arguments of the *next*
  ;; export call (results are lifted before that, and lifting never
  ;; allocates), so that realloc resets the bump pointer to 0x1000 first.
  ;; Allocations made while an export runs (results of imported functions)
  ;; never recycle.  Hence the heap never grows across calls, and no
  ;; post-return function is needed.
  ;; ===========================================================================
  (core module $Alloc
    (memory (export "memory") 1)
    (global $bump (mut i32) (i32.const 0x1000))
    (global $recycle (mut i32) (i32.const 0))

    (func (export "call-begin") (global.set $recycle (i32.const 0)))
    (func (export "call-end") (global.set $recycle (i32.const 1)))

    ;; cabi_realloc(old-ptr, old-size, align, new-size) -> ptr
    (func (export "cabi_realloc")
      (param $old i32) (param $old-size i32) (param $align i32) (param $new-size i32)
      (result i32)
      (local $ptr i32) (local $end i32) (local $pages i32)
      (if (global.get $recycle)
        (then
          (global.set $bump (i32.const 0x1000))
          (global.set $recycle (i32.const 0))))
      ;; ptr = align_up(bump, align)   (align is a power of two)
      (local.set $ptr
        (i32.and
          (i32.add (global.get $bump) (i32.sub (local.get $align) (i32.const 1)))
          (i32.sub (i32.const 0) (local.get $align))))
      (local.set $end (i32.add (local.get $ptr) (local.get $new-size)))
      ;; wrapped around the 4 GiB address space
      (if (i32.lt_u (local.get $end) (local.get $ptr)) (then unreachable))
      ;; pages = ceil(end / 64 KiB), computed in i64 to avoid overflow
      (local.set $pages
        (i32.wrap_i64
          (i64.shr_u
            (i64.add (i64.extend_i32_u (local.get $end)) (i64.const 0xffff))
            (i64.const 16))))
      (if (i32.gt_u (local.get $pages) (memory.size))
        (then
          (if (i32.eq (memory.grow (i32.sub (local.get $pages) (memory.size)))
                      (i32.const -1))
            (then unreachable))))
      ;; A true reallocation (the canonical ABI only ever asks for
      ;; realloc(0, 0, align, size)) copies min(old-size, new-size) bytes.
      (if (local.get $old)
        (then
          (memory.copy (local.get $ptr) (local.get $old)
            (select (local.get $old-size) (local.get $new-size)
              (i32.lt_u (local.get $old-size) (local.get $new-size))))))
      (global.set $bump (local.get $end))
      (local.get $ptr))
  )
  (core instance $alloc (instantiate $Alloc))
  (alias core export $alloc "memory" (core memory $mem))
  (alias core export $alloc "cabi_realloc" (core func $realloc))

  ;; ===========================================================================
  ;; $Main: the actor.
  ;;
  ;; Static memory map (all offsets below 0x1000, the heap base):
  ;;
  ;;   0x000  RET_LIFE (16 B)  result<_, component-error>  [initialize, shutdown]
  ;;            +0  u8   0 = ok, 1 = err
  ;;            +4  u8   component-error case      (err only)
  ;;            +8  i32  string ptr, +12 i32 len   (err cases with a string)
  ;;   0x010  RET_MSG  (16 B)  result<option<message-payload>, wasm-error>
  ;;                                                        [handle-message]
  ;;            +0  u8   0 = ok, 1 = err
  ;;            ok:   +4 u8 0 = none, 1 = some;  +8 i32 list ptr, +12 i32 len
  ;;            err:  +4 u8 wasm-error case (6 = runtime-error);
  ;;                  +8 i32 string ptr, +12 i32 len
  ;;   0x020  RET_CB   (16 B)  result<_, wasm-error>        [handle-callback]
  ;;            +0  u8   0 = ok, 1 = err;  +4.. wasm-error as in RET_MSG
  ;;   0x040  RET_META (52 B)  component-metadata           [metadata]
  ;;            +0 name, +8 version, +16 description, +24 author, +32 license
  ;;            (each: i32 ptr, i32 len)
  ;;            +40 supported-operations: list<string> (i32 ptr, i32 len)
  ;;            +48 u8 stateful
  ;;   0x080  scratch: result areas handed to imported functions (if any)
  ;;   0x100  constant strings (data segments at the end of this module)
  ;;
  ;; Lifted core signatures (canonical ABI, flattening):
  ;;   initialize(config) -- component-config flattens to 9 values:
  ;;       env-vars (ptr, len) i32 i32; config-data option<list<u8>> (disc,
  ;;       ptr, len) i32 i32 i32; resource-limits: max-memory-bytes i64,
  ;;       max-execution-time-ms i64, max-fuel option<u64> (disc i32, i64)
  ;;       -> returns a pointer to RET_LIFE (the result flattens to 4 > 1).
  ;;   handle-message / handle-callback(msg) -- component-message flattens to
  ;;       23 values > 16, so the host stores it in memory (obtained through
  ;;       cabi_realloc) and passes one i32 pointer to it:
  ;;         component-message (104 B, align 8)
  ;;           +0   sender.namespace   (i32 ptr, i32 len)
  ;;           +8   sender.name        (i32 ptr, i32 len)
  ;;           +16  sender.instance    (i32 ptr, i32 len)
  ;;           +24  payload ptr  i32
  ;;           +28  payload len  i32
  ;;           +32  metadata (message-metadata, 72 B, align 8):
  ;;             +32 correlation-id option<string>:  u8 disc, +36 ptr, +40 len
  ;;             +44 reply-to option<component-id>:  u8 disc, +48..+72 id
  ;;             +72 timestamp.seconds u64, +80 timestamp.nanoseconds u32
  ;;             +88 content-type option<string>:    u8 disc, +92 ptr, +96 len
  ;;       -> returns a pointer to RET_MSG / RET_CB.
  ;;   metadata() -> pointer to RET_META;  health() -> i32 enum index
  ;;   (0 = healthy);  shutdown() -> pointer to RET_LIFE.
  ;; ===========================================================================
  (core module $Main
    (import "alloc" "memory" (memory 1))
    (import "alloc" "call-begin" (func $call-begin))
    (import "alloc" "call-end" (func $call-end))

    ;; RET_MSG := ok(some(list(ptr, len)))
    (func $ret-some (param $ptr i32) (param $len i32) (result i32)
      (i32.store8 offset=0 (i32.const 0x10) (i32.const 0))
      (i32.store8 offset=4 (i32.const 0x10) (i32.const 1))
      (i32.store offset=8 (i32.const 0x10) (local.get $ptr))
      (i32.store offset=12 (i32.const 0x10) (local.get $len))
      (i32.const 0x10))

    (func (export "initialize")
      (param i32 i32 i32 i32 i32 i64 i64 i32 i64) (result i32)
      (call $call-begin)
      (i32.store8 (i32.const 0x00) (i32.const 0))   ;; RET_LIFE := ok
      (call $call-end)
      (i32.const 0x00))

    ;; handle-message: spin if asked ("spin" ++ u32 N), then ok(some(msg.payload))
    (func (export "handle-message") (param $msg i32) (result i32)
      (local $ptr i32) (local $n i32) (local $acc i64)
      (call $call-begin)
      (local.set $ptr (i32.load offset=24 (local.get $msg)))
      (if (i32.ge_u (i32.load offset=28 (local.get $msg)) (i32.const 8))
        (then
          (if (i32.eq (i32.load (local.get $ptr)) (i32.const 0x6e697073))  ;; "spin"
            (then
              (local.set $n (i32.load offset=4 (local.get $ptr)))
              (local.set $acc (i64.const 1))
              (block $done
                (loop $round
                  (br_if $done (i32.eqz (local.get $n)))
                  (local.set $acc
                    (i64.add
                      (i64.mul (local.get $acc) (i64.const 6364136223846793005))
                      (i64.const 1442695040888963407)))
                  (i64.store (i32.const 0x80) (local.get $acc))
                  (local.set $n (i32.sub (local.get $n) (i32.const 1)))
                  (br $round)))))))
      (call $call-end)
      (call $ret-some
        (local.get $ptr)                             ;; payload ptr
        (i32.load offset=28 (local.get $msg))))      ;; payload len

    (func (export "handle-callback") (param $msg i32) (result i32)
      (call $call-begin)
      (i32.store8 (i32.const 0x20) (i32.const 0))   ;; RET_CB := ok
      (call $call-end)
      (i32.const 0x20))

    (func (export "metadata") (result i32)
      (call $call-begin)
      ;; name
      (i32.store offset=0 (i32.const 0x40) (i32.const 0x100))
      (i32.store offset=4 (i32.const 0x40) (i32.const 8))
      ;; version "1.0.0"
      (i32.store offset=8 (i32.const 0x40) (i32.const 0x120))
      (i32.store offset=12 (i32.const 0x40) (i32.const 5))
      ;; description
      (i32.store offset=16 (i32.const 0x40) (i32.const 0x130))
      (i32.store offset=20 (i32.const 0x40) (i32.const 16))
      ;; author
      (i32.store offset=24 (i32.const 0x40) (i32.const 0x150))
      (i32.store offset=28 (i32.const 0x40) (i32.const 6))
      ;; license
      (i32.store offset=32 (i32.const 0x40) (i32.const 0x160))
      (i32.store offset=36 (i32.const 0x40) (i32.const 3))
      ;; supported-operations = [] (ptr 0, len 0)
      (i32.store offset=40 (i32.const 0x40) (i32.const 0))
      (i32.store offset=44 (i32.const 0x40) (i32.const 0))
      ;; stateful = false
      (i32.store8 offset=48 (i32.const 0x40) (i32.const 0))
      (call $call-end)
      (i32.const 0x40))

    (func (export "health") (result i32)
      (i32.const 0))                                ;; health-status.healthy

    (func (export "shutdown") (result i32)
      (call $call-begin)
      (i32.store8 (i32.const 0x00) (i32.const 0))   ;; RET_LIFE := ok
      (call $call-end)
      (i32.const 0x00))

    ;; ---- constant strings ----------------------------------------------------
    (data (i32.const 0x100) "wat-spin")             ;; metadata.name (8)
    (data (i32.const 0x120) "1.0.0")                ;; metadata.version
    (data (i32.const 0x130) "WAT test fixture")     ;; metadata.description (16)
    (data (i32.const 0x150) "wactor")               ;; metadata.author (6)
    (data (i32.const 0x160) "MIT")                  ;; metadata.license (3)
  )

  ;; ===========================================================================
  ;; Lifted functions and the exported interface instance
  ;; ===========================================================================
  (core instance $main (instantiate $Main
    (with "alloc" (instance $alloc))
  ))

  (alias core export $main "initialize" (core func $initialize-core))
  (alias core export $main "handle-message" (core func $handle-message-core))
  (alias core export $main "handle-callback" (core func $handle-callback-core))
  (alias core export $main "metadata" (core func $metadata-core))
  (alias core export $main "health" (core func $health-core))
  (alias core export $main "shutdown" (core func $shutdown-core))

  (func $initialize (param "config" $component-config)
    (result (result (error $component-error)))
    (canon lift (core func $initialize-core) (memory $mem) (realloc $realloc)))
  (func $handle-message (param "msg" $component-message)
    (result (result (option $message-payload) (error $wasm-error)))
    (canon lift (core func $handle-message-core) (memory $mem) (realloc $realloc)))
  (func $handle-callback (param "msg" $component-message)
    (result (result (error $wasm-error)))
    (canon lift (core func $handle-callback-core) (memory $mem) (realloc $realloc)))
  (func $metadata (result $component-metadata)
    (canon lift (core func $metadata-core) (memory $mem)))
  (func $health (result $health-status)
    (canon lift (core func $health-core)))
  (func $shutdown (result (result (error $component-error)))
    (canon lift (core func $shutdown-core) (memory $mem)))

  (instance $component-lifecycle
    (export "component-config" (type $component-config))
    (export "component-message" (type $component-message))
    (export "message-payload" (type $message-payload))
    (export "health-status" (type $health-status))
    (export "component-error" (type $component-error))
    (export "wasm-error" (type $wasm-error))
    (export "component-metadata" (type $component-metadata))
    (export "initialize" (func $initialize))
    (export "handle-message" (func $handle-message))
    (export "handle-callback" (func $handle-callback))
    (export "metadata" (func $metadata))
    (export "health" (func $health))
    (export "shutdown" (func $shutdown))
  )

  ;; The instance type of the export, written out like the WIT interface: the
  ;; `use`d types are re-exported with (eq ...) bounds and component-metadata
  ;; is defined here.  Ascribing it to the export makes the export's type read
  ;; exactly as the interface (`wasm-tools component wit` prints
  ;; `use types.{...}` / `use errors.{...}`) instead of re-exporting the
  ;; imported type definitions under the same names.
  (type $component-lifecycle-type (instance
    (alias outer $C $component-config (type $component-config'))
    (export "component-config" (type $component-config (eq $component-config')))
    (alias outer $C $component-message (type $component-message'))
    (export "component-message" (type $component-message (eq $component-message')))
    (alias outer $C $message-payload (type $message-payload'))
    (export "message-payload" (type $message-payload (eq $message-payload')))
    (alias outer $C $health-status (type $health-status'))
    (export "health-status" (type $health-status (eq $health-status')))
    (alias outer $C $component-error (type $component-error'))
    (export "component-error" (type $component-error (eq $component-error')))
    (alias outer $C $wasm-error (type $wasm-error'))
    (export "wasm-error" (type $wasm-error (eq $wasm-error')))
    (type $component-metadata' (record
      (field "name" string)
      (field "version" string)
      (field "description" string)
      (field "author" string)
      (field "license" string)
      (field "supported-operations" (list string))
      (field "stateful" bool)))
    (export "component-metadata" (type $component-metadata (eq $component-metadata')))
    (export "initialize" (func
      (param "config" $component-config)
      (result (result (error $component-error)))))
    (export "handle-message" (func
      (param "msg" $component-message)
      (result (result (option $message-payload) (error $wasm-error)))))
    (export "handle-callback" (func
      (param "msg" $component-message)
      (result (result (error $wasm-error)))))
    (export "metadata" (func (result $component-metadata)))
    (export "health" (func (result $health-status)))
    (export "shutdown" (func (result (result (error $component-error)))))
  ))

  (export "airssys:core/component-lifecycle@1.0.0" (instance $component-lifecycle)
    (instance (type $component-lifecycle-type)))
)
