package pyport

import (
	"context"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"testing"
	"time"
)

// pyRandomCases is testdata/pyrandom/cases.json, written by
// testdata/pyrandom/gen.py under CPython 3.11.
type pyRandomCases struct {
	Python []int `json:"python"`
	Seeds  []struct {
		Seed        uint64              `json:"seed"`
		Random      []float64           `json:"random"`
		GetRandBits map[string][]uint64 `json:"getrandbits"`
		Shuffle     map[string][]int    `json:"shuffle"`
		Sample      []struct {
			N      int   `json:"n"`
			K      int   `json:"k"`
			First  []int `json:"first"`
			Second []int `json:"second"`
		} `json:"sample"`
		RandBelow map[string][]int `json:"randbelow"`
		Choice    map[string][]int `json:"choice"`
		RandInt   []struct {
			A      int   `json:"a"`
			B      int   `json:"b"`
			Values []int `json:"values"`
		} `json:"randint"`
		Uniform []struct {
			A      float64   `json:"a"`
			B      float64   `json:"b"`
			Values []float64 `json:"values"`
		} `json:"uniform"`
		Mixed []json.RawMessage `json:"mixed"`
	} `json:"seeds"`
	GoalShuffle30    []int `json:"webshop_goal_shuffle_233_30"`
	GoalShuffle12087 []int `json:"webshop_goal_shuffle_233_12087"`
}

func loadPyRandomCases(t *testing.T) *pyRandomCases {
	t.Helper()
	data, err := os.ReadFile(filepath.Join("testdata", "pyrandom", "cases.json"))
	if err != nil {
		t.Fatal(err)
	}
	var c pyRandomCases
	if err := json.Unmarshal(data, &c); err != nil {
		t.Fatal(err)
	}
	if len(c.Seeds) != 5 {
		t.Fatalf("cases.json has %d seeds, want 5", len(c.Seeds))
	}
	return &c
}

// pyShuffledRange returns list(range(n)) after shuffling with r.
func pyShuffledRange(r *Random, n int) []int {
	x := make([]int, n)
	for i := range x {
		x[i] = i
	}
	r.Shuffle(n, func(i, j int) { x[i], x[j] = x[j], x[i] })
	return x
}

func atoiKey(t *testing.T, s string) int {
	t.Helper()
	n, err := strconv.Atoi(s)
	if err != nil {
		t.Fatal(err)
	}
	return n
}

func TestPyRandomCases(t *testing.T) {
	c := loadPyRandomCases(t)
	for _, sc := range c.Seeds {
		seed := sc.Seed
		t.Run(strconv.FormatUint(seed, 10), func(t *testing.T) {
			r := NewRandom(seed)
			for i, want := range sc.Random {
				if got := r.Random(); got != want {
					t.Fatalf("random() #%d = %v, python %v", i, got, want)
				}
			}
			if len(sc.GetRandBits) == 0 || len(sc.Shuffle) == 0 || len(sc.Sample) == 0 {
				t.Fatal("cases.json is missing sections")
			}
			for ks, want := range sc.GetRandBits {
				k := atoiKey(t, ks)
				r := NewRandom(seed)
				for i, w := range want {
					if got := r.GetRandBits(k); got != w {
						t.Fatalf("getrandbits(%d) #%d = %d, python %d", k, i, got, w)
					}
				}
			}
			for ns, want := range sc.Shuffle {
				n := atoiKey(t, ns)
				if got := pyShuffledRange(NewRandom(seed), n); !slices.Equal(got, want) {
					t.Errorf("shuffle(range(%d)) = %v, python %v", n, got, want)
				}
			}
			for _, s := range sc.Sample {
				r := NewRandom(seed)
				if got := r.Sample(s.N, s.K); !slices.Equal(got, s.First) {
					t.Errorf("sample(range(%d), %d) = %v, python %v", s.N, s.K, got, s.First)
				}
				if got := r.Sample(s.N, s.K); !slices.Equal(got, s.Second) {
					t.Errorf("second sample(range(%d), %d) = %v, python %v", s.N, s.K, got, s.Second)
				}
			}
			for ns, want := range sc.RandBelow {
				n := atoiKey(t, ns)
				r := NewRandom(seed)
				for i, w := range want {
					if got := r.RandBelow(n); got != w {
						t.Fatalf("_randbelow(%d) #%d = %d, python %d", n, i, got, w)
					}
				}
			}
			for ns, want := range sc.Choice {
				n := atoiKey(t, ns)
				r := NewRandom(seed)
				for i, w := range want {
					if got := r.Choice(n); got != w {
						t.Fatalf("choice(range(%d)) #%d = %d, python %d", n, i, got, w)
					}
				}
			}
			for _, ri := range sc.RandInt {
				r := NewRandom(seed)
				for i, w := range ri.Values {
					if got := r.RandInt(ri.A, ri.B); got != w {
						t.Fatalf("randint(%d, %d) #%d = %d, python %d", ri.A, ri.B, i, got, w)
					}
				}
			}
			for _, u := range sc.Uniform {
				r := NewRandom(seed)
				for i, w := range u.Values {
					if got := r.Uniform(u.A, u.B); got != w {
						t.Fatalf("uniform(%v, %v) #%d = %v, python %v", u.A, u.B, i, got, w)
					}
				}
			}
			checkPyRandomMixed(t, NewRandom(seed), sc.Mixed)
		})
	}
}

// checkPyRandomMixed replays gen.py's interleaved call sequence.
func checkPyRandomMixed(t *testing.T, r *Random, mixed []json.RawMessage) {
	t.Helper()
	if len(mixed) != 30 {
		t.Fatalf("mixed has %d entries, want 30", len(mixed))
	}
	for i, raw := range mixed {
		var got, want any
		switch i % 5 {
		case 0:
			got = r.Random()
			var w float64
			want = &w
		case 1:
			got = r.RandInt(1, 100)
			var w int
			want = &w
		case 2:
			got = r.Choice(7)
			var w int
			want = &w
		case 3:
			got = r.Sample(50, 3)
			var w []int
			want = &w
		default:
			got = pyShuffledRange(r, 6)
			var w []int
			want = &w
		}
		if err := json.Unmarshal(raw, want); err != nil {
			t.Fatal(err)
		}
		gotJSON, _ := json.Marshal(got)
		wantJSON, _ := json.Marshal(want)
		if string(gotJSON) != string(wantJSON) {
			t.Fatalf("mixed call #%d = %s, python %s", i, gotJSON, wantJSON)
		}
	}
}

// TestPyRandomWebShopGoalOrder checks WebShop's goal order:
// random.seed(233); random.shuffle(goals) over its 12,087 human goals.
func TestPyRandomWebShopGoalOrder(t *testing.T) {
	c := loadPyRandomCases(t)
	for _, want := range [][]int{c.GoalShuffle30, c.GoalShuffle12087} {
		if got := pyShuffledRange(NewRandom(233), len(want)); !slices.Equal(got, want) {
			t.Errorf("seed 233 shuffle of %d goals differs from python", len(want))
		}
	}
	if want := []int{13, 11, 26, 29, 28}; !slices.Equal(c.GoalShuffle30[:5], want) {
		t.Errorf("cases.json seed-233 shuffle starts %v, want %v", c.GoalShuffle30[:5], want)
	}
}

// findPython returns a usable python3 interpreter, or "" if there is none.
func findPython() string {
	for _, p := range []string{"/usr/bin/python3", "python3"} {
		if path, err := exec.LookPath(p); err == nil {
			return path
		}
	}
	return ""
}

// TestPyRandomLivePython runs gen.py under the local python3 and compares
// the seed-233 shuffle of a 30-element list and a few other draws.
func TestPyRandomLivePython(t *testing.T) {
	py := findPython()
	if py == "" {
		t.Skip("no python3 found")
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	script := filepath.Join("testdata", "pyrandom", "gen.py")
	out, err := exec.CommandContext(ctx, py, script, "--shuffle", "30", "233").Output()
	if err != nil {
		t.Fatalf("%s %s: %v", py, script, err)
	}
	var want []int
	if err := json.Unmarshal(out, &want); err != nil {
		t.Fatalf("bad output %q: %v", out, err)
	}
	if got := pyShuffledRange(NewRandom(233), 30); !slices.Equal(got, want) {
		t.Errorf("seed 233 shuffle of 30: go %v, python %v", got, want)
	}

	out, err = exec.CommandContext(ctx, py, script, "--live").Output()
	if err != nil {
		t.Fatalf("%s %s --live: %v", py, script, err)
	}
	var live struct {
		Version   []int     `json:"version"`
		Shuffle30 []int     `json:"shuffle30"`
		Random    []float64 `json:"random"`
		Sample    []int     `json:"sample"`
		SampleBig []int     `json:"sample_big"`
	}
	if err := json.Unmarshal(out, &live); err != nil {
		t.Fatalf("bad output %q: %v", out, err)
	}
	t.Logf("python %v", live.Version)
	if !slices.Equal(live.Shuffle30, want) {
		t.Errorf("--live shuffle30 %v differs from --shuffle %v", live.Shuffle30, want)
	}
	r := NewRandom(233)
	for i, w := range live.Random {
		if got := r.Random(); got != w {
			t.Errorf("random() #%d = %v, python %v", i, got, w)
		}
	}
	if got := NewRandom(233).Sample(12087, 10); !slices.Equal(got, live.Sample) {
		t.Errorf("sample(range(12087), 10) = %v, python %v", got, live.Sample)
	}
	if got := NewRandom(7).Sample(1_000_000_000, 5); !slices.Equal(got, live.SampleBig) {
		t.Errorf("sample(range(10**9), 5) = %v, python %v", got, live.SampleBig)
	}
}

func TestPyRandomPanics(t *testing.T) {
	for name, f := range map[string]func(r *Random){
		"RandBelow(0)":    func(r *Random) { r.RandBelow(0) },
		"Choice(0)":       func(r *Random) { r.Choice(0) },
		"RandInt(2, 1)":   func(r *Random) { r.RandInt(2, 1) },
		"Sample(3, 4)":    func(r *Random) { r.Sample(3, 4) },
		"Sample(3, -1)":   func(r *Random) { r.Sample(3, -1) },
		"GetRandBits(65)": func(r *Random) { r.GetRandBits(65) },
		"GetRandBits(-1)": func(r *Random) { r.GetRandBits(-1) },
	} {
		func() {
			defer func() {
				if recover() == nil {
					t.Errorf("%s did not panic", name)
				}
			}()
			f(NewRandom(1))
		}()
	}
	// Valid edge cases do not panic and consume like CPython.
	r := NewRandom(1)
	if got := r.GetRandBits(0); got != 0 {
		t.Errorf("GetRandBits(0) = %d", got)
	}
	if got := r.Sample(0, 0); len(got) != 0 {
		t.Errorf("Sample(0, 0) = %v", got)
	}
	r.Shuffle(0, func(i, j int) { t.Error("swap called for n=0") })
	r.Shuffle(1, func(i, j int) { t.Error("swap called for n=1") })
	if got, want := r.Random(), NewRandom(1).Random(); got != want {
		t.Errorf("edge cases consumed randomness: %v != %v", got, want)
	}
}
