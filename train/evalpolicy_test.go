package train

import (
	"encoding/json"
	"os"
	"sync"
	"testing"

	"shopagent/env"
	"shopagent/env/shopgen"
	"shopagent/features"
)

var smallShopOnce struct {
	sync.Once
	shop *env.Shop
	err  error
}

// smallShop generates a 200-product built-in shop once for the package's tests.
func smallShop(t *testing.T) *env.Shop {
	t.Helper()
	smallShopOnce.Do(func() {
		dir, err := os.MkdirTemp("", "train-shop")
		if err != nil {
			smallShopOnce.err = err
			return
		}
		defer os.RemoveAll(dir)
		cfg := shopgen.DefaultConfig()
		cfg.Goals, cfg.Seed = shopgen.SampleGoals(20, 20, 60), 4
		if err := shopgen.Generate(cfg, dir, nil); err != nil {
			smallShopOnce.err = err
			return
		}
		smallShopOnce.shop, smallShopOnce.err = env.OpenShop(dir, env.ShopOptions{})
	})
	if smallShopOnce.err != nil {
		t.Fatal(smallShopOnce.err)
	}
	return smallShopOnce.shop
}

func TestEvaluateQueries(t *testing.T) {
	shop := smallShop(t)
	kw := EvaluateQueries(shop, shop.Goals, features.KeywordQuery{})
	if kw.Goals != len(shop.Goals) || kw.Top10 < 90 || kw.Top50 < kw.Top10 {
		t.Fatalf("keyword queries: %+v", kw)
	}
	t.Logf("keyword queries on a 200-product shop: %+v", kw)

	refs := map[string][]string{
		"i need a blue area rug for the living room":        {"blue area rug living room"},
		"i would like some wild caught crab":                {"wild caught crab"},
		"i want a floor lamp for my living room, and price": {"floor lamp living room", "floor lamp"},
	}
	f1, base := QueryF1(refs, features.KeywordQuery{})
	if !(f1 > 0.9) || !(base < f1) {
		t.Fatalf("F1 %.3f, instruction as query %.3f", f1, base)
	}
	// WebShop's human queries, when the shared data is present (held out: the heuristic
	// was not fitted to them).
	if b, err := os.ReadFile("../../shared/webshop-data/goal_query_map.json"); err == nil {
		var m map[string][]string
		if err := json.Unmarshal(b, &m); err != nil {
			t.Fatal(err)
		}
		f1, base := QueryF1(m, features.KeywordQuery{})
		t.Logf("token F1 against WebShop's human queries (%d instructions): keyword %.3f, instruction %.3f", len(m), f1, base)
		if f1 < 0.7 || f1 <= base {
			t.Fatalf("F1 against human queries %.3f (instruction %.3f)", f1, base)
		}
	}
}
