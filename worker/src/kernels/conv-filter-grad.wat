;; Conv2DBackpropFilter for few input channels (the first layer of a conv net) on tfjs-backend-wasm's
;; heap: dW[kh, kw, c, f] = Σ_{n,i,j} x[n, i·SH + kh·DH − top, j·SW + kw·DW − left, c] · dy[n, i, j, f],
;; read straight from x (zero-padded first: pad_copy) and dy, no im2col, no transposes. Compiled to
;; dist/kernels/conv-filter-grad.wasm by scripts/build-wasm.mjs; conv-filter-grad-simd.ts drives it.
;;
;; f32x4 lanes run over filters (dy's rows are contiguous over f). One pass holds 3 taps × 8 filters
;; in 6 v128 accumulators (3 taps × 4 filters in 3 for the last 4 when F mod 8 = 4) and walks the
;; output pixels of a band of rows: per pixel three splatted x values and two dy vectors, 6 mul +
;; 6 add. (3 taps × 16 filters was no faster: V8 keeps 16 v128 values in registers at most, and
;; spilled 6 of those 12 accumulators to the stack every pixel.) Taps are
;; (kh, q) with q = kw·C + c over one kernel row, in threes; a missing third tap (FW·C not a multiple
;; of 3) reads any valid x and stores into $scratch. The bands (rows of every image, sized by the
;; caller so dy's band stays in L2) are visited once per tap triple and filter block.
(module
  (import "env" "memory" (memory 0))

  ;; xp[n, top + h, left + w, c] = x[n, h, w, c], 0 elsewhere (xp is N × Hp × Wp × C).
  (func (export "pad_copy")
    (param $x i32) (param $xp i32) (param $N i32) (param $H i32) (param $W i32) (param $C i32)
    (param $Hp i32) (param $Wp i32) (param $top i32) (param $left i32)
    (local $row i32) (local $prow i32) (local $n i32) (local $h i32) (local $dst i32)
    (local.set $row (i32.shl (i32.mul (local.get $W) (local.get $C)) (i32.const 2)))
    (local.set $prow (i32.shl (i32.mul (local.get $Wp) (local.get $C)) (i32.const 2)))
    (memory.fill (local.get $xp) (i32.const 0)
      (i32.mul (i32.mul (local.get $N) (local.get $Hp)) (local.get $prow)))
    (local.set $n (i32.const 0))
    (block $nEnd (loop $nLoop
      (br_if $nEnd (i32.ge_s (local.get $n) (local.get $N)))
      (local.set $dst (i32.add (local.get $xp)
        (i32.add (i32.mul (i32.add (i32.mul (local.get $n) (local.get $Hp)) (local.get $top)) (local.get $prow))
                 (i32.shl (i32.mul (local.get $left) (local.get $C)) (i32.const 2)))))
      (local.set $h (i32.const 0))
      (block $hEnd (loop $hLoop
        (br_if $hEnd (i32.ge_s (local.get $h) (local.get $H)))
        (memory.copy (local.get $dst) (local.get $x) (local.get $row))
        (local.set $x (i32.add (local.get $x) (local.get $row)))
        (local.set $dst (i32.add (local.get $dst) (local.get $prow)))
        (local.set $h (i32.add (local.get $h) (i32.const 1)))
        (br $hLoop)))
      (local.set $n (i32.add (local.get $n) (i32.const 1)))
      (br $nLoop)))
  )

  ;; dW (FH × FW × C × F, overwritten) from xp (N × Hp × Wp × C, every tap in bounds) and dy
  ;; (N × OH × OW × F). F % 4 == 0. $band: output rows per band (≥ 1). $scratch: 32 writable bytes.
  (func (export "conv_filter_grad")
    (param $xp i32) (param $dy i32) (param $dw i32) (param $scratch i32)
    (param $N i32) (param $OH i32) (param $OW i32) (param $F i32) (param $C i32)
    (param $FH i32) (param $FW i32) (param $SH i32) (param $SW i32) (param $DH i32) (param $DW i32)
    (param $Hp i32) (param $Wp i32) (param $band i32)
    (local $fbytes i32) (local $xrow i32) (local $xj i32) (local $xi i32) (local $stepj i32) (local $stepi i32)
    (local $drow i32) (local $Q i32) (local $n i32) (local $i0 i32) (local $i1 i32) (local $fb i32)
    (local $kh i32) (local $q i32) (local $t i32) (local $kw i32) (local $c i32) (local $off i32) (local $dst i32)
    (local $o0 i32) (local $o1 i32) (local $o2 i32) (local $d0 i32) (local $d1 i32) (local $d2 i32)
    (local $x0 i32) (local $p i32) (local $end i32) (local $i i32) (local $dimg i32)
    (local $s0 v128) (local $s1 v128) (local $s2 v128) (local $g v128)
    (local $a00 v128) (local $a01 v128) (local $a10 v128) (local $a11 v128) (local $a20 v128) (local $a21 v128)
    (local.set $fbytes (i32.shl (local.get $F) (i32.const 2)))
    (local.set $xrow (i32.shl (i32.mul (local.get $Wp) (local.get $C)) (i32.const 2)))
    (local.set $stepj (i32.shl (i32.mul (local.get $SW) (local.get $C)) (i32.const 2)))
    (local.set $stepi (i32.mul (local.get $SH) (local.get $xrow)))
    (local.set $drow (i32.mul (local.get $OW) (local.get $fbytes)))
    (local.set $Q (i32.mul (local.get $FW) (local.get $C)))
    (memory.fill (local.get $dw) (i32.const 0)
      (i32.mul (i32.mul (local.get $FH) (local.get $Q)) (local.get $fbytes)))
    (local.set $n (i32.const 0))
    (block $nEnd (loop $nLoop
      (br_if $nEnd (i32.ge_s (local.get $n) (local.get $N)))
      (local.set $dimg (i32.add (local.get $dy) (i32.mul (i32.mul (local.get $n) (local.get $OH)) (local.get $drow))))
      (local.set $i0 (i32.const 0))
      (block $bEnd (loop $bLoop
        (br_if $bEnd (i32.ge_s (local.get $i0) (local.get $OH)))
        (local.set $i1 (i32.add (local.get $i0) (local.get $band)))
        (if (i32.gt_s (local.get $i1) (local.get $OH)) (then (local.set $i1 (local.get $OH))))
        ;; x of output pixel (n, i0, 0), tap (0, 0, 0)
        (local.set $x0 (i32.add (local.get $xp)
          (i32.add (i32.mul (i32.mul (local.get $n) (local.get $Hp)) (local.get $xrow))
                   (i32.mul (local.get $i0) (local.get $stepi)))))
        (local.set $fb (i32.const 0))
        (block $fEnd (loop $fLoop
          (br_if $fEnd (i32.ge_s (local.get $fb) (local.get $fbytes)))
          (local.set $kh (i32.const 0))
          (block $khEnd (loop $khLoop
            (br_if $khEnd (i32.ge_s (local.get $kh) (local.get $FH)))
            (local.set $q (i32.const 0))
            (block $qEnd (loop $qLoop
              (br_if $qEnd (i32.ge_s (local.get $q) (local.get $Q)))
              ;; the three taps: x offset from the pixel's tap (0, 0, 0) and dW destination
              (local.set $t (i32.const 0))
              (block $tEnd (loop $tLoop
                (local.set $kw (i32.div_u (i32.add (local.get $q) (local.get $t)) (local.get $C)))
                (local.set $c (i32.rem_u (i32.add (local.get $q) (local.get $t)) (local.get $C)))
                (if (i32.lt_s (i32.add (local.get $q) (local.get $t)) (local.get $Q))
                  (then
                    (local.set $off (i32.add (i32.mul (i32.mul (local.get $kh) (local.get $DH)) (local.get $xrow))
                      (i32.shl (i32.add (i32.mul (i32.mul (local.get $kw) (local.get $DW)) (local.get $C)) (local.get $c)) (i32.const 2))))
                    (local.set $dst (i32.add (i32.add (local.get $dw) (local.get $fb))
                      (i32.mul (i32.add (i32.mul (local.get $kh) (local.get $Q)) (i32.add (local.get $q) (local.get $t))) (local.get $fbytes)))))
                  (else
                    (local.set $off (local.get $o0))
                    (local.set $dst (local.get $scratch))))
                (if (i32.eqz (local.get $t)) (then (local.set $o0 (local.get $off)) (local.set $d0 (local.get $dst))))
                (if (i32.eq (local.get $t) (i32.const 1)) (then (local.set $o1 (local.get $off)) (local.set $d1 (local.get $dst))))
                (if (i32.eq (local.get $t) (i32.const 2)) (then (local.set $o2 (local.get $off)) (local.set $d2 (local.get $dst))))
                (local.set $t (i32.add (local.get $t) (i32.const 1)))
                (br_if $tLoop (i32.lt_s (local.get $t) (i32.const 3)))))
              (local.set $o0 (i32.add (local.get $o0) (local.get $x0)))
              (local.set $o1 (i32.add (local.get $o1) (local.get $x0)))
              (local.set $o2 (i32.add (local.get $o2) (local.get $x0)))
              (local.set $a00 (v128.const i32x4 0 0 0 0)) (local.set $a01 (v128.const i32x4 0 0 0 0))
              (local.set $a10 (v128.const i32x4 0 0 0 0)) (local.set $a11 (v128.const i32x4 0 0 0 0))
              (local.set $a20 (v128.const i32x4 0 0 0 0)) (local.set $a21 (v128.const i32x4 0 0 0 0))
              (local.set $i (local.get $i0))
              (if (i32.le_s (i32.add (local.get $fb) (i32.const 32)) (local.get $fbytes))
                (then
                  ;; 8 filters: a<tap><vector>
                  (loop $iLoop
                    (local.set $p (i32.add (i32.add (local.get $dimg) (i32.mul (local.get $i) (local.get $drow))) (local.get $fb)))
                    (local.set $end (i32.add (local.get $p) (local.get $drow)))
                    (local.set $xj (i32.mul (i32.sub (local.get $i) (local.get $i0)) (local.get $stepi)))
                    (loop $jLoop
                      (local.set $s0 (v128.load32_splat (i32.add (local.get $o0) (local.get $xj))))
                      (local.set $s1 (v128.load32_splat (i32.add (local.get $o1) (local.get $xj))))
                      (local.set $s2 (v128.load32_splat (i32.add (local.get $o2) (local.get $xj))))
                      (local.set $g (v128.load (local.get $p)))
                      (local.set $a00 (f32x4.add (local.get $a00) (f32x4.mul (local.get $g) (local.get $s0))))
                      (local.set $a10 (f32x4.add (local.get $a10) (f32x4.mul (local.get $g) (local.get $s1))))
                      (local.set $a20 (f32x4.add (local.get $a20) (f32x4.mul (local.get $g) (local.get $s2))))
                      (local.set $g (v128.load offset=16 (local.get $p)))
                      (local.set $a01 (f32x4.add (local.get $a01) (f32x4.mul (local.get $g) (local.get $s0))))
                      (local.set $a11 (f32x4.add (local.get $a11) (f32x4.mul (local.get $g) (local.get $s1))))
                      (local.set $a21 (f32x4.add (local.get $a21) (f32x4.mul (local.get $g) (local.get $s2))))
                      (local.set $xj (i32.add (local.get $xj) (local.get $stepj)))
                      (local.set $p (i32.add (local.get $p) (local.get $fbytes)))
                      (br_if $jLoop (i32.lt_u (local.get $p) (local.get $end))))
                    (local.set $i (i32.add (local.get $i) (i32.const 1)))
                    (br_if $iLoop (i32.lt_s (local.get $i) (local.get $i1))))
                  (v128.store (local.get $d0) (f32x4.add (v128.load (local.get $d0)) (local.get $a00)))
                  (v128.store offset=16 (local.get $d0) (f32x4.add (v128.load offset=16 (local.get $d0)) (local.get $a01)))
                  (v128.store (local.get $d1) (f32x4.add (v128.load (local.get $d1)) (local.get $a10)))
                  (v128.store offset=16 (local.get $d1) (f32x4.add (v128.load offset=16 (local.get $d1)) (local.get $a11)))
                  (v128.store (local.get $d2) (f32x4.add (v128.load (local.get $d2)) (local.get $a20)))
                  (v128.store offset=16 (local.get $d2) (f32x4.add (v128.load offset=16 (local.get $d2)) (local.get $a21))))
                (else
                  ;; the last 4 filters (F mod 8 = 4)
                  (loop $iLoop4
                    (local.set $p (i32.add (i32.add (local.get $dimg) (i32.mul (local.get $i) (local.get $drow))) (local.get $fb)))
                    (local.set $end (i32.add (local.get $p) (local.get $drow)))
                    (local.set $xj (i32.mul (i32.sub (local.get $i) (local.get $i0)) (local.get $stepi)))
                    (loop $jLoop4
                      (local.set $g (v128.load (local.get $p)))
                      (local.set $a00 (f32x4.add (local.get $a00)
                        (f32x4.mul (local.get $g) (v128.load32_splat (i32.add (local.get $o0) (local.get $xj))))))
                      (local.set $a10 (f32x4.add (local.get $a10)
                        (f32x4.mul (local.get $g) (v128.load32_splat (i32.add (local.get $o1) (local.get $xj))))))
                      (local.set $a20 (f32x4.add (local.get $a20)
                        (f32x4.mul (local.get $g) (v128.load32_splat (i32.add (local.get $o2) (local.get $xj))))))
                      (local.set $xj (i32.add (local.get $xj) (local.get $stepj)))
                      (local.set $p (i32.add (local.get $p) (local.get $fbytes)))
                      (br_if $jLoop4 (i32.lt_u (local.get $p) (local.get $end))))
                    (local.set $i (i32.add (local.get $i) (i32.const 1)))
                    (br_if $iLoop4 (i32.lt_s (local.get $i) (local.get $i1))))
                  (v128.store (local.get $d0) (f32x4.add (v128.load (local.get $d0)) (local.get $a00)))
                  (v128.store (local.get $d1) (f32x4.add (v128.load (local.get $d1)) (local.get $a10)))
                  (v128.store (local.get $d2) (f32x4.add (v128.load (local.get $d2)) (local.get $a20)))))
              (local.set $q (i32.add (local.get $q) (i32.const 3)))
              (br $qLoop)))
            (local.set $kh (i32.add (local.get $kh) (i32.const 1)))
            (br $khLoop)))
          (if (i32.le_s (i32.add (local.get $fb) (i32.const 32)) (local.get $fbytes))
            (then (local.set $fb (i32.add (local.get $fb) (i32.const 32))))
            (else (local.set $fb (i32.add (local.get $fb) (i32.const 16)))))
          (br $fLoop)))
        (local.set $i0 (local.get $i1))
        (br $bLoop)))
      (local.set $n (i32.add (local.get $n) (i32.const 1)))
      (br $nLoop)))
  )
)
