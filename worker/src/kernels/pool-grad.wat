;; MaxPoolGrad and AvgPoolGrad for the wasm backend: f32x4 loops over the channel axis of NHWC
;; float32 tensors that live on tfjs-backend-wasm's heap. The module imports that backend's own
;; WebAssembly.Memory, so x, dy and dx are read and written in place (pool-grad-simd.ts passes their
;; byte offsets). Compiled to dist/kernels/pool-grad.wasm by scripts/build-wasm.mjs (wabt).
;;
;; Both need C % 4 == 0 (the caller runs its JS loop otherwise). Window geometry as in
;; tf.backend_util.computePool2DInfo: output (i, j) covers rows i·SH − top … + FH − 1 and columns
;; j·SW − left … + FW − 1; taps outside the image (padding) are skipped.
;;
;; acc = 0: windows do not overlap (SH >= FH, SW >= FW): each in-bounds tap is stored exactly once,
;;          and zero_uncovered zeroes the pixels no window covers.
;; acc = 1: dx is zero on entry and every window adds into it.
(module
  (import "env" "memory" (memory 0))

  ;; MaxPoolGrad: dy goes to each window's FIRST maximum in row-major window order, as in
  ;; tfjs-backend-cpu: a tap wins when x > the best so far (strict, so NaN and -inf never win; a
  ;; window with no winner drops its dy).
  (func (export "max_pool_grad")
    (param $x i32) (param $dy i32) (param $dx i32)
    (param $N i32) (param $H i32) (param $W i32) (param $C i32) (param $OH i32) (param $OW i32)
    (param $FH i32) (param $FW i32) (param $SH i32) (param $SW i32) (param $top i32) (param $left i32)
    (param $acc i32)
    (local $pix i32) (local $row i32) (local $img i32) (local $n i32) (local $i i32) (local $j i32)
    (local $hs i32) (local $he i32) (local $ws i32) (local $we i32) (local $h0 i32) (local $w0 i32)
    (local $win i32) (local $c i32) (local $p i32) (local $q i32) (local $h i32) (local $w i32)
    (local $k i32) (local $end i32)
    (local $best v128) (local $idx v128) (local $v v128) (local $g v128) (local $d v128)
    (local $m0 v128) (local $m1 v128) (local $m2 v128) (local $m3 v128)
    (local.set $pix (i32.shl (local.get $C) (i32.const 2)))
    (local.set $row (i32.mul (local.get $W) (local.get $pix)))
    (local.set $img (i32.mul (local.get $H) (local.get $row)))
    (local.set $n (i32.const 0))
    (block $nEnd (loop $nLoop
      (br_if $nEnd (i32.ge_s (local.get $n) (local.get $N)))
      (local.set $i (i32.const 0))
      (block $iEnd (loop $iLoop
        (br_if $iEnd (i32.ge_s (local.get $i) (local.get $OH)))
        (local.set $h0 (i32.sub (i32.mul (local.get $i) (local.get $SH)) (local.get $top)))
        (local.set $hs (select (local.get $h0) (i32.const 0) (i32.gt_s (local.get $h0) (i32.const 0))))
        (local.set $he (i32.add (local.get $h0) (local.get $FH)))
        (local.set $he (select (local.get $he) (local.get $H) (i32.lt_s (local.get $he) (local.get $H))))
        (local.set $j (i32.const 0))
        (block $jEnd (loop $jLoop
          (br_if $jEnd (i32.ge_s (local.get $j) (local.get $OW)))
          (local.set $w0 (i32.sub (i32.mul (local.get $j) (local.get $SW)) (local.get $left)))
          (local.set $ws (select (local.get $w0) (i32.const 0) (i32.gt_s (local.get $w0) (i32.const 0))))
          (local.set $we (i32.add (local.get $w0) (local.get $FW)))
          (local.set $we (select (local.get $we) (local.get $W) (i32.lt_s (local.get $we) (local.get $W))))
          ;; byte offset of the window's first in-bounds pixel, in x and in dx
          (local.set $win (i32.add (i32.mul (local.get $n) (local.get $img))
            (i32.add (i32.mul (local.get $hs) (local.get $row)) (i32.mul (local.get $ws) (local.get $pix)))))
          (if (i32.and (i32.eqz (local.get $acc))
                (i32.and (i32.eq (i32.sub (local.get $he) (local.get $hs)) (i32.const 2))
                         (i32.eq (i32.sub (local.get $we) (local.get $ws)) (i32.const 2))))
            (then
              ;; A whole 2×2 window, stored once. Taps 0 1 / 2 3; m_k = "tap k beats the best of the
              ;; taps before it", best = pmax(best, v) = (best < v ? v : best), the same strict test.
              (local.set $p (i32.add (local.get $x) (local.get $win)))
              (local.set $q (i32.add (local.get $dx) (local.get $win)))
              (local.set $c (local.get $dy))
              (local.set $end (i32.add (local.get $dy) (local.get $pix)))
              (loop $fLoop
                (local.set $v (v128.load (local.get $p)))
                (local.set $m0 (f32x4.gt (local.get $v) (v128.const f32x4 -inf -inf -inf -inf)))
                (local.set $best (f32x4.pmax (v128.const f32x4 -inf -inf -inf -inf) (local.get $v)))
                (local.set $v (v128.load (i32.add (local.get $p) (local.get $pix))))
                (local.set $m1 (f32x4.gt (local.get $v) (local.get $best)))
                (local.set $best (f32x4.pmax (local.get $best) (local.get $v)))
                (local.set $v (v128.load (i32.add (local.get $p) (local.get $row))))
                (local.set $m2 (f32x4.gt (local.get $v) (local.get $best)))
                (local.set $best (f32x4.pmax (local.get $best) (local.get $v)))
                (local.set $v (v128.load (i32.add (i32.add (local.get $p) (local.get $row)) (local.get $pix))))
                (local.set $m3 (f32x4.gt (local.get $v) (local.get $best)))
                ;; tap k wins when it beat the best and no later tap did: peel g from the last tap back
                (local.set $g (v128.load (local.get $c)))
                (v128.store (i32.add (i32.add (local.get $q) (local.get $row)) (local.get $pix))
                  (v128.and (local.get $g) (local.get $m3)))
                (local.set $g (v128.andnot (local.get $g) (local.get $m3)))
                (v128.store (i32.add (local.get $q) (local.get $row)) (v128.and (local.get $g) (local.get $m2)))
                (local.set $g (v128.andnot (local.get $g) (local.get $m2)))
                (v128.store (i32.add (local.get $q) (local.get $pix)) (v128.and (local.get $g) (local.get $m1)))
                (local.set $g (v128.andnot (local.get $g) (local.get $m1)))
                (v128.store (local.get $q) (v128.and (local.get $g) (local.get $m0)))
                (local.set $p (i32.add (local.get $p) (i32.const 16)))
                (local.set $q (i32.add (local.get $q) (i32.const 16)))
                (local.set $c (i32.add (local.get $c) (i32.const 16)))
                (br_if $fLoop (i32.lt_u (local.get $c) (local.get $end)))))
            (else
              ;; Any window: per 4 channels, pass 1 finds the best value and the index k of its first
              ;; tap (in-bounds taps in row-major order, -1 = none), pass 2 hands dy to tap k.
              (local.set $c (i32.const 0))
              (block $cEnd (loop $cLoop
                (br_if $cEnd (i32.ge_s (local.get $c) (local.get $pix)))
                (local.set $best (v128.const f32x4 -inf -inf -inf -inf))
                (local.set $idx (v128.const i32x4 -1 -1 -1 -1))
                (local.set $k (i32.const 0))
                (local.set $p (i32.add (local.get $x) (i32.add (local.get $win) (local.get $c))))
                (local.set $h (local.get $hs))
                (block $h1End (loop $h1Loop
                  (br_if $h1End (i32.ge_s (local.get $h) (local.get $he)))
                  (local.set $q (local.get $p))
                  (local.set $w (local.get $ws))
                  (block $w1End (loop $w1Loop
                    (br_if $w1End (i32.ge_s (local.get $w) (local.get $we)))
                    (local.set $v (v128.load (local.get $q)))
                    (local.set $m0 (f32x4.gt (local.get $v) (local.get $best)))
                    (local.set $best (f32x4.pmax (local.get $best) (local.get $v)))
                    (local.set $idx (v128.bitselect (i32x4.splat (local.get $k)) (local.get $idx) (local.get $m0)))
                    (local.set $k (i32.add (local.get $k) (i32.const 1)))
                    (local.set $q (i32.add (local.get $q) (local.get $pix)))
                    (local.set $w (i32.add (local.get $w) (i32.const 1)))
                    (br $w1Loop)))
                  (local.set $p (i32.add (local.get $p) (local.get $row)))
                  (local.set $h (i32.add (local.get $h) (i32.const 1)))
                  (br $h1Loop)))
                (local.set $g (v128.load (i32.add (local.get $dy) (local.get $c))))
                (local.set $k (i32.const 0))
                (local.set $p (i32.add (local.get $dx) (i32.add (local.get $win) (local.get $c))))
                (local.set $h (local.get $hs))
                (block $h2End (loop $h2Loop
                  (br_if $h2End (i32.ge_s (local.get $h) (local.get $he)))
                  (local.set $q (local.get $p))
                  (local.set $w (local.get $ws))
                  (block $w2End (loop $w2Loop
                    (br_if $w2End (i32.ge_s (local.get $w) (local.get $we)))
                    (local.set $d (v128.and (local.get $g) (i32x4.eq (local.get $idx) (i32x4.splat (local.get $k)))))
                    (if (local.get $acc) (then (local.set $d (f32x4.add (v128.load (local.get $q)) (local.get $d)))))
                    (v128.store (local.get $q) (local.get $d))
                    (local.set $k (i32.add (local.get $k) (i32.const 1)))
                    (local.set $q (i32.add (local.get $q) (local.get $pix)))
                    (local.set $w (i32.add (local.get $w) (i32.const 1)))
                    (br $w2Loop)))
                  (local.set $p (i32.add (local.get $p) (local.get $row)))
                  (local.set $h (i32.add (local.get $h) (i32.const 1)))
                  (br $h2Loop)))
                (local.set $c (i32.add (local.get $c) (i32.const 16)))
                (br $cLoop)))))
          (local.set $dy (i32.add (local.get $dy) (local.get $pix)))
          (local.set $j (i32.add (local.get $j) (i32.const 1)))
          (br $jLoop)))
        (local.set $i (i32.add (local.get $i) (i32.const 1)))
        (br $iLoop)))
      (local.set $n (i32.add (local.get $n) (i32.const 1)))
      (br $nLoop)))
  )

  ;; AvgPoolGrad: every in-bounds tap of a window gets dy · scale (scale = 1 / (FH·FW), the full
  ;; window, as tfjs-backend-cpu and -wasm divide).
  (func (export "avg_pool_grad")
    (param $dy i32) (param $dx i32)
    (param $N i32) (param $H i32) (param $W i32) (param $C i32) (param $OH i32) (param $OW i32)
    (param $FH i32) (param $FW i32) (param $SH i32) (param $SW i32) (param $top i32) (param $left i32)
    (param $scale f32) (param $acc i32)
    (local $pix i32) (local $row i32) (local $img i32) (local $n i32) (local $i i32) (local $j i32)
    (local $hs i32) (local $he i32) (local $ws i32) (local $we i32) (local $h0 i32) (local $w0 i32)
    (local $p i32) (local $q i32) (local $h i32) (local $w i32) (local $c i32)
    (local $s v128)
    (local.set $s (f32x4.splat (local.get $scale)))
    (local.set $pix (i32.shl (local.get $C) (i32.const 2)))
    (local.set $row (i32.mul (local.get $W) (local.get $pix)))
    (local.set $img (i32.mul (local.get $H) (local.get $row)))
    (local.set $n (i32.const 0))
    (block $nEnd (loop $nLoop
      (br_if $nEnd (i32.ge_s (local.get $n) (local.get $N)))
      (local.set $i (i32.const 0))
      (block $iEnd (loop $iLoop
        (br_if $iEnd (i32.ge_s (local.get $i) (local.get $OH)))
        (local.set $h0 (i32.sub (i32.mul (local.get $i) (local.get $SH)) (local.get $top)))
        (local.set $hs (select (local.get $h0) (i32.const 0) (i32.gt_s (local.get $h0) (i32.const 0))))
        (local.set $he (i32.add (local.get $h0) (local.get $FH)))
        (local.set $he (select (local.get $he) (local.get $H) (i32.lt_s (local.get $he) (local.get $H))))
        (local.set $j (i32.const 0))
        (block $jEnd (loop $jLoop
          (br_if $jEnd (i32.ge_s (local.get $j) (local.get $OW)))
          (local.set $w0 (i32.sub (i32.mul (local.get $j) (local.get $SW)) (local.get $left)))
          (local.set $ws (select (local.get $w0) (i32.const 0) (i32.gt_s (local.get $w0) (i32.const 0))))
          (local.set $we (i32.add (local.get $w0) (local.get $FW)))
          (local.set $we (select (local.get $we) (local.get $W) (i32.lt_s (local.get $we) (local.get $W))))
          ;; $p: the window's first in-bounds pixel in dx
          (local.set $p (i32.add (i32.add (local.get $dx) (i32.mul (local.get $n) (local.get $img)))
            (i32.add (i32.mul (local.get $hs) (local.get $row)) (i32.mul (local.get $ws) (local.get $pix)))))
          (local.set $h (local.get $hs))
          (block $hEnd (loop $hLoop
            (br_if $hEnd (i32.ge_s (local.get $h) (local.get $he)))
            (local.set $q (local.get $p))
            (local.set $w (local.get $ws))
            (block $wEnd (loop $wLoop
              (br_if $wEnd (i32.ge_s (local.get $w) (local.get $we)))
              (local.set $c (i32.const 0))
              (if (local.get $acc)
                (then
                  (loop $aLoop
                    (v128.store (i32.add (local.get $q) (local.get $c))
                      (f32x4.add (v128.load (i32.add (local.get $q) (local.get $c)))
                                 (f32x4.mul (v128.load (i32.add (local.get $dy) (local.get $c))) (local.get $s))))
                    (local.set $c (i32.add (local.get $c) (i32.const 16)))
                    (br_if $aLoop (i32.lt_s (local.get $c) (local.get $pix)))))
                (else
                  (loop $sLoop
                    (v128.store (i32.add (local.get $q) (local.get $c))
                      (f32x4.mul (v128.load (i32.add (local.get $dy) (local.get $c))) (local.get $s)))
                    (local.set $c (i32.add (local.get $c) (i32.const 16)))
                    (br_if $sLoop (i32.lt_s (local.get $c) (local.get $pix))))))
              (local.set $q (i32.add (local.get $q) (local.get $pix)))
              (local.set $w (i32.add (local.get $w) (i32.const 1)))
              (br $wLoop)))
            (local.set $p (i32.add (local.get $p) (local.get $row)))
            (local.set $h (i32.add (local.get $h) (i32.const 1)))
            (br $hLoop)))
          (local.set $dy (i32.add (local.get $dy) (local.get $pix)))
          (local.set $j (i32.add (local.get $j) (i32.const 1)))
          (br $jLoop)))
        (local.set $i (i32.add (local.get $i) (i32.const 1)))
        (br $iLoop)))
      (local.set $n (i32.add (local.get $n) (i32.const 1)))
      (br $nLoop)))
  )
  ;; With non-overlapping windows (FH <= SH, FW <= SW): zero the pixels of dx that no window covers.
  ;; Row h is covered when t = h + top lies in a window: t < OH·SH and t mod SH < FH (top >= 0);
  ;; columns likewise. $cols = 0: every column is covered, only whole rows are zeroed.
  (func (export "zero_uncovered")
    (param $dx i32) (param $N i32) (param $H i32) (param $W i32) (param $C i32) (param $OH i32) (param $OW i32)
    (param $FH i32) (param $FW i32) (param $SH i32) (param $SW i32) (param $top i32) (param $left i32)
    (param $cols i32)
    (local $pix i32) (local $row i32) (local $p i32) (local $n i32) (local $h i32) (local $w i32) (local $t i32)
    (local.set $pix (i32.shl (local.get $C) (i32.const 2)))
    (local.set $row (i32.mul (local.get $W) (local.get $pix)))
    (local.set $p (local.get $dx))
    (local.set $n (i32.const 0))
    (block $nEnd (loop $nLoop
      (br_if $nEnd (i32.ge_s (local.get $n) (local.get $N)))
      (local.set $h (i32.const 0))
      (block $hEnd (loop $hLoop
        (br_if $hEnd (i32.ge_s (local.get $h) (local.get $H)))
        (local.set $t (i32.add (local.get $h) (local.get $top)))
        (if (i32.and (i32.lt_s (local.get $t) (i32.mul (local.get $OH) (local.get $SH)))
                     (i32.lt_s (i32.rem_s (local.get $t) (local.get $SH)) (local.get $FH)))
          (then
            (if (local.get $cols)
              (then
                (local.set $w (i32.const 0))
                (block $wEnd (loop $wLoop
                  (br_if $wEnd (i32.ge_s (local.get $w) (local.get $W)))
                  (local.set $t (i32.add (local.get $w) (local.get $left)))
                  (if (i32.eqz (i32.and (i32.lt_s (local.get $t) (i32.mul (local.get $OW) (local.get $SW)))
                                        (i32.lt_s (i32.rem_s (local.get $t) (local.get $SW)) (local.get $FW))))
                    (then (memory.fill (i32.add (local.get $p) (i32.mul (local.get $w) (local.get $pix)))
                                       (i32.const 0) (local.get $pix))))
                  (local.set $w (i32.add (local.get $w) (i32.const 1)))
                  (br $wLoop))))))
          (else (memory.fill (local.get $p) (i32.const 0) (local.get $row))))
        (local.set $p (i32.add (local.get $p) (local.get $row)))
        (local.set $h (i32.add (local.get $h) (i32.const 1)))
        (br $hLoop)))
      (local.set $n (i32.add (local.get $n) (i32.const 1)))
      (br $nLoop)))
  )
)
