;; string_echo.wat -- hand-written WAT component (benchmark baseline, not a wactor guest)
;;
;; Exports one function, `echo: func(s: string) -> string`, that returns its argument. Called
;; through stock wasmtime-py with a Python str, the binding lowers the string with one UTF-8
;; memcpy into guest memory and lifts the result the same way: the fastest path a stock
;; component call has for bulk data, which the benchmark compares large payloads against.
;;
;; Memory: the argument is the only allocation of a call, so realloc hands out the same address
;; (0x10) every time, growing memory to fit; the result area (ptr, len) lives at 0x0.
(component
  (core module $M
    (memory (export "memory") 1)
    ;; cabi_realloc(old-ptr, old-size, align, new-size) -> ptr
    (func (export "cabi_realloc")
      (param $old i32) (param $old-size i32) (param $align i32) (param $new-size i32)
      (result i32)
      (local $pages i32)
      (local.set $pages
        (i32.wrap_i64
          (i64.shr_u
            (i64.add (i64.extend_i32_u (local.get $new-size)) (i64.const 0x1000f))
            (i64.const 16))))
      (if (i32.gt_u (local.get $pages) (memory.size))
        (then
          (if (i32.eq (memory.grow (i32.sub (local.get $pages) (memory.size))) (i32.const -1))
            (then unreachable))))
      (i32.const 0x10))
    (func (export "echo") (param $ptr i32) (param $len i32) (result i32)
      (i32.store offset=0 (i32.const 0) (local.get $ptr))
      (i32.store offset=4 (i32.const 0) (local.get $len))
      (i32.const 0))
  )
  (core instance $m (instantiate $M))
  (func (export "echo") (param "s" string) (result string)
    (canon lift (core func $m "echo") (memory (core memory $m "memory"))
      (realloc (core func $m "cabi_realloc"))))
)
