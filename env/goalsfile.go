package env

import (
	"bufio"
	"encoding/json"
	"fmt"
	"os"
)

// GoalsFile is the file name of a shop's explicit goal list (the built-in
// shop writes one beside WebShop's three files).
const GoalsFile = "goals.json"

// GoalRecord is one goal in WebShop's goal dict shape (as WebShop's
// get_human_goals builds it), with the goal's index in WebShop's goal order.
type GoalRecord struct {
	ASIN            string   `json:"asin"`
	Category        string   `json:"category"`
	Query           string   `json:"query"`
	Name            string   `json:"name"`
	ProductCategory string   `json:"product_category"`
	Instruction     string   `json:"instruction_text"`
	Attributes      []string `json:"attributes"`
	PriceUpper      float64  `json:"price_upper"`
	GoalOptions     []string `json:"goal_options"`
	Weight          float64  `json:"weight"`
	// WebShopIndex is the goal's position in WebShop's goal order (its
	// split follows: test below 500, dev below 1,500, train after).
	WebShopIndex int `json:"webshop_index"`
}

// GoalsFileData is the content of goals.json: the goals in order and the
// index ranges of the splits over them.
type GoalsFileData struct {
	// Source says where the goals come from.
	Source string       `json:"source"`
	Splits SplitsRecord `json:"splits"`
	Goals  []GoalRecord `json:"goals"`
}

// SplitsRecord holds [start, end) ranges into the goal list.
type SplitsRecord struct {
	Test  [2]int `json:"test"`
	Dev   [2]int `json:"dev"`
	Train [2]int `json:"train"`
	Note  string `json:"note,omitempty"`
}

// Goal converts a record to a Goal (human-goal semantics: options are values).
func (r GoalRecord) Goal() Goal {
	g := Goal{ASIN: r.ASIN, Category: r.Category, Query: r.Query, ProductCategory: r.ProductCategory, Name: r.Name,
		Instruction: r.Instruction, Attributes: r.Attributes, PriceUpper: r.PriceUpper, Weight: r.Weight}
	for _, v := range r.GoalOptions {
		g.Options = append(g.Options, GoalOption{Value: v})
	}
	return g
}

// WriteGoalsFile writes goals.json into dir (through a temporary file).
func WriteGoalsFile(dir string, data GoalsFileData) error {
	path := dir + string(os.PathSeparator) + GoalsFile
	tmp := path + ".tmp"
	f, err := os.Create(tmp)
	if err != nil {
		return fmt.Errorf("write goals: %w", err)
	}
	w := bufio.NewWriter(f)
	enc := json.NewEncoder(w)
	enc.SetEscapeHTML(false)
	err = enc.Encode(data)
	if err == nil {
		err = w.Flush()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp, path)
	}
	if err != nil {
		os.Remove(tmp)
		return fmt.Errorf("write goals: %w", err)
	}
	return nil
}

// ReadGoalsFile reads goals.json and checks it against the catalog: every
// goal's product exists, every goal has attributes, and the split ranges lie
// within the goal list.
func ReadGoalsFile(path string, c *Catalog) ([]Goal, Splits, error) {
	var data GoalsFileData
	if err := readJSONFile(path, &data); err != nil {
		return nil, Splits{}, err
	}
	goals := make([]Goal, len(data.Goals))
	for i, r := range data.Goals {
		if _, ok := c.ByASIN(r.ASIN); !ok {
			return nil, Splits{}, fmt.Errorf("%s: goal %d: product %q is not in the catalog", path, i, r.ASIN)
		}
		if len(r.Attributes) == 0 {
			return nil, Splits{}, fmt.Errorf("%s: goal %d: no attributes (WebShop skips such goals)", path, i)
		}
		goals[i] = r.Goal()
	}
	s := data.Splits
	for _, r := range [][2]int{s.Test, s.Dev, s.Train} {
		if r[0] < 0 || r[1] < r[0] || r[1] > len(goals) {
			return nil, Splits{}, fmt.Errorf("%s: split range %v outside the %d goals", path, r, len(goals))
		}
	}
	return goals, Splits{Test: s.Test, Dev: s.Dev, Train: s.Train, Note: s.Note}, nil
}
