package env

import (
	"fmt"
	"shopagent/env/pyport"
	"shopagent/env/search"
	"slices"
	"strings"
)

// Shop is a read-only catalog with its search index, goals and reward
// scorer. One Shop serves many Envs in parallel goroutines.
type Shop struct {
	Catalog *Catalog
	// Index holds the products in ASIN order: document d is product
	// docProduct[d]. Use Shop.Search, which maps documents back to products.
	Index  *search.Index
	Goals  []Goal
	Splits Splits
	Scorer *Scorer

	docProduct []int32 // index document -> catalog position
}

// GoalSource selects which goals a shop uses.
type GoalSource string

// Goal sources: human instructions (items_human_ins.json, WebShop's
// get_human_goals), synthetic ones (items_ins_v2 instructions with every
// option combination), the goal list of goals.json (the built-in shop's, in
// WebShop's order with its splits), or auto (goals.json when the data
// directory has one, else human when the files have any, else synthetic).
const (
	GoalsHuman     GoalSource = "human"
	GoalsSynthetic GoalSource = "synthetic"
	GoalsFromFile  GoalSource = "file"
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
	if src == GoalsFromFile || ((src == GoalsAuto || src == "") && lo.GoalsPath != "") {
		if lo.GoalsPath == "" {
			return nil, fmt.Errorf("goal source %q: no %s in the data directory", src, GoalsFile)
		}
		goals, splits, err := ReadGoalsFile(lo.GoalsPath, c)
		if err != nil {
			return nil, err
		}
		shop := NewShop(c, goals)
		shop.Splits = splits
		return shop, nil
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
		return nil, fmt.Errorf("unknown goal source %q (want auto, file, human or synthetic)", src)
	}
	ShuffleGoals(goals)
	shop := NewShop(c, goals)
	if lo.Limit > 0 {
		shop.Splits = SameGoalsSplits(len(goals))
	}
	return shop, nil
}

// NewShop indexes a catalog and wraps it with goals (already in order).
//
// Products are indexed in ASIN order, so that the index's tie rule (equal
// scores go to the lower document) orders equal BM25 scores by ASIN ascending,
// as WebShop's Anserini searcher does (BREAK_SCORE_TIES_BY_DOCID on the "id"
// field, which holds the ASIN), whatever the order of the product file.
func NewShop(c *Catalog, goals []Goal) *Shop {
	order := make([]int32, len(c.Products))
	for i := range order {
		order[i] = int32(i)
	}
	slices.SortStableFunc(order, func(a, b int32) int { return strings.Compare(c.Products[a].ASIN, c.Products[b].ASIN) })
	return &Shop{
		Catalog:    c,
		Index:      search.BuildIndex(len(order), func(d int) string { return DocText(&c.Products[order[d]]) }),
		Goals:      goals,
		Splits:     SplitRanges(len(goals)),
		Scorer:     NewScorer(),
		docProduct: order,
	}
}

// SearchReturnN is the number of results WebShop's search returns (SEARCH_RETURN_N).
const SearchReturnN = 50

// Search returns the catalog positions of the products the shop shows for a
// search: the top k by BM25 (ties by ASIN ascending). Like WebShop, it first
// looks at the first space-separated word of the query for a special prefix:
//
//   - "<r>": k products drawn at random (without replacement) by rng;
//   - "<a> ATTR": every product whose mined attributes include ATTR (the rest
//     of the query, trimmed), in catalog order;
//   - "<c> CAT": every product of category CAT (the second word only), in
//     catalog order;
//   - "<q> QUERY": every product whose query field is QUERY (the rest of the
//     query, trimmed), in catalog order.
//
// The filters are not cut to k, as in WebShop. WebShop's text environment
// crashes on "<a>" (it does not pass its attribute map to the search) and on a
// "<c>" without a category; here "<a>" filters as WebShop's web app does and a
// bare "<c>" finds nothing. rng may be nil when the query cannot start with "<r>".
func (s *Shop) Search(query string, k int, rng *pyport.Random) []int {
	first, rest, _ := strings.Cut(query, " ")
	switch first {
	case "<r>":
		n := len(s.Catalog.Products)
		if rng == nil {
			rng = pyport.NewRandom(0)
		}
		return rng.Sample(n, min(k, n))
	case "<a>", "<c>", "<q>":
		var keep func(p *Product) bool
		switch first {
		case "<a>":
			attr := strings.TrimSpace(rest)
			keep = func(p *Product) bool { return slices.Contains(p.Attributes, attr) }
		case "<c>":
			words := strings.Split(query, " ")
			if len(words) < 2 {
				return nil
			}
			cat := strings.TrimSpace(words[1])
			keep = func(p *Product) bool { return p.Category == cat }
		default:
			q := strings.TrimSpace(rest)
			keep = func(p *Product) bool { return p.Query == q }
		}
		var out []int
		for i := range s.Catalog.Products {
			if keep(&s.Catalog.Products[i]) {
				out = append(out, i)
			}
		}
		return out
	}
	docs := s.Index.Search(query, k)
	for i, d := range docs {
		docs[i] = int(s.docProduct[d])
	}
	return docs
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
