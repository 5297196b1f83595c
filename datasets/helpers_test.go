package datasets

import (
	"math"
	"os"
	"reflect"
	"sync"
	"testing"

	"shopagent/env"
	"shopagent/env/shopgen"
)

// testShop is the built-in 300-product shop (DefaultGenConfig, seed 1),
// generated once for the package's tests.
var testShopOnce struct {
	sync.Once
	dir  string
	shop *env.Shop
	err  error
}

func testShop(t *testing.T) *env.Shop {
	t.Helper()
	testShopOnce.Do(func() {
		dir, err := os.MkdirTemp("", "datasets-test-shop")
		if err != nil {
			testShopOnce.err = err
			return
		}
		testShopOnce.dir = dir
		cfg := shopgen.DefaultConfig()
		cfg.Goals = shopgen.SampleGoals(30, 30, 90)
		if err := shopgen.Generate(cfg, dir, nil); err != nil {
			testShopOnce.err = err
			return
		}
		testShopOnce.shop, testShopOnce.err = env.OpenShop(dir, env.ShopOptions{})
	})
	if testShopOnce.err != nil {
		t.Fatal(testShopOnce.err)
	}
	return testShopOnce.shop
}

func TestMain(m *testing.M) {
	code := m.Run()
	if testShopOnce.dir != "" {
		os.RemoveAll(testShopOnce.dir)
	}
	os.Exit(code)
}

// sameFloat compares floats treating NaN as equal to NaN.
func sameFloat(a, b float64) bool {
	return a == b || (math.IsNaN(a) && math.IsNaN(b))
}

// sameStep compares rows field by field (NaN equal to NaN, nil list equal to
// an empty one).
func sameStep(a, b Step) bool {
	if !sameFloat(a.Logprob, b.Logprob) || !sameFloat(a.Value, b.Value) ||
		!sameFloat(a.Reward, b.Reward) || !sameFloat(a.FinalReward, b.FinalReward) {
		return false
	}
	if len(a.AvailableActions) != len(b.AvailableActions) ||
		(len(a.AvailableActions) > 0 && !reflect.DeepEqual(a.AvailableActions, b.AvailableActions)) {
		return false
	}
	a.Logprob, a.Value, a.Reward, a.FinalReward, a.AvailableActions = 0, 0, 0, 0, nil
	b.Logprob, b.Value, b.Reward, b.FinalReward, b.AvailableActions = 0, 0, 0, 0, nil
	return reflect.DeepEqual(a, b)
}
