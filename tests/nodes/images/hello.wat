;; A WASI preview 1 command module: prints one line naming itself, then sleeps (so its pod stays Running)
;; in 1-hour poll_oneoff clock waits until the container is stopped.
(module
  (import "wasi_snapshot_preview1" "fd_write" (func $fd_write (param i32 i32 i32 i32) (result i32)))
  (import "wasi_snapshot_preview1" "poll_oneoff" (func $poll_oneoff (param i32 i32 i32 i32) (result i32)))
  (memory (export "memory") 1)
  ;; the line at 16, its iovec {ptr, len} at 0
  (data (i32.const 16) "wsf-hello.wasm: hello from a WASI module\n")
  (func (export "_start")
    (i32.store (i32.const 0) (i32.const 16))
    (i32.store (i32.const 4) (i32.const 41))
    (drop (call $fd_write (i32.const 1) (i32.const 0) (i32.const 1) (i32.const 8)))
    ;; subscription at 128 (48 bytes): userdata 0, tag 0 (clock), clock id 1 (monotonic), timeout 1 h in ns
    (i32.store8 (i32.const 136) (i32.const 0))
    (i32.store (i32.const 144) (i32.const 1))
    (i64.store (i32.const 152) (i64.const 3600000000000))
    (i64.store (i32.const 160) (i64.const 1000000))
    (i32.store16 (i32.const 168) (i32.const 0))
    (loop $sleep
      (drop (call $poll_oneoff (i32.const 128) (i32.const 256) (i32.const 1) (i32.const 320)))
      (br $sleep))))
