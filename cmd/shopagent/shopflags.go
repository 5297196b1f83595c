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
	"shopagent/env/shopgen"
)

// shopFlags are the flags every command that opens a shop shares.
type shopFlags struct {
	data      string
	shopGoals string
	products  int
	genSeed   int64
	seed      uint64
	limit     int
	goals     string // the goal source
}

func (f *shopFlags) register(cmd *cobra.Command) {
	f.registerAs(cmd, "seed")
	fl := cmd.Flags()
	fl.StringVar(&f.goals, "goals", "auto", "deprecated name of --goal-source")
	_ = fl.MarkDeprecated("goals", "use --goal-source")
}

// registerAs registers the flags with the price seed under seedName (the RL
// commands call theirs --shop-seed, as --seed seeds the run there).
func (f *shopFlags) registerAs(cmd *cobra.Command, seedName string) {
	d := shopgen.DefaultConfig()
	fl := cmd.Flags()
	fl.StringVar(&f.data, "data", "", "WebShop data directory (items_shuffle*.json, items_ins_v2*.json, items_human_ins.json, goals.json); empty = the built-in shop")
	fl.StringVar(&f.shopGoals, "shop-goals", d.Goals, "WebShop goals of the built-in shop (when --data is empty): N, all or index ranges")
	fl.IntVar(&f.products, "products", d.Products, "products of the built-in shop (when --data is empty; 0: 10 per goal)")
	fl.Int64Var(&f.genSeed, "gen-seed", d.Seed, "generator seed of the built-in shop (when --data is empty)")
	fl.Uint64Var(&f.seed, seedName, 0, "seed of the price-range draws (and WebShop's price caps when the goals are derived, not read from goals.json)")
	fl.IntVar(&f.limit, "limit", 0, "keep only the first N product records (0 = all); as in WebShop, every split is then all goals")
	fl.StringVar(&f.goals, "goal-source", "auto", "goal source: auto (goals.json, else human, else synthetic), file, human or synthetic")
}

// genConfig is the built-in shop's generator configuration for these flags.
func (f *shopFlags) genConfig() shopgen.Config {
	cfg := shopgen.DefaultConfig()
	if f.shopGoals != "" {
		cfg.Goals = f.shopGoals
	}
	cfg.Products, cfg.Seed = f.products, f.genSeed
	return cfg
}

// dataDir returns the data directory, generating the built-in shop into the
// user's cache directory on first use.
func (f *shopFlags) dataDir() (string, error) {
	if f.data != "" {
		return f.data, nil
	}
	cfg := f.genConfig()
	key, _ := json.Marshal(cfg)
	sum := sha256.Sum256(key)
	base, err := os.UserCacheDir()
	if err != nil {
		base = os.TempDir()
	}
	dir := filepath.Join(base, "shopagent", "shop-"+hex.EncodeToString(sum[:6]))
	if _, err := os.Stat(filepath.Join(dir, env.GoalsFile)); err == nil {
		return dir, nil
	}
	tmp := dir + fmt.Sprintf(".tmp%d", os.Getpid())
	fmt.Fprintf(os.Stderr, "generating the built-in shop (goals %s, seed %d) into %s\n", cfg.Goals, cfg.Seed, dir)
	if err := shopgen.Generate(cfg, tmp, nil); err != nil {
		os.RemoveAll(tmp)
		return "", fmt.Errorf("generate the built-in shop: %w", err)
	}
	if err := os.Rename(tmp, dir); err != nil {
		os.RemoveAll(tmp)
		if _, statErr := os.Stat(filepath.Join(dir, env.GoalsFile)); statErr == nil {
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
