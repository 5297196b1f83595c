package pyport

import "math/bits"

// Mersenne Twister MT19937 parameters, as in CPython's Modules/_randommodule.c.
const (
	pyMTN         = 624
	pyMTM         = 397
	pyMTMatrixA   = 0x9908b0df
	pyMTUpperMask = 0x80000000
	pyMTLowerMask = 0x7fffffff
)

// Random reproduces CPython's random.Random for the methods WebShop uses.
//
// Seeded with the same non-negative integer, it returns exactly the values
// CPython 3.11 returns for the corresponding calls, so that sequences such as
// WebShop's goal order (random.seed(233); random.shuffle(goals)) can be
// reproduced. Methods that take a length n stand for calls on a sequence of
// that length and return indices into it. A Random is not safe for
// concurrent use.
type Random struct {
	mt    [pyMTN]uint32
	index int
}

// NewRandom returns a generator seeded like random.seed(seed) for a
// non-negative int seed: MT19937's init_by_array with the seed's 32-bit
// words, least significant first (one word for seeds below 2**32, including
// 0, and two otherwise).
func NewRandom(seed uint64) *Random {
	r := &Random{}
	if seed>>32 == 0 {
		r.initByArray([]uint32{uint32(seed)})
	} else {
		r.initByArray([]uint32{uint32(seed), uint32(seed >> 32)})
	}
	return r
}

// initGenrand is MT19937's init_genrand.
func (r *Random) initGenrand(s uint32) {
	mt := &r.mt
	mt[0] = s
	for i := 1; i < pyMTN; i++ {
		mt[i] = 1812433253*(mt[i-1]^(mt[i-1]>>30)) + uint32(i)
	}
	r.index = pyMTN
}

// initByArray is MT19937's init_by_array.
func (r *Random) initByArray(key []uint32) {
	r.initGenrand(19650218)
	mt := &r.mt
	i, j := 1, 0
	k := max(pyMTN, len(key))
	for ; k > 0; k-- {
		mt[i] = (mt[i] ^ ((mt[i-1] ^ (mt[i-1] >> 30)) * 1664525)) + key[j] + uint32(j)
		i++
		j++
		if i >= pyMTN {
			mt[0] = mt[pyMTN-1]
			i = 1
		}
		if j >= len(key) {
			j = 0
		}
	}
	for k = pyMTN - 1; k > 0; k-- {
		mt[i] = (mt[i] ^ ((mt[i-1] ^ (mt[i-1] >> 30)) * 1566083941)) - uint32(i)
		i++
		if i >= pyMTN {
			mt[0] = mt[pyMTN-1]
			i = 1
		}
	}
	mt[0] = 0x80000000 // MSB is 1, assuring a non-zero initial array
}

// genrandUint32 is MT19937's genrand_uint32: the next 32 random bits.
func (r *Random) genrandUint32() uint32 {
	mt := &r.mt
	if r.index >= pyMTN {
		var kk int
		for kk = 0; kk < pyMTN-pyMTM; kk++ {
			y := mt[kk]&pyMTUpperMask | mt[kk+1]&pyMTLowerMask
			mt[kk] = mt[kk+pyMTM] ^ y>>1 ^ (y&1)*pyMTMatrixA
		}
		for ; kk < pyMTN-1; kk++ {
			y := mt[kk]&pyMTUpperMask | mt[kk+1]&pyMTLowerMask
			mt[kk] = mt[kk+(pyMTM-pyMTN)] ^ y>>1 ^ (y&1)*pyMTMatrixA
		}
		y := mt[pyMTN-1]&pyMTUpperMask | mt[0]&pyMTLowerMask
		mt[pyMTN-1] = mt[pyMTM-1] ^ y>>1 ^ (y&1)*pyMTMatrixA
		r.index = 0
	}
	y := mt[r.index]
	r.index++
	y ^= y >> 11
	y ^= (y << 7) & 0x9d2c5680
	y ^= (y << 15) & 0xefc60000
	y ^= y >> 18
	return y
}

// Random returns random.random(): a float64 in [0, 1) with 53 random bits,
// built from two 32-bit outputs (27 and 26 bits).
func (r *Random) Random() float64 {
	a := r.genrandUint32() >> 5
	b := r.genrandUint32() >> 6
	return (float64(a)*67108864.0 + float64(b)) * (1.0 / 9007199254740992.0)
}

// GetRandBits returns random.getrandbits(k) for 0 <= k <= 64. Like CPython it
// consumes one 32-bit output per started 32 bits, filling the result from the
// least significant word up and keeping the top bits of the last word. It
// panics if k is out of range.
func (r *Random) GetRandBits(k int) uint64 {
	switch {
	case k < 0 || k > 64:
		panic("pyport: Random.GetRandBits: k out of range [0, 64]")
	case k == 0:
		return 0
	case k <= 32:
		return uint64(r.genrandUint32() >> (32 - k))
	}
	lo := uint64(r.genrandUint32())
	hi := uint64(r.genrandUint32() >> (64 - k))
	return hi<<32 | lo
}

// RandBelow returns random._randbelow(n) (_randbelow_with_getrandbits): a
// uniform int in [0, n) by rejection sampling getrandbits(n.bit_length()). It
// panics if n <= 0.
func (r *Random) RandBelow(n int) int {
	if n <= 0 {
		panic("pyport: Random.RandBelow: n must be positive")
	}
	k := bits.Len(uint(n))
	for {
		if v := r.GetRandBits(k); v < uint64(n) {
			return int(v)
		}
	}
}

// Shuffle performs random.shuffle on a sequence of length n: for i from n-1
// down to 1 it picks j = _randbelow(i+1) and calls swap(i, j) (also when
// i == j, which a swap must tolerate).
func (r *Random) Shuffle(n int, swap func(i, j int)) {
	for i := n - 1; i > 0; i-- {
		swap(i, r.RandBelow(i+1))
	}
}

// Sample returns the indices random.sample(range(n), k) returns, in selection
// order. As in CPython 3.11, it draws from a shrinking pool when n is at most
// 21 + 4**ceil(log(3k, 4)) (21 alone when k <= 5), and otherwise redraws
// _randbelow(n) until it finds an index not yet selected. (CPython computes
// the exponent in floating point; this integer computation agrees for every k
// below 3*10**14.) It panics unless 0 <= k <= n.
func (r *Random) Sample(n, k int) []int {
	if k < 0 || k > n {
		panic("pyport: Random.Sample: sample larger than population or is negative")
	}
	result := make([]int, k)
	setsize := 21
	if k > 5 {
		// 4**ceil(log4(3k)); p/3 < k is p < 3k without overflow. (k is
		// bounded by the allocation of result above.)
		p := 1
		for p/3 < k {
			p *= 4
		}
		setsize += p
	}
	if n <= setsize {
		pool := make([]int, n)
		for i := range pool {
			pool[i] = i
		}
		for i := range k {
			j := r.RandBelow(n - i)
			result[i] = pool[j]
			pool[j] = pool[n-i-1] // move the non-selected item into the vacancy
		}
		return result
	}
	selected := make(map[int]struct{}, k)
	for i := range k {
		j := r.RandBelow(n)
		for {
			if _, dup := selected[j]; !dup {
				break
			}
			j = r.RandBelow(n)
		}
		selected[j] = struct{}{}
		result[i] = j
	}
	return result
}

// Uniform returns random.uniform(a, b): a + (b-a)*random(), rounded after
// each operation as in CPython (no fused multiply-add).
func (r *Random) Uniform(a, b float64) float64 {
	return a + float64((b-a)*r.Random())
}

// Choice returns the index random.choice would pick from a sequence of
// length n, that is _randbelow(n). It panics if n <= 0 (CPython raises
// IndexError for an empty sequence).
func (r *Random) Choice(n int) int {
	if n <= 0 {
		panic("pyport: Random.Choice: cannot choose from an empty sequence")
	}
	return r.RandBelow(n)
}

// RandInt returns random.randint(a, b): a + _randbelow(b-a+1), a uniform int
// in [a, b]. It panics if b < a or if b-a+1 overflows int.
func (r *Random) RandInt(a, b int) int {
	width := b - a + 1
	if b < a || width <= 0 {
		panic("pyport: Random.RandInt: empty or too large range")
	}
	return a + r.RandBelow(width)
}
