#include "textflag.h"

// The constants of exp32 (unary.go), eight copies each (one ymm register).
DATA explog2e<>+0(SB)/4, $0x3fb8aa3b
DATA explog2e<>+4(SB)/4, $0x3fb8aa3b
DATA explog2e<>+8(SB)/4, $0x3fb8aa3b
DATA explog2e<>+12(SB)/4, $0x3fb8aa3b
DATA explog2e<>+16(SB)/4, $0x3fb8aa3b
DATA explog2e<>+20(SB)/4, $0x3fb8aa3b
DATA explog2e<>+24(SB)/4, $0x3fb8aa3b
DATA explog2e<>+28(SB)/4, $0x3fb8aa3b
GLOBL explog2e<>(SB), RODATA|NOPTR, $32
DATA expmagic<>+0(SB)/4, $0x4b400000
DATA expmagic<>+4(SB)/4, $0x4b400000
DATA expmagic<>+8(SB)/4, $0x4b400000
DATA expmagic<>+12(SB)/4, $0x4b400000
DATA expmagic<>+16(SB)/4, $0x4b400000
DATA expmagic<>+20(SB)/4, $0x4b400000
DATA expmagic<>+24(SB)/4, $0x4b400000
DATA expmagic<>+28(SB)/4, $0x4b400000
GLOBL expmagic<>(SB), RODATA|NOPTR, $32
DATA expln2hi<>+0(SB)/4, $0x3f318000
DATA expln2hi<>+4(SB)/4, $0x3f318000
DATA expln2hi<>+8(SB)/4, $0x3f318000
DATA expln2hi<>+12(SB)/4, $0x3f318000
DATA expln2hi<>+16(SB)/4, $0x3f318000
DATA expln2hi<>+20(SB)/4, $0x3f318000
DATA expln2hi<>+24(SB)/4, $0x3f318000
DATA expln2hi<>+28(SB)/4, $0x3f318000
GLOBL expln2hi<>(SB), RODATA|NOPTR, $32
DATA expln2lo<>+0(SB)/4, $0xb95e8083
DATA expln2lo<>+4(SB)/4, $0xb95e8083
DATA expln2lo<>+8(SB)/4, $0xb95e8083
DATA expln2lo<>+12(SB)/4, $0xb95e8083
DATA expln2lo<>+16(SB)/4, $0xb95e8083
DATA expln2lo<>+20(SB)/4, $0xb95e8083
DATA expln2lo<>+24(SB)/4, $0xb95e8083
DATA expln2lo<>+28(SB)/4, $0xb95e8083
GLOBL expln2lo<>(SB), RODATA|NOPTR, $32
DATA expc7<>+0(SB)/4, $0x39500d01
DATA expc7<>+4(SB)/4, $0x39500d01
DATA expc7<>+8(SB)/4, $0x39500d01
DATA expc7<>+12(SB)/4, $0x39500d01
DATA expc7<>+16(SB)/4, $0x39500d01
DATA expc7<>+20(SB)/4, $0x39500d01
DATA expc7<>+24(SB)/4, $0x39500d01
DATA expc7<>+28(SB)/4, $0x39500d01
GLOBL expc7<>(SB), RODATA|NOPTR, $32
DATA expc6<>+0(SB)/4, $0x3ab60b61
DATA expc6<>+4(SB)/4, $0x3ab60b61
DATA expc6<>+8(SB)/4, $0x3ab60b61
DATA expc6<>+12(SB)/4, $0x3ab60b61
DATA expc6<>+16(SB)/4, $0x3ab60b61
DATA expc6<>+20(SB)/4, $0x3ab60b61
DATA expc6<>+24(SB)/4, $0x3ab60b61
DATA expc6<>+28(SB)/4, $0x3ab60b61
GLOBL expc6<>(SB), RODATA|NOPTR, $32
DATA expc5<>+0(SB)/4, $0x3c088889
DATA expc5<>+4(SB)/4, $0x3c088889
DATA expc5<>+8(SB)/4, $0x3c088889
DATA expc5<>+12(SB)/4, $0x3c088889
DATA expc5<>+16(SB)/4, $0x3c088889
DATA expc5<>+20(SB)/4, $0x3c088889
DATA expc5<>+24(SB)/4, $0x3c088889
DATA expc5<>+28(SB)/4, $0x3c088889
GLOBL expc5<>(SB), RODATA|NOPTR, $32
DATA expc4<>+0(SB)/4, $0x3d2aaaab
DATA expc4<>+4(SB)/4, $0x3d2aaaab
DATA expc4<>+8(SB)/4, $0x3d2aaaab
DATA expc4<>+12(SB)/4, $0x3d2aaaab
DATA expc4<>+16(SB)/4, $0x3d2aaaab
DATA expc4<>+20(SB)/4, $0x3d2aaaab
DATA expc4<>+24(SB)/4, $0x3d2aaaab
DATA expc4<>+28(SB)/4, $0x3d2aaaab
GLOBL expc4<>(SB), RODATA|NOPTR, $32
DATA expc3<>+0(SB)/4, $0x3e2aaaab
DATA expc3<>+4(SB)/4, $0x3e2aaaab
DATA expc3<>+8(SB)/4, $0x3e2aaaab
DATA expc3<>+12(SB)/4, $0x3e2aaaab
DATA expc3<>+16(SB)/4, $0x3e2aaaab
DATA expc3<>+20(SB)/4, $0x3e2aaaab
DATA expc3<>+24(SB)/4, $0x3e2aaaab
DATA expc3<>+28(SB)/4, $0x3e2aaaab
GLOBL expc3<>(SB), RODATA|NOPTR, $32
DATA expc2<>+0(SB)/4, $0x3f000000
DATA expc2<>+4(SB)/4, $0x3f000000
DATA expc2<>+8(SB)/4, $0x3f000000
DATA expc2<>+12(SB)/4, $0x3f000000
DATA expc2<>+16(SB)/4, $0x3f000000
DATA expc2<>+20(SB)/4, $0x3f000000
DATA expc2<>+24(SB)/4, $0x3f000000
DATA expc2<>+28(SB)/4, $0x3f000000
GLOBL expc2<>(SB), RODATA|NOPTR, $32
DATA expone<>+0(SB)/4, $0x3f800000
DATA expone<>+4(SB)/4, $0x3f800000
DATA expone<>+8(SB)/4, $0x3f800000
DATA expone<>+12(SB)/4, $0x3f800000
DATA expone<>+16(SB)/4, $0x3f800000
DATA expone<>+20(SB)/4, $0x3f800000
DATA expone<>+24(SB)/4, $0x3f800000
DATA expone<>+28(SB)/4, $0x3f800000
GLOBL expone<>(SB), RODATA|NOPTR, $32
DATA expmaxarg<>+0(SB)/4, $0x42b17218
DATA expmaxarg<>+4(SB)/4, $0x42b17218
DATA expmaxarg<>+8(SB)/4, $0x42b17218
DATA expmaxarg<>+12(SB)/4, $0x42b17218
DATA expmaxarg<>+16(SB)/4, $0x42b17218
DATA expmaxarg<>+20(SB)/4, $0x42b17218
DATA expmaxarg<>+24(SB)/4, $0x42b17218
DATA expmaxarg<>+28(SB)/4, $0x42b17218
GLOBL expmaxarg<>(SB), RODATA|NOPTR, $32
DATA expminarg<>+0(SB)/4, $0xc2cff1b4
DATA expminarg<>+4(SB)/4, $0xc2cff1b4
DATA expminarg<>+8(SB)/4, $0xc2cff1b4
DATA expminarg<>+12(SB)/4, $0xc2cff1b4
DATA expminarg<>+16(SB)/4, $0xc2cff1b4
DATA expminarg<>+20(SB)/4, $0xc2cff1b4
DATA expminarg<>+24(SB)/4, $0xc2cff1b4
DATA expminarg<>+28(SB)/4, $0xc2cff1b4
GLOBL expminarg<>(SB), RODATA|NOPTR, $32
DATA expinf<>+0(SB)/4, $0x7f800000
DATA expinf<>+4(SB)/4, $0x7f800000
DATA expinf<>+8(SB)/4, $0x7f800000
DATA expinf<>+12(SB)/4, $0x7f800000
DATA expinf<>+16(SB)/4, $0x7f800000
DATA expinf<>+20(SB)/4, $0x7f800000
DATA expinf<>+24(SB)/4, $0x7f800000
DATA expinf<>+28(SB)/4, $0x7f800000
GLOBL expinf<>(SB), RODATA|NOPTR, $32
DATA expbias<>+0(SB)/4, $0x0000007f
DATA expbias<>+4(SB)/4, $0x0000007f
DATA expbias<>+8(SB)/4, $0x0000007f
DATA expbias<>+12(SB)/4, $0x0000007f
DATA expbias<>+16(SB)/4, $0x0000007f
DATA expbias<>+20(SB)/4, $0x0000007f
DATA expbias<>+24(SB)/4, $0x0000007f
DATA expbias<>+28(SB)/4, $0x0000007f
GLOBL expbias<>(SB), RODATA|NOPTR, $32

// func expAVX2(dst, src *float32, n int)
//
// dst[i] = exp32(src[i]) for n values, n a positive multiple of 8: the same float32
// operations in the same order as exp32 (multiply and add, not fused), so the results
// are bit-identical. Needs AVX2 (integer ops on ymm).
TEXT ·expAVX2(SB), NOSPLIT, $0-24
	MOVQ dst+0(FP), DI
	MOVQ src+8(FP), SI
	MOVQ n+16(FP), CX
	SHRQ $3, CX
loop:
	VMOVUPS (SI), Y0                      // x
	VMULPS explog2e<>(SB), Y0, Y1
	VADDPS expmagic<>(SB), Y1, Y1
	VSUBPS expmagic<>(SB), Y1, Y1         // n = round(x log2e)
	VMULPS expln2hi<>(SB), Y1, Y2
	VSUBPS Y2, Y0, Y2
	VMULPS expln2lo<>(SB), Y1, Y3
	VSUBPS Y3, Y2, Y2                     // r = x - n ln2hi - n ln2lo
	VMULPS expc7<>(SB), Y2, Y10           // p = r/5040
	VADDPS expc6<>(SB), Y10, Y10
	VMULPS Y10, Y2, Y10
	VADDPS expc5<>(SB), Y10, Y10
	VMULPS Y10, Y2, Y10
	VADDPS expc4<>(SB), Y10, Y10
	VMULPS Y10, Y2, Y10
	VADDPS expc3<>(SB), Y10, Y10
	VMULPS Y10, Y2, Y10
	VADDPS expc2<>(SB), Y10, Y10
	VMULPS Y10, Y2, Y10
	VADDPS expone<>(SB), Y10, Y10
	VMULPS Y10, Y2, Y10
	VADDPS expone<>(SB), Y10, Y10         // p = 1 + r(1 + r(1/2 + ...))
	VCVTTPS2DQ Y1, Y4                     // ni
	VPSRAD $1, Y4, Y5                     // half = ni >> 1
	VPSUBD Y5, Y4, Y7                     // ni - half
	VPADDD expbias<>(SB), Y5, Y6
	VPSLLD $23, Y6, Y6                    // 2^half
	VPADDD expbias<>(SB), Y7, Y7
	VPSLLD $23, Y7, Y7                    // 2^(ni-half)
	VMULPS Y6, Y10, Y10
	VMULPS Y7, Y10, Y10
	VMOVUPS expminarg<>(SB), Y8
	VCMPPS $0x11, Y8, Y0, Y9              // x < minarg (LT_OQ)
	VXORPS Y11, Y11, Y11
	VBLENDVPS Y9, Y11, Y10, Y10           // -> 0
	VMOVUPS expmaxarg<>(SB), Y8
	VCMPPS $0x1e, Y8, Y0, Y9              // x > maxarg (GT_OQ)
	VMOVUPS expinf<>(SB), Y11
	VBLENDVPS Y9, Y11, Y10, Y10           // -> +Inf
	VCMPPS $0x03, Y0, Y0, Y9              // x is NaN (UNORD_Q)
	VBLENDVPS Y9, Y0, Y10, Y10            // -> x
	VMOVUPS Y10, (DI)
	ADDQ $32, SI
	ADDQ $32, DI
	DECQ CX
	JNZ loop
	VZEROUPPER
	RET

// Constants of erfRun (unary.go), eight copies each (one zmm register).
DATA erfabs<>+0(SB)/8, $0x7fffffffffffffff
DATA erfabs<>+8(SB)/8, $0x7fffffffffffffff
DATA erfabs<>+16(SB)/8, $0x7fffffffffffffff
DATA erfabs<>+24(SB)/8, $0x7fffffffffffffff
DATA erfabs<>+32(SB)/8, $0x7fffffffffffffff
DATA erfabs<>+40(SB)/8, $0x7fffffffffffffff
DATA erfabs<>+48(SB)/8, $0x7fffffffffffffff
DATA erfabs<>+56(SB)/8, $0x7fffffffffffffff
GLOBL erfabs<>(SB), RODATA|NOPTR, $64
DATA erfsign<>+0(SB)/8, $0x8000000000000000
DATA erfsign<>+8(SB)/8, $0x8000000000000000
DATA erfsign<>+16(SB)/8, $0x8000000000000000
DATA erfsign<>+24(SB)/8, $0x8000000000000000
DATA erfsign<>+32(SB)/8, $0x8000000000000000
DATA erfsign<>+40(SB)/8, $0x8000000000000000
DATA erfsign<>+48(SB)/8, $0x8000000000000000
DATA erfsign<>+56(SB)/8, $0x8000000000000000
GLOBL erfsign<>(SB), RODATA|NOPTR, $64
DATA erfclamp<>+0(SB)/8, $0x400f800000000000
DATA erfclamp<>+8(SB)/8, $0x400f800000000000
DATA erfclamp<>+16(SB)/8, $0x400f800000000000
DATA erfclamp<>+24(SB)/8, $0x400f800000000000
DATA erfclamp<>+32(SB)/8, $0x400f800000000000
DATA erfclamp<>+40(SB)/8, $0x400f800000000000
DATA erfclamp<>+48(SB)/8, $0x400f800000000000
DATA erfclamp<>+56(SB)/8, $0x400f800000000000
GLOBL erfclamp<>(SB), RODATA|NOPTR, $64
DATA erfscale<>+0(SB)/8, $0x4010000000000000
DATA erfscale<>+8(SB)/8, $0x4010000000000000
DATA erfscale<>+16(SB)/8, $0x4010000000000000
DATA erfscale<>+24(SB)/8, $0x4010000000000000
DATA erfscale<>+32(SB)/8, $0x4010000000000000
DATA erfscale<>+40(SB)/8, $0x4010000000000000
DATA erfscale<>+48(SB)/8, $0x4010000000000000
DATA erfscale<>+56(SB)/8, $0x4010000000000000
GLOBL erfscale<>(SB), RODATA|NOPTR, $64
DATA erfscale2<>+0(SB)/8, $0x4020000000000000
DATA erfscale2<>+8(SB)/8, $0x4020000000000000
DATA erfscale2<>+16(SB)/8, $0x4020000000000000
DATA erfscale2<>+24(SB)/8, $0x4020000000000000
DATA erfscale2<>+32(SB)/8, $0x4020000000000000
DATA erfscale2<>+40(SB)/8, $0x4020000000000000
DATA erfscale2<>+48(SB)/8, $0x4020000000000000
DATA erfscale2<>+56(SB)/8, $0x4020000000000000
GLOBL erfscale2<>(SB), RODATA|NOPTR, $64
DATA erfone32<>+0(SB)/4, $1
DATA erfone32<>+4(SB)/4, $1
DATA erfone32<>+8(SB)/4, $1
DATA erfone32<>+12(SB)/4, $1
DATA erfone32<>+16(SB)/4, $1
DATA erfone32<>+20(SB)/4, $1
DATA erfone32<>+24(SB)/4, $1
DATA erfone32<>+28(SB)/4, $1
GLOBL erfone32<>(SB), RODATA|NOPTR, $32

// func erfAVX512(dst, src *float32, n int, table *float64)
//
// dst[i] = float32(erf(src[i])) for n values, n a positive multiple of 8, with the same
// float64 operations as erfRun (multiply then add, not fused): the per-lane polynomial
// coefficients are picked from the 16 segments with VPERMT2PD (table: erfDegree+1 rows
// of erfSegments float64, coefficient-major). Needs AVX512F.
TEXT ·erfAVX512(SB), NOSPLIT, $0-32
	MOVQ dst+0(FP), DI
	MOVQ src+8(FP), SI
	MOVQ n+16(FP), CX
	MOVQ table+24(FP), R8
	SHRQ $3, CX
	VMOVUPD erfclamp<>(SB), Z20
loop:
	VMOVUPS (SI), Y0
	VCVTPS2PD Y0, Z0                      // d
	VPANDQ erfabs<>(SB), Z0, Z1
	VMINPD Z1, Z20, Z1                    // a = min(|d|, clamp), NaN kept
	VMULPD erfscale<>(SB), Z1, Z2
	VCVTTPD2DQ Z2, Y3                     // s = int(a*erfScale)
	VPMOVZXDQ Y3, Z6                      // segment indices (low 4 bits used)
	VMULPD erfscale2<>(SB), Z1, Z4
	VPADDD Y3, Y3, Y5
	VPADDD erfone32<>(SB), Y5, Y5
	VCVTDQ2PD Y5, Z5
	VSUBPD Z5, Z4, Z4                     // t = a*2*erfScale - (2s+1)
	VMOVUPD 1408(R8), Z10
	VPERMT2PD 1472(R8), Z6, Z10     // g = c[11]
	VMOVUPD 1280(R8), Z11
	VPERMT2PD 1344(R8), Z6, Z11
	VMULPD Z4, Z10, Z10
	VADDPD Z11, Z10, Z10                 // g = g*t + c[10]
	VMOVUPD 1152(R8), Z11
	VPERMT2PD 1216(R8), Z6, Z11
	VMULPD Z4, Z10, Z10
	VADDPD Z11, Z10, Z10                 // g = g*t + c[9]
	VMOVUPD 1024(R8), Z11
	VPERMT2PD 1088(R8), Z6, Z11
	VMULPD Z4, Z10, Z10
	VADDPD Z11, Z10, Z10                 // g = g*t + c[8]
	VMOVUPD 896(R8), Z11
	VPERMT2PD 960(R8), Z6, Z11
	VMULPD Z4, Z10, Z10
	VADDPD Z11, Z10, Z10                 // g = g*t + c[7]
	VMOVUPD 768(R8), Z11
	VPERMT2PD 832(R8), Z6, Z11
	VMULPD Z4, Z10, Z10
	VADDPD Z11, Z10, Z10                 // g = g*t + c[6]
	VMOVUPD 640(R8), Z11
	VPERMT2PD 704(R8), Z6, Z11
	VMULPD Z4, Z10, Z10
	VADDPD Z11, Z10, Z10                 // g = g*t + c[5]
	VMOVUPD 512(R8), Z11
	VPERMT2PD 576(R8), Z6, Z11
	VMULPD Z4, Z10, Z10
	VADDPD Z11, Z10, Z10                 // g = g*t + c[4]
	VMOVUPD 384(R8), Z11
	VPERMT2PD 448(R8), Z6, Z11
	VMULPD Z4, Z10, Z10
	VADDPD Z11, Z10, Z10                 // g = g*t + c[3]
	VMOVUPD 256(R8), Z11
	VPERMT2PD 320(R8), Z6, Z11
	VMULPD Z4, Z10, Z10
	VADDPD Z11, Z10, Z10                 // g = g*t + c[2]
	VMOVUPD 128(R8), Z11
	VPERMT2PD 192(R8), Z6, Z11
	VMULPD Z4, Z10, Z10
	VADDPD Z11, Z10, Z10                 // g = g*t + c[1]
	VMOVUPD 0(R8), Z11
	VPERMT2PD 64(R8), Z6, Z11
	VMULPD Z4, Z10, Z10
	VADDPD Z11, Z10, Z10                 // g = g*t + c[0]
	VMULPD Z1, Z10, Z10                   // a*g
	VPANDQ erfsign<>(SB), Z0, Z8
	VPORQ Z8, Z10, Z10                    // copysign(a*g, d)
	VCVTPD2PS Z10, Y10
	VMOVUPS Y10, (DI)
	ADDQ $32, SI
	ADDQ $32, DI
	DECQ CX
	JNZ loop
	VZEROUPPER
	RET
