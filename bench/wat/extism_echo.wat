;; extism_echo.wat -- hand-written WAT Extism plugin (benchmark peer baseline, not a wactor guest)
;;
;; A core module for the Extism runtime (PyPI `extism`): imports the Extism kernel from
;; "extism:host/env" and exports `echo`, which returns its input, the way an Extism PDK echo
;; does it: copy the input into the plugin's own memory (input_load_u64 per 8 bytes,
;; input_load_u8 for the rest), allocate an output block in kernel memory (alloc), copy the
;; bytes there (store_u64 / store_u8) and hand it back (output_set). Returns 0 (success).
;; Kernel ABI (as the Extism PDKs declare it): offsets and lengths are i64; input offsets
;; count from the start of the input.
(module
  (import "extism:host/env" "input_length" (func $input_length (result i64)))
  (import "extism:host/env" "input_load_u8" (func $input_load_u8 (param i64) (result i32)))
  (import "extism:host/env" "input_load_u64" (func $input_load_u64 (param i64) (result i64)))
  (import "extism:host/env" "alloc" (func $alloc (param i64) (result i64)))
  (import "extism:host/env" "store_u8" (func $store_u8 (param i64 i32)))
  (import "extism:host/env" "store_u64" (func $store_u64 (param i64 i64)))
  (import "extism:host/env" "output_set" (func $output_set (param i64 i64)))
  (memory (export "memory") 1)
  (func (export "echo") (result i32)
    (local $len i64) (local $i i64) (local $out i64) (local $words i64) (local $pages i32)
    (local.set $len (call $input_length))
    ;; grow guest memory to hold len bytes at 0
    (local.set $pages (i32.wrap_i64 (i64.shr_u (i64.add (local.get $len) (i64.const 0xffff)) (i64.const 16))))
    (if (i32.gt_u (local.get $pages) (memory.size))
      (then (drop (memory.grow (i32.sub (local.get $pages) (memory.size))))))
    (local.set $words (i64.and (local.get $len) (i64.const -8)))
    (block $done (loop $copy
      (br_if $done (i64.ge_u (local.get $i) (local.get $words)))
      (i64.store (i32.wrap_i64 (local.get $i)) (call $input_load_u64 (local.get $i)))
      (local.set $i (i64.add (local.get $i) (i64.const 8)))
      (br $copy)))
    (block $done (loop $copy
      (br_if $done (i64.ge_u (local.get $i) (local.get $len)))
      (i32.store8 (i32.wrap_i64 (local.get $i)) (call $input_load_u8 (local.get $i)))
      (local.set $i (i64.add (local.get $i) (i64.const 1)))
      (br $copy)))
    (local.set $out (call $alloc (local.get $len)))
    (local.set $i (i64.const 0))
    (block $done (loop $copy
      (br_if $done (i64.ge_u (local.get $i) (local.get $words)))
      (call $store_u64 (i64.add (local.get $out) (local.get $i)) (i64.load (i32.wrap_i64 (local.get $i))))
      (local.set $i (i64.add (local.get $i) (i64.const 8)))
      (br $copy)))
    (block $done (loop $copy
      (br_if $done (i64.ge_u (local.get $i) (local.get $len)))
      (call $store_u8 (i64.add (local.get $out) (local.get $i)) (i32.load8_u (i32.wrap_i64 (local.get $i))))
      (local.set $i (i64.add (local.get $i) (i64.const 1)))
      (br $copy)))
    (call $output_set (local.get $out) (local.get $len))
    (i32.const 0))
)
