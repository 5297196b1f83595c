package env

import (
	"fmt"
	"regexp"
	"strings"

	"shopagent/env/webshopdata"
)

// ShopStats are the figures that say how realistic a shop is, computed the
// same way for the built-in shop and for WebShop's own files, so the two can
// be put side by side (docs/ENV.md).
type ShopStats struct {
	Products int `json:"products"`
	Goals    int `json:"goals"`
	// Split is the split the search and rule-agent figures are measured on.
	Split      string `json:"split"`
	SplitGoals int    `json:"split_goals"`

	// HumanInstructionsPct is the share of goals whose instruction (without
	// the price clause) is one of WebShop's 12,087 human instructions.
	HumanInstructionsPct float64 `json:"human_instructions_pct"`
	WordsPerInstruction  float64 `json:"words_per_instruction"`
	// DistinctWordsPer1000 is the number of distinct words in 1,000
	// instructions (the mean over consecutive blocks of 1,000 goals; over
	// all of them when there are fewer).
	DistinctWordsPer1000 float64 `json:"distinct_words_per_1000"`

	TitleWordsMean float64 `json:"title_words_mean"`
	TitleWordsMin  int     `json:"title_words_min"`
	TitleWordsMax  int     `json:"title_words_max"`
	// SharedTitlePct is the share of products whose exact title another
	// product has too.
	SharedTitlePct float64 `json:"shared_title_pct"`
	// NoMinedAttrPct is the share of products without a mined attribute
	// (an empty list, or none: DUMMY_ATTR).
	NoMinedAttrPct float64 `json:"no_mined_attr_pct"`
	MinedAttrsMean float64 `json:"mined_attrs_mean"`
	NoPricePct     float64 `json:"no_price_pct"`
	EmptyDescPct   float64 `json:"empty_desc_pct"`

	NoOptionsPct   float64 `json:"goals_without_options_pct"`
	AttrsPerGoal   float64 `json:"attributes_per_goal"`
	OptionsPerGoal float64 `json:"options_per_goal"`

	// TargetRank1Pct and TargetTop10Pct: how often the goal's own product is
	// the first result, or in the first page, searching the instruction.
	TargetRank1Pct float64 `json:"target_rank1_pct"`
	TargetTop10Pct float64 `json:"target_top10_pct"`
	// WebShop's rule agent (search the instruction, buy the first result):
	// score, success rate, and how often the product it buys is of the right
	// type (r_type = 1).
	RuleScore        float64 `json:"rule_score"`
	RuleSuccessPct   float64 `json:"rule_success_pct"`
	RuleRightTypePct float64 `json:"rule_right_type_pct"`
}

var wordRE = regexp.MustCompile(`[a-z0-9]+`)

// instructionWords returns the lowercased words of instructions without the
// price clause: the mean count per instruction, and the distinct words per
// 1,000 instructions.
func instructionWords(ins []string) (perIns, per1000 float64) {
	if len(ins) == 0 {
		return 0, 0
	}
	total := 0
	var blocks []float64
	seen := map[string]bool{}
	for i, s := range ins {
		ws := wordRE.FindAllString(strings.ToLower(s), -1)
		total += len(ws)
		for _, w := range ws {
			seen[w] = true
		}
		if (i+1)%1000 == 0 {
			blocks = append(blocks, float64(len(seen)))
			clear(seen)
		}
	}
	if len(blocks) == 0 {
		blocks = append(blocks, float64(len(seen)))
	}
	sum := 0.0
	for _, b := range blocks {
		sum += b
	}
	return float64(total) / float64(len(ins)), sum / float64(len(blocks))
}

var priceClauseRE = regexp.MustCompile(`,? and price lower than [0-9.]+ dollars$`)

// instructionKey compares instructions: trimmed of spaces and periods.
func instructionKey(s string) string { return strings.Trim(strings.TrimSpace(s), ". ") }

// StripPriceClause returns an instruction without WebShop's price clause.
func StripPriceClause(ins string) string {
	return strings.TrimSpace(priceClauseRE.ReplaceAllString(ins, ""))
}

// Stats computes a shop's realism figures; the search and rule-agent ones on
// the goals of split. workers is passed to Shop.Evaluate (0 = GOMAXPROCS).
func Stats(shop *Shop, split string, workers int) (ShopStats, error) {
	goals, err := shop.SplitGoals(split)
	if err != nil {
		return ShopStats{}, err
	}
	if len(goals) == 0 {
		return ShopStats{}, fmt.Errorf("stats: split %q has no goals", split)
	}
	st := ShopStats{Products: len(shop.Catalog.Products), Goals: len(shop.Goals), Split: split, SplitGoals: len(goals)}

	human := map[string]bool{}
	for _, h := range webshopdata.HumanGoals() {
		human[instructionKey(h)] = true
	}
	ins := make([]string, len(shop.Goals))
	nHuman, attrs, opts, noOpt := 0, 0, 0, 0
	for i, g := range shop.Goals {
		ins[i] = StripPriceClause(g.Instruction)
		if human[instructionKey(ins[i])] {
			nHuman++
		}
		attrs += len(g.Attributes)
		opts += len(g.Options)
		if len(g.Options) == 0 {
			noOpt++
		}
	}
	n := float64(max(len(shop.Goals), 1))
	st.HumanInstructionsPct = 100 * float64(nHuman) / n
	st.WordsPerInstruction, st.DistinctWordsPer1000 = instructionWords(ins)
	st.NoOptionsPct, st.AttrsPerGoal, st.OptionsPerGoal = 100*float64(noOpt)/n, float64(attrs)/n, float64(opts)/n

	titles := map[string]int{}
	words, mined, noMined, noPrice, emptyDesc := 0, 0, 0, 0, 0
	st.TitleWordsMin = -1
	for i := range shop.Catalog.Products {
		p := &shop.Catalog.Products[i]
		titles[p.Title]++
		w := len(strings.Fields(p.Title))
		words += w
		if st.TitleWordsMin < 0 || w < st.TitleWordsMin {
			st.TitleWordsMin = w
		}
		st.TitleWordsMax = max(st.TitleWordsMax, w)
		if len(p.Attributes) == 0 || (len(p.Attributes) == 1 && p.Attributes[0] == "DUMMY_ATTR") {
			noMined++
		} else {
			mined += len(p.Attributes)
		}
		if len(p.Pricing) == 0 {
			noPrice++
		}
		if strings.TrimSpace(p.Description) == "" {
			emptyDesc++
		}
	}
	shared := 0
	for i := range shop.Catalog.Products {
		if titles[shop.Catalog.Products[i].Title] > 1 {
			shared++
		}
	}
	np := float64(max(len(shop.Catalog.Products), 1))
	st.TitleWordsMean = float64(words) / np
	st.SharedTitlePct = 100 * float64(shared) / np
	st.NoMinedAttrPct = 100 * float64(noMined) / np
	st.MinedAttrsMean = float64(mined) / np
	st.NoPricePct = 100 * float64(noPrice) / np
	st.EmptyDescPct = 100 * float64(emptyDesc) / np

	rank1, top10 := 0, 0
	for _, g := range goals {
		for r, d := range shop.Search(strings.ToLower(g.Instruction), SearchReturnN, nil) {
			if shop.Catalog.Products[d].ASIN == g.ASIN {
				if r == 0 {
					rank1++
				}
				if r < 10 {
					top10++
				}
				break
			}
		}
	}
	ng := float64(len(goals))
	st.TargetRank1Pct, st.TargetTop10Pct = 100*float64(rank1)/ng, 100*float64(top10)/ng
	eps := shop.Evaluate(goals, Config{Mode: ObsText, MaxSteps: 100}, workers, func(int) Agent { return RuleAgent{} }, false, nil)
	sum := Summarize(eps)
	right := 0
	for _, ep := range eps {
		if ep.Purchase != nil && ep.Purchase.Reward.RType == 1 {
			right++
		}
	}
	st.RuleScore, st.RuleSuccessPct, st.RuleRightTypePct = sum.Score, sum.SuccessRate, 100*float64(right)/ng
	return st, nil
}

// WebShopFigure is one figure of real WebShop with its basis.
type WebShopFigure struct {
	Value string `json:"value"`
	Basis string `json:"basis"`
}

// WebShopReference returns real WebShop's figures for the rows of ShopStats
// (by JSON name): computed from the WebShop files this project embeds where
// they allow it, else published or measured on a small sample (the basis
// says which).
func WebShopReference() map[string]WebShopFigure {
	perIns, per1000 := instructionWords(webshopdata.HumanGoals())
	none, mined := 0, 0
	m := webshopdata.MinedAttributes()
	for _, e := range m {
		if len(e.Attributes) == 0 {
			none++
		}
		mined += len(e.Attributes)
	}
	return map[string]WebShopFigure{
		"products":                  {"1,181,436", "WebShop's items_shuffle.json"},
		"goals":                     {"12,087", "WebShop's human instructions"},
		"human_instructions_pct":    {"100", "by definition"},
		"words_per_instruction":     {fmt.Sprintf("%.1f", perIns), "computed from human_goals.json"},
		"distinct_words_per_1000":   {fmt.Sprintf("%.0f", per1000), "computed from human_goals.json"},
		"title_words_mean":          {"about 21 (10 to 32)", "a real results page and item page in WebShop's tests, nine real sessions"},
		"shared_title_pct":          {"about 0", "no two titles alike on a real results page"},
		"no_mined_attr_pct":         {fmt.Sprintf("%.1f", 100*float64(none)/float64(len(m))), "computed from items_ins_v2_1000.json"},
		"mined_attrs_mean":          {fmt.Sprintf("%.2f", float64(mined)/float64(len(m))), "computed from items_ins_v2_1000.json"},
		"no_price_pct":              {"common", "8 of 10 products on a real fashion results page show $100.0 (no pricing)"},
		"goals_without_options_pct": {"22 to 35", "3 of 9 real sessions; 35.6% of instructions name no colour, size or pack"},
		"target_rank1_pct":          {"rare", "the target showed on a results page once in nine real sessions"},
		"rule_score":                {"45.6", "WebShop paper, 500 test goals"},
		"rule_success_pct":          {"9.6", "WebShop paper, 500 test goals"},
	}
}
