package env

import (
	"fmt"
	"shopagent/env/pyport"
	"shopagent/env/search"
	"strings"
)

// Shop is a read-only catalog with its search index, goals and reward
// scorer. One Shop serves many Envs in parallel goroutines.
type Shop struct {
	Catalog *Catalog
	Index   *search.Index
	Goals   []Goal
	Splits  Splits
	Scorer  *Scorer
}

// GoalSource selects which goals a shop uses.
type GoalSource string

// Goal sources: human instructions (items_human_ins.json), synthetic ones
// (items_ins_v2 instructions with every option combination), or auto (human
// when the file has any, else synthetic).
const (
	GoalsHuman     GoalSource = "human"
	GoalsSynthetic GoalSource = "synthetic"
	GoalsAuto      GoalSource = "auto"
)

// ShopOptions configures OpenShop.
type ShopOptions struct {
	// Seed seeds the price-range draws and price caps (WebShop leaves them
	// unseeded). The goal order always uses WebShop's seed 233.
	Seed uint64
	// Limit keeps the first Limit product records (0 = all).
	Limit int
	// Goals picks the goal source; empty means auto.
	Goals GoalSource
}

// OpenShop loads WebShop files (or the generator's output) from dir, builds
// the search index and the goals in WebShop's order and splits.
func OpenShop(dir string, o ShopOptions) (*Shop, error) {
	lo, err := FindDataFiles(dir)
	if err != nil {
		return nil, err
	}
	lo.Seed, lo.Limit = o.Seed, o.Limit
	return OpenShopFiles(lo, o.Goals)
}

// OpenShopFiles is OpenShop over explicit file paths.
func OpenShopFiles(lo LoadOptions, src GoalSource) (*Shop, error) {
	// One Python-style generator for prices and then goals, in WebShop's order.
	rng := pyport.NewRandom(lo.Seed)
	c, err := loadCatalog(lo, rng)
	if err != nil {
		return nil, err
	}
	var goals []Goal
	switch src {
	case GoalsHuman:
		goals = HumanGoals(c, rng)
	case GoalsSynthetic:
		goals = SyntheticGoals(c, rng)
	case GoalsAuto, "":
		goals = HumanGoals(c, rng)
		if len(goals) == 0 {
			goals = SyntheticGoals(c, rng)
		}
	default:
		return nil, fmt.Errorf("unknown goal source %q (want human, synthetic or auto)", src)
	}
	ShuffleGoals(goals)
	return NewShop(c, goals), nil
}

// NewShop indexes a catalog and wraps it with goals (already in order).
func NewShop(c *Catalog, goals []Goal) *Shop {
	return &Shop{
		Catalog: c,
		Index:   search.BuildIndex(len(c.Products), func(i int) string { return DocText(&c.Products[i]) }),
		Goals:   goals,
		Splits:  SplitRanges(len(goals)),
		Scorer:  NewScorer(),
	}
}

// SplitGoals returns the goals of a split ("test", "dev", "train", "all").
func (s *Shop) SplitGoals(split string) ([]Goal, error) {
	r, err := s.Splits.Split(split)
	if err != nil {
		return nil, err
	}
	return s.Goals[r[0]:r[1]], nil
}

// DocText is the text WebShop indexes for a product: lowercase(title + " " +
// description + " " + first bullet + " " + option text), where the option
// text is ", and ".join("name: v1, v2, ...").
func DocText(p *Product) string {
	var b strings.Builder
	b.WriteString(p.Title)
	b.WriteByte(' ')
	b.WriteString(p.Description)
	b.WriteByte(' ')
	if len(p.BulletPoints) > 0 {
		b.WriteString(p.BulletPoints[0])
	}
	b.WriteByte(' ')
	for i, g := range p.Options {
		if i > 0 {
			b.WriteString(", and ")
		}
		b.WriteString(g.Name)
		b.WriteString(": ")
		b.WriteString(strings.Join(g.Values, ", "))
	}
	return strings.ToLower(b.String())
}
