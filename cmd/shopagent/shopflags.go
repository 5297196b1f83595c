package main

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"github.com/spf13/cobra"

	"shopagent/env"
)

// shopFlags are the flags every command that opens a shop shares.
type shopFlags struct {
	data     string
	products int
	genSeed  int64
	seed     uint64
	limit    int
	goals    string
}

func (f *shopFlags) register(cmd *cobra.Command) {
	d := env.DefaultGenConfig()
	cmd.Flags().StringVar(&f.data, "data", "", "WebShop data directory (items_shuffle*.json, items_ins_v2*.json, items_human_ins.json); empty = the built-in generated shop")
	cmd.Flags().IntVar(&f.products, "products", d.Products, "products in the built-in shop (when --data is empty)")
	cmd.Flags().Int64Var(&f.genSeed, "gen-seed", d.Seed, "generator seed of the built-in shop (when --data is empty)")
	cmd.Flags().Uint64Var(&f.seed, "seed", 0, "seed of the price-range draws and price caps (WebShop leaves them unseeded)")
	cmd.Flags().IntVar(&f.limit, "limit", 0, "keep only the first N product records (0 = all)")
	cmd.Flags().StringVar(&f.goals, "goals", "auto", "goal source: human, synthetic or auto")
}

// dataDir returns the data directory, generating the built-in shop into the
// user's cache directory on first use.
func (f *shopFlags) dataDir() (string, error) {
	if f.data != "" {
		return f.data, nil
	}
	cfg := env.DefaultGenConfig()
	cfg.Products, cfg.Seed = f.products, f.genSeed
	key, _ := json.Marshal(cfg)
	sum := sha256.Sum256(key)
	base, err := os.UserCacheDir()
	if err != nil {
		base = os.TempDir()
	}
	dir := filepath.Join(base, "shopagent", fmt.Sprintf("shop-%d-%d-%s", cfg.Products, cfg.Seed, hex.EncodeToString(sum[:4])))
	if _, err := os.Stat(filepath.Join(dir, env.ProductsFile)); err == nil {
		return dir, nil
	}
	tmp := dir + fmt.Sprintf(".tmp%d", os.Getpid())
	if err := os.MkdirAll(tmp, 0o755); err != nil {
		return "", err
	}
	fmt.Fprintf(os.Stderr, "generating the built-in shop (%d products, seed %d) into %s\n", cfg.Products, cfg.Seed, dir)
	if err := env.Generate(cfg, tmp); err != nil {
		os.RemoveAll(tmp)
		return "", fmt.Errorf("generate built-in shop: %w", err)
	}
	if err := os.Rename(tmp, dir); err != nil {
		os.RemoveAll(tmp)
		if _, statErr := os.Stat(filepath.Join(dir, env.ProductsFile)); statErr == nil {
			return dir, nil // another process won the race
		}
		return "", err
	}
	return dir, nil
}

func (f *shopFlags) open() (*env.Shop, error) {
	dir, err := f.dataDir()
	if err != nil {
		return nil, err
	}
	t := time.Now()
	shop, err := env.OpenShop(dir, env.ShopOptions{Seed: f.seed, Limit: f.limit, Goals: env.GoalSource(f.goals)})
	if err != nil {
		return nil, err
	}
	fmt.Fprintf(os.Stderr, "shop: %d products, %d goals (test %d, dev %d, train %d) from %s in %s\n",
		len(shop.Catalog.Products), len(shop.Goals),
		shop.Splits.Test[1]-shop.Splits.Test[0], shop.Splits.Dev[1]-shop.Splits.Dev[0], shop.Splits.Train[1]-shop.Splits.Train[0],
		dir, time.Since(t).Round(time.Millisecond))
	if shop.Splits.Note != "" {
		fmt.Fprintf(os.Stderr, "note: %s\n", shop.Splits.Note)
	}
	return shop, nil
}

// openSplit opens the shop and returns the goals of a split, the first `first` of them
// when first > 0; a split without goals is an error.
func (f *shopFlags) openSplit(split string, first int) (*env.Shop, []env.Goal, error) {
	shop, err := f.open()
	if err != nil {
		return nil, nil, err
	}
	goals, err := shop.SplitGoals(split)
	if err != nil {
		return nil, nil, err
	}
	if first > 0 && first < len(goals) {
		goals = goals[:first]
	}
	if len(goals) == 0 {
		return nil, nil, fmt.Errorf("split %q has no goals", split)
	}
	return shop, goals, nil
}
