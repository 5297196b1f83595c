#include "textflag.h"

// Element-wise float32 loops over 32 values (four ymm registers) per iteration; the
// callers handle the remainder. n is a positive multiple of 32. AVX only.
//
// VV(name, op): dst[i] = a[i] op b[i]
// VS(name, op): dst[i] = a[i] op s
// SV(name, op): dst[i] = s op b[i]

#define VV(NAME, OP) \
TEXT NAME(SB), NOSPLIT, $0-32 \
	MOVQ dst+0(FP), DI \
	MOVQ a+8(FP), SI \
	MOVQ b+16(FP), DX \
	MOVQ n+24(FP), CX \
	SHRQ $5, CX \
loop: \
	VMOVUPS 0(SI), Y0 \
	VMOVUPS 32(SI), Y1 \
	VMOVUPS 64(SI), Y2 \
	VMOVUPS 96(SI), Y3 \
	OP 0(DX), Y0, Y0 \
	OP 32(DX), Y1, Y1 \
	OP 64(DX), Y2, Y2 \
	OP 96(DX), Y3, Y3 \
	VMOVUPS Y0, 0(DI) \
	VMOVUPS Y1, 32(DI) \
	VMOVUPS Y2, 64(DI) \
	VMOVUPS Y3, 96(DI) \
	ADDQ $128, SI \
	ADDQ $128, DX \
	ADDQ $128, DI \
	DECQ CX \
	JNZ loop \
	VZEROUPPER \
	RET

#define VS(NAME, OP) \
TEXT NAME(SB), NOSPLIT, $0-32 \
	MOVQ dst+0(FP), DI \
	MOVQ a+8(FP), SI \
	VBROADCASTSS s+16(FP), Y15 \
	MOVQ n+24(FP), CX \
	SHRQ $5, CX \
loop: \
	VMOVUPS 0(SI), Y0 \
	VMOVUPS 32(SI), Y1 \
	VMOVUPS 64(SI), Y2 \
	VMOVUPS 96(SI), Y3 \
	OP Y15, Y0, Y0 \
	OP Y15, Y1, Y1 \
	OP Y15, Y2, Y2 \
	OP Y15, Y3, Y3 \
	VMOVUPS Y0, 0(DI) \
	VMOVUPS Y1, 32(DI) \
	VMOVUPS Y2, 64(DI) \
	VMOVUPS Y3, 96(DI) \
	ADDQ $128, SI \
	ADDQ $128, DI \
	DECQ CX \
	JNZ loop \
	VZEROUPPER \
	RET

#define SV(NAME, OP) \
TEXT NAME(SB), NOSPLIT, $0-32 \
	MOVQ dst+0(FP), DI \
	VBROADCASTSS s+8(FP), Y15 \
	MOVQ b+16(FP), DX \
	MOVQ n+24(FP), CX \
	SHRQ $5, CX \
loop: \
	OP 0(DX), Y15, Y0 \
	OP 32(DX), Y15, Y1 \
	OP 64(DX), Y15, Y2 \
	OP 96(DX), Y15, Y3 \
	VMOVUPS Y0, 0(DI) \
	VMOVUPS Y1, 32(DI) \
	VMOVUPS Y2, 64(DI) \
	VMOVUPS Y3, 96(DI) \
	ADDQ $128, DX \
	ADDQ $128, DI \
	DECQ CX \
	JNZ loop \
	VZEROUPPER \
	RET

// func addVV(dst, a, b *float32, n int)
VV(·addVV, VADDPS)

// func addVS(dst, a *float32, s float32, n int)
VS(·addVS, VADDPS)

// func addSV(dst *float32, s float32, b *float32, n int)
SV(·addSV, VADDPS)

// func subVV(dst, a, b *float32, n int)
VV(·subVV, VSUBPS)

// func subVS(dst, a *float32, s float32, n int)
VS(·subVS, VSUBPS)

// func subSV(dst *float32, s float32, b *float32, n int)
SV(·subSV, VSUBPS)

// func mulVV(dst, a, b *float32, n int)
VV(·mulVV, VMULPS)

// func mulVS(dst, a *float32, s float32, n int)
VS(·mulVS, VMULPS)

// func mulSV(dst *float32, s float32, b *float32, n int)
SV(·mulSV, VMULPS)

// func divVV(dst, a, b *float32, n int)
VV(·divVV, VDIVPS)

// func divVS(dst, a *float32, s float32, n int)
VS(·divVS, VDIVPS)

// func divSV(dst *float32, s float32, b *float32, n int)
SV(·divSV, VDIVPS)

// func fillAVX(dst *float32, v float32, n int)
//
// dst[i] = v for n values, n a positive multiple of 32: four ymm stores per iteration.
TEXT ·fillAVX(SB), NOSPLIT, $0-24
	MOVQ dst+0(FP), DI
	VBROADCASTSS v+8(FP), Y0
	MOVQ n+16(FP), CX
	SHRQ $5, CX
fill:
	VMOVUPS Y0, (DI)
	VMOVUPS Y0, 32(DI)
	VMOVUPS Y0, 64(DI)
	VMOVUPS Y0, 96(DI)
	ADDQ $128, DI
	DECQ CX
	JNZ fill
	VZEROUPPER
	RET
