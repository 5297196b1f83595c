package elementwise

import (
	"fmt"
	"math"
)

// Where sets out[i] = onTrue[i] where cond[i], else onFalse[i]. cond has len(out) values;
// onTrue and onFalse have len(out) values or one (a scalar, used everywhere). out may be
// the same slice as onTrue or onFalse. workers is the number of goroutines to use (<= 0:
// GOMAXPROCS).
func Where(out []float32, cond []bool, onTrue, onFalse []float32, workers int) error {
	n := len(out)
	if len(cond) != n || (len(onTrue) != n && len(onTrue) != 1) || (len(onFalse) != n && len(onFalse) != 1) {
		return fmt.Errorf("elementwise: Where of %d conditions, %d and %d values into %d",
			len(cond), len(onTrue), len(onFalse), n)
	}
	if n == 0 {
		return nil
	}
	it := &iteration{outer: n}
	parallel(it, n, workers, func(start, end int) {
		t, f := onTrue, onFalse
		if len(t) == n {
			t = t[start:end]
		}
		if len(f) == n {
			f = f[start:end]
		}
		selectRun(out[start:end], cond[start:end], t, f)
	})
	return nil
}

// selectRun is Where on one chunk, without branches on the (often random) conditions: the
// choice is made on the values' bits with a mask.
func selectRun(dst []float32, cond []bool, t, f []float32) {
	cond = cond[:len(dst)]
	switch {
	case len(t) == len(dst) && len(f) == len(dst):
		for i, c := range cond {
			dst[i] = choose(c, math.Float32bits(t[i]), math.Float32bits(f[i]))
		}
	case len(t) == len(dst):
		fb := math.Float32bits(f[0])
		for i, c := range cond {
			dst[i] = choose(c, math.Float32bits(t[i]), fb)
		}
	case len(f) == len(dst):
		tb := math.Float32bits(t[0])
		for i, c := range cond {
			dst[i] = choose(c, tb, math.Float32bits(f[i]))
		}
	default:
		tb, fb := math.Float32bits(t[0]), math.Float32bits(f[0])
		for i, c := range cond {
			dst[i] = choose(c, tb, fb)
		}
	}
}

// choose returns the float32 of bits t if c, else of bits f, without a branch.
func choose(c bool, t, f uint32) float32 {
	var b uint32
	if c {
		b = 1
	}
	mask := -b // All ones when c.
	return math.Float32frombits(t&mask | f&^mask)
}
