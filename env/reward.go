package env

import (
	_ "embed"
	"shopagent/env/pyport"
	"shopagent/env/webshopdata"
	"strings"
	"sync"
	"unicode"

	"github.com/jdkato/prose/v2"
)

// RewardInfo holds the components of WebShop's reward for one purchase.
type RewardInfo struct {
	Reward float64 `json:"reward"`
	// RType is the type reward (1.0, 0.5, 0.1 or 0.0).
	RType         float64 `json:"r_type"`
	QueryMatch    bool    `json:"query_match"`
	CategoryMatch bool    `json:"category_match"`
	TitleScore    float64 `json:"title_score"`
	// RAtt is the fraction of goal attributes matched; NumAttMatches their count.
	RAtt          float64 `json:"r_att"`
	NumAttMatches int     `json:"num_att_matches"`
	WAtt          float64 `json:"w_att"`
	// ROption is nil when the goal asks for no options.
	ROption       *float64 `json:"r_option"`
	NumOptMatches int      `json:"num_option_matches"`
	WOption       float64  `json:"w_option"`
	RPrice        bool     `json:"r_price"`
	WPrice        float64  `json:"w_price"`
}

// Scorer computes WebShop's reward. It tags product titles with a
// part-of-speech tagger (prose's averaged perceptron in place of WebShop's
// spaCy) and caches title nouns; it is safe for concurrent use.
type Scorer struct {
	colors    []string
	colorSet  map[string]bool
	modelOnce sync.Once
	model     *prose.Model
	nouns     sync.Map // title -> []string
}

// NewScorer returns a Scorer with WebShop's colour list.
func NewScorer() *Scorer {
	s := &Scorer{colors: webshopdata.Colors(), colorSet: map[string]bool{}}
	for _, c := range s.colors {
		s.colorSet[c] = true
	}
	return s
}

// Colors returns WebShop's colour names in normalisation order.
func (s *Scorer) Colors() []string { return s.colors }

// TitleNouns returns the lowercased NOUN/PROPN tokens of a title, with
// duplicates, in order. Tokens without a letter (numbers, punctuation) are
// dropped, since spaCy tags those NUM or PUNCT where prose says NN.
func (s *Scorer) TitleNouns(title string) []string {
	if v, ok := s.nouns.Load(title); ok {
		return v.([]string)
	}
	s.modelOnce.Do(func() { s.model = prose.ModelFromData("en") })
	doc, err := prose.NewDocument(title, prose.UsingModel(s.model),
		prose.WithExtraction(false), prose.WithSegmentation(false))
	out := []string{}
	if err == nil {
		for _, t := range doc.Tokens() {
			switch t.Tag {
			case "NN", "NNS", "NNP", "NNPS":
				if strings.IndexFunc(t.Text, unicode.IsLetter) >= 0 {
					out = append(out, strings.ToLower(t.Text))
				}
			}
		}
	}
	s.nouns.Store(title, out)
	return out
}

// NormalizeColor returns the first WebShop colour contained in v, or v.
func (s *Scorer) NormalizeColor(v string) string {
	for _, c := range s.colors {
		if strings.Contains(v, c) {
			return c
		}
	}
	return v
}

// TypeReward computes r_type and its parts for buying p against goal g.
func (s *Scorer) TypeReward(p *Product, g *Goal) (rType float64, queryMatch, categoryMatch bool, titleScore float64) {
	queryMatch = p.Query == g.Query
	pc := categorySet(p.ProductCategory)
	common := 0
	for c := range categorySet(g.ProductCategory) {
		if pc[c] {
			common++
		}
	}
	categoryMatch = common >= 2
	desired := s.TitleNouns(g.Name)
	if len(desired) == 0 {
		titleScore = 0.2
	} else {
		have := map[string]bool{}
		for _, t := range s.TitleNouns(p.Title) {
			have[t] = true
		}
		inter := map[string]bool{}
		for _, t := range desired {
			if have[t] {
				inter[t] = true
			}
		}
		titleScore = float64(len(inter)) / float64(len(desired))
	}
	rType = 1.0
	if !(queryMatch || categoryMatch || titleScore > 0.2) {
		rType = 0.5
	}
	if titleScore < 0.1 {
		rType = 0.1
	}
	if titleScore == 0 {
		rType = 0
	}
	return rType, queryMatch, categoryMatch, titleScore
}

func categorySet(pc string) map[string]bool {
	set := map[string]bool{}
	for _, part := range strings.Split(pc, "›") {
		set[strings.TrimSpace(part)] = true
	}
	return set
}

// AttributeReward counts the goal attributes matched by the product: a
// product attribute with token_set_ratio > 85, or a substring of the
// lowercased title, bullet points or description.
func (s *Scorer) AttributeReward(p *Product, goalAttrs []string) (float64, int) {
	if len(goalAttrs) == 0 {
		return 0, 0 // WebShop divides by zero here; goals always have attributes.
	}
	var title, bullets, desc string
	n := 0
	for _, g := range goalAttrs {
		matched := false
		for _, a := range p.Attributes {
			if pyport.TokenSetRatio(a, g) > 85 {
				matched = true
				break
			}
		}
		if !matched {
			if title == "" {
				title = strings.ToLower(p.Title)
				bullets = strings.ToLower(strings.Join(p.BulletPoints, " "))
				desc = strings.ToLower(p.Description)
			}
			matched = strings.Contains(title, g) || strings.Contains(bullets, g) || strings.Contains(desc, g)
		}
		if matched {
			n++
		}
	}
	return float64(n) / float64(len(goalAttrs)), n
}

// OptionReward counts the goal options matched by the purchased option
// values (token_set_ratio > 85 after colour normalisation). Synthetic goal
// options are compared as "name value" unless the name or value is exactly a
// colour, as WebShop's normalize_color does on a (name, value) tuple.
func (s *Scorer) OptionReward(purchased []string, goal []GoalOption, synthetic bool) (*float64, int) {
	ps := make([]string, len(purchased))
	for i, v := range purchased {
		ps[i] = s.NormalizeColor(v)
	}
	n := 0
	for _, o := range goal {
		var g string
		if synthetic {
			g = o.Name + " " + o.Value
			for _, c := range s.colors {
				if c == o.Name || c == o.Value {
					g = c
					break
				}
			}
		} else {
			g = s.NormalizeColor(o.Value)
		}
		for _, p := range ps {
			if pyport.TokenSetRatio(p, g) > 85 {
				n++
				break
			}
		}
	}
	if len(goal) == 0 {
		return nil, 0
	}
	r := float64(n) / float64(len(goal))
	return &r, n
}

// Reward computes WebShop's reward for buying p at price with the chosen
// option values (in the order they are held) against goal g.
func (s *Scorer) Reward(p *Product, g *Goal, price float64, options []string) RewardInfo {
	var info RewardInfo
	info.RType, info.QueryMatch, info.CategoryMatch, info.TitleScore = s.TypeReward(p, g)
	info.RPrice = price <= g.PriceUpper
	info.RAtt, info.NumAttMatches = s.AttributeReward(p, g.Attributes)
	info.ROption, info.NumOptMatches = s.OptionReward(options, g.Options, g.Synthetic)
	denom := float64(len(g.Attributes) + len(g.Options) + 1)
	priceOK := 0.0
	if info.RPrice {
		priceOK = 1
	}
	// WebShop's order: divide, then multiply by r_type (the float results differ otherwise).
	info.Reward = (float64(info.NumAttMatches+info.NumOptMatches) + priceOK) / denom
	info.Reward *= info.RType
	info.WAtt = float64(len(g.Attributes)) / denom
	info.WOption = float64(len(g.Options)) / denom
	info.WPrice = 1 / denom
	return info
}
