package bandit

import (
	"math"
	"math/rand/v2"
	"testing"
)

func TestObserveAndStats(t *testing.T) {
	var a ArmState
	for _, r := range []float64{1, 0.5, 0, 1} {
		a.Observe(r)
	}
	if a.Episodes != 4 || a.Successes != 2 {
		t.Fatalf("episodes %d successes %d, want 4 and 2", a.Episodes, a.Successes)
	}
	if got := a.MeanScore(); math.Abs(got-0.625) > 1e-12 {
		t.Fatalf("mean %g, want 0.625", got)
	}
	// sample variance of {1, .5, 0, 1} = (0.140625+0.015625+0.390625+0.140625)/3 = 0.229167
	if got, want := a.ScoreStdErr(), math.Sqrt(0.6875/3/4); math.Abs(got-want) > 1e-12 {
		t.Fatalf("stderr %g, want %g", got, want)
	}
	al, be := a.Posterior(UniformPrior)
	if al != 3 || be != 3 {
		t.Fatalf("posterior Beta(%g,%g), want Beta(3,3)", al, be)
	}
}

func TestThompsonPrefersTheBetterArm(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	arms := []ArmState{{Name: "a", Episodes: 100, Successes: 20}, {Name: "b", Episodes: 100, Successes: 40}}
	th := Thompson{Prior: UniformPrior}
	counts := make([]int, 2)
	for range 2000 {
		counts[th.Choose(arms, rng)]++
	}
	if counts[1] < 1900 {
		t.Fatalf("arm b (40%% vs 20%%) chosen %d/2000 times", counts[1])
	}
	// With a floor of 10% per arm, the worse arm keeps at least ~10%.
	th.MinShare = 0.1
	counts = []int{0, 0}
	for range 4000 {
		counts[th.Choose(arms, rng)]++
	}
	if share := float64(counts[0]) / 4000; share < 0.08 || share > 0.15 {
		t.Fatalf("arm a share %g with MinShare 0.1", share)
	}
}

func TestProbBest(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 4))
	// Equal arms: about one half each.
	eq := []ArmState{{Episodes: 50, Successes: 10}, {Episodes: 50, Successes: 10}}
	pb := ProbBest(eq, UniformPrior, 20000, rng)
	if math.Abs(pb[0]-0.5) > 0.02 || math.Abs(pb[0]+pb[1]-1) > 1e-9 {
		t.Fatalf("P(best) of equal arms %v", pb)
	}
	// Beta(2,1) vs Beta(1,1): P(X > Y) = 2/3 exactly.
	pb = ProbBest([]ArmState{{Episodes: 1, Successes: 1}, {}}, UniformPrior, 40000, rng)
	if math.Abs(pb[0]-2.0/3) > 0.01 {
		t.Fatalf("P(Beta(2,1) > Beta(1,1)) = %g, want 0.667", pb[0])
	}
}

func TestCanary(t *testing.T) {
	if _, err := NewCanary([]float64{0, 0}); err == nil {
		t.Fatal("all-zero weights accepted")
	}
	if _, err := NewCanary([]float64{1, -1}); err == nil {
		t.Fatal("negative weight accepted")
	}
	c, err := NewCanary([]float64{9, 1})
	if err != nil {
		t.Fatal(err)
	}
	rng := rand.New(rand.NewPCG(5, 6))
	n := 0
	for range 10000 {
		if c.Choose(rng) == 1 {
			n++
		}
	}
	if n < 900 || n > 1100 {
		t.Fatalf("canary arm chosen %d/10000 with weight 0.1", n)
	}
}

func TestThompsonValidate(t *testing.T) {
	if err := (Thompson{Prior: UniformPrior, MinShare: 0.6}).Validate(2); err == nil {
		t.Fatal("min share 0.6 x 2 arms accepted")
	}
	if err := (Thompson{Prior: Prior{0, 1}}).Validate(2); err == nil {
		t.Fatal("zero prior accepted")
	}
	if err := (Thompson{Prior: UniformPrior, MinShare: 0.05}).Validate(3); err != nil {
		t.Fatal(err)
	}
}
