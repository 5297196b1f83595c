package env

import (
	"bufio"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"os"
	"path/filepath"
	"shopagent/env/pyport"
	"sort"
	"strconv"
	"strings"
)

// OptionGroup is one named group of option values of a product ("color":
// ["black", "dark brown"]), normalised as WebShop does.
type OptionGroup struct {
	Name   string
	Values []string
}

// HumanInstruction is a human-written instruction for a product, from
// items_human_ins.json.
type HumanInstruction struct {
	Instruction string
	Attributes  []string
	Options     []string
}

// Product is one catalog item after WebShop's cleaning rules.
type Product struct {
	ASIN            string
	Title           string
	Description     string
	BulletPoints    []string
	Category        string
	Query           string
	ProductCategory string
	// PriceText is the price as shown on pages: "$10.99" or "$5.99 to $7.99".
	PriceText string
	// Pricing holds the parsed price, or the low and high end of a range.
	Pricing []float64
	// Price is the price used by the reward: the value, or for a range a
	// uniform draw in [lo, hi] made once at load from the load seed.
	Price      float64
	Options    []OptionGroup
	Attributes []string
	// Instruction and InstructionAttributes come from items_ins_v2 and drive
	// synthetic goals; HumanInstructions drive human goals.
	Instruction           string
	InstructionAttributes []string
	HumanInstructions     []HumanInstruction
	Rating                string
	MainImage             string
}

// Catalog is a loaded, immutable product catalog.
type Catalog struct {
	Products []Product
	byASIN   map[string]int
}

// LoadOptions says which WebShop files to read and how.
type LoadOptions struct {
	// ProductsPath is an items_shuffle*.json file (required).
	ProductsPath string
	// AttributesPath is an items_ins_v2*.json file (optional).
	AttributesPath string
	// HumanInsPath is an items_human_ins.json file (optional).
	HumanInsPath string
	// GoalsPath is a goals.json file (optional; the built-in shop writes one).
	GoalsPath string
	// Limit keeps only the first Limit records of the products file (0 = all),
	// like WebShop's num_products.
	Limit int
	// Seed seeds the draw of a price inside a price range (WebShop leaves it
	// unseeded; it follows Python's random.uniform on a PyRandom(Seed)).
	Seed uint64
}

// FindDataFiles fills the file paths of LoadOptions from a data directory:
// items_shuffle.json (or another items_shuffle*.json), items_ins_v2*.json,
// items_human_ins.json and goals.json.
func FindDataFiles(dir string) (LoadOptions, error) {
	var o LoadOptions
	pick := func(exact, pattern string) (string, error) {
		p := filepath.Join(dir, exact)
		if _, err := os.Stat(p); err == nil {
			return p, nil
		}
		m, err := filepath.Glob(filepath.Join(dir, pattern))
		if err != nil {
			return "", err
		}
		sort.Strings(m)
		if len(m) == 0 {
			return "", nil
		}
		return m[0], nil
	}
	var err error
	if o.ProductsPath, err = pick(ProductsFile, "items_shuffle*.json"); err != nil {
		return o, err
	}
	if o.ProductsPath == "" {
		return o, fmt.Errorf("no %s (or items_shuffle*.json) in %s", ProductsFile, dir)
	}
	if o.AttributesPath, err = pick(AttributesFile, "items_ins_v2*.json"); err != nil {
		return o, err
	}
	if o.HumanInsPath, err = pick(HumanInsFile, "items_human_ins*.json"); err != nil {
		return o, err
	}
	if o.GoalsPath, err = pick(GoalsFile, GoalsFile); err != nil {
		return o, err
	}
	return o, nil
}

// LoadCatalog reads WebShop's files and applies WebShop's cleaning rules:
// records with asin "nan", longer than 10 characters or already seen are
// skipped; prices are parsed; option names and values are normalised;
// attributes come from the attributes file or are ["DUMMY_ATTR"].
func LoadCatalog(o LoadOptions) (*Catalog, error) {
	return loadCatalog(o, pyport.NewRandom(o.Seed))
}

// loadCatalog draws range prices from rng, so that a caller can go on drawing
// goals from the same generator as WebShop does.
func loadCatalog(o LoadOptions, rng *pyport.Random) (*Catalog, error) {
	attrs := map[string]RawAttributes{}
	if o.AttributesPath != "" {
		if err := readJSONFile(o.AttributesPath, &attrs); err != nil {
			return nil, err
		}
	}
	human := map[string][]RawHumanInstruction{}
	if o.HumanInsPath != "" {
		if err := readJSONFile(o.HumanInsPath, &human); err != nil {
			return nil, err
		}
	}
	c := &Catalog{byASIN: map[string]int{}}
	err := streamProducts(o.ProductsPath, o.Limit, func(i int, rp *RawProduct) error {
		if rp.ASIN == "nan" || len(rp.ASIN) > 10 {
			return nil
		}
		if _, dup := c.byASIN[rp.ASIN]; dup {
			return nil
		}
		p, err := cleanProduct(rp)
		if err != nil {
			return fmt.Errorf("%s: record %d (asin %q): %w", o.ProductsPath, i, rp.ASIN, err)
		}
		if a, ok := attrs[p.ASIN]; ok && a.Attributes != nil {
			p.Attributes = a.Attributes
		} else {
			p.Attributes = []string{"DUMMY_ATTR"}
		}
		if a, ok := attrs[p.ASIN]; ok && a.Instruction != "" {
			p.Instruction = a.Instruction
			p.InstructionAttributes = a.InstructionAttributes
		}
		for _, h := range human[p.ASIN] {
			p.HumanInstructions = append(p.HumanInstructions, HumanInstruction{
				Instruction: h.Instruction, Attributes: h.InstructionAttributes, Options: h.InstructionOptions,
			})
		}
		c.byASIN[p.ASIN] = len(c.Products)
		c.Products = append(c.Products, p)
		return nil
	})
	if err != nil {
		return nil, err
	}
	// Prices of ranges are drawn once, in product order, like WebShop's
	// generate_product_prices (which uses Python's random.uniform).
	for i := range c.Products {
		p := &c.Products[i]
		switch len(p.Pricing) {
		case 0:
			p.Price = 100
		case 1:
			p.Price = p.Pricing[0]
		default:
			p.Price = rng.Uniform(p.Pricing[0], p.Pricing[1])
		}
	}
	return c, nil
}

// LoadCatalogDir is FindDataFiles followed by LoadCatalog with the given seed.
func LoadCatalogDir(dir string, seed uint64) (*Catalog, error) {
	o, err := FindDataFiles(dir)
	if err != nil {
		return nil, err
	}
	o.Seed = seed
	return LoadCatalog(o)
}

// ByASIN returns the index of the product with this ASIN (case-sensitive).
func (c *Catalog) ByASIN(asin string) (int, bool) {
	i, ok := c.byASIN[asin]
	return i, ok
}

// NewCatalog builds a catalog from already-cleaned products (tests, tools).
// Duplicate ASINs after the first are dropped.
func NewCatalog(products []Product) *Catalog {
	c := &Catalog{byASIN: map[string]int{}}
	for _, p := range products {
		if _, dup := c.byASIN[p.ASIN]; dup {
			continue
		}
		c.byASIN[p.ASIN] = len(c.Products)
		c.Products = append(c.Products, p)
	}
	return c
}

func cleanProduct(rp *RawProduct) (Product, error) {
	p := Product{
		ASIN:            rp.ASIN,
		Title:           rp.Name,
		Description:     rp.FullDescription,
		BulletPoints:    []string(rp.SmallDescription),
		Category:        rp.Category,
		Query:           strings.TrimSpace(strings.ToLower(rp.Query)),
		ProductCategory: rp.ProductCategory,
		Rating:          "N.A.",
	}
	if p.BulletPoints == nil {
		p.BulletPoints = []string{}
	}
	if len(rp.Images) > 0 {
		p.MainImage = rp.Images[0]
	}
	pricing, text, err := ParsePricing(rp.Pricing)
	if err != nil {
		return p, err
	}
	p.Pricing, p.PriceText = pricing, text
	p.Options = NormalizeOptions(rp.CustomizationOptions)
	return p, nil
}

// NormalizeOptions applies WebShop's option rules: groups stored as null are
// skipped; names are lowercased (a repeated name keeps its first position and
// the last values, like a Python dict); values are trimmed, "/" becomes " | ",
// and lowercased.
func NormalizeOptions(raw RawOptions) []OptionGroup {
	var out []OptionGroup
	pos := map[string]int{}
	for _, g := range raw {
		if g.Values == nil {
			continue
		}
		name := strings.ToLower(g.Name)
		vals := make([]string, len(g.Values))
		for i, v := range g.Values {
			vals[i] = NormalizeOptionValue(v.Value)
		}
		if i, ok := pos[name]; ok {
			out[i].Values = vals
			continue
		}
		pos[name] = len(out)
		out = append(out, OptionGroup{Name: name, Values: vals})
	}
	return out
}

// NormalizeOptionValue trims, replaces "/" with " | " and lowercases, as
// WebShop does for option values.
func NormalizeOptionValue(v string) string {
	return strings.ToLower(strings.ReplaceAll(strings.TrimSpace(v), "/", " | "))
}

// ParsePricing parses a WebShop pricing string ("$10.99", "$5.99 - $7.99",
// empty) into values and the page text. No pricing gives [] and "$100.0"
// (the reward then uses 100.0).
func ParsePricing(s string) ([]float64, string, error) {
	if s == "" {
		return nil, "$100.0", nil
	}
	pieces := strings.Split(s, "$")[1:]
	vals := make([]float64, 0, len(pieces))
	for _, piece := range pieces {
		var b strings.Builder
		for _, r := range piece {
			if (r >= '0' && r <= '9') || r == '.' {
				b.WriteRune(r)
			}
		}
		v, err := strconv.ParseFloat(b.String(), 64)
		if err != nil || math.IsInf(v, 0) {
			return nil, "", fmt.Errorf("bad pricing %q: piece %q is not a number", s, piece)
		}
		vals = append(vals, v)
	}
	switch len(vals) {
	case 0:
		// WebShop would crash on Decimal('') here; we say why instead.
		return nil, "", fmt.Errorf("bad pricing %q: no \"$\" amount", s)
	case 1:
		return vals, "$" + pyport.FormatFloat(vals[0]), nil
	default:
		vals = vals[:2]
		return vals, "$" + pyport.FormatFloat(vals[0]) + " to $" + pyport.FormatFloat(vals[1]), nil
	}
}

// streamProducts decodes a JSON list of products one record at a time, so a
// 1.18M-record file never needs a second in-memory copy. Errors name the file
// and the record.
func streamProducts(path string, limit int, fn func(i int, rp *RawProduct) error) error {
	f, err := os.Open(path)
	if err != nil {
		return fmt.Errorf("open products: %w", err)
	}
	defer f.Close()
	dec := json.NewDecoder(bufio.NewReaderSize(f, 1<<20))
	tok, err := dec.Token()
	if err != nil {
		return fmt.Errorf("%s: not a JSON list: %w", path, err)
	}
	if d, ok := tok.(json.Delim); !ok || d != '[' {
		return fmt.Errorf("%s: want a JSON list of products, got %v", path, tok)
	}
	for i := 0; dec.More(); i++ {
		if limit > 0 && i >= limit {
			return nil
		}
		var rp RawProduct
		if err := dec.Decode(&rp); err != nil {
			return fmt.Errorf("%s: record %d (byte %d): %w", path, i, dec.InputOffset(), err)
		}
		if err := fn(i, &rp); err != nil {
			return err
		}
	}
	if _, err := dec.Token(); err != nil {
		return fmt.Errorf("%s: truncated after the last record: %w", path, err)
	}
	return nil
}

func readJSONFile(path string, v any) error {
	f, err := os.Open(path)
	if err != nil {
		return fmt.Errorf("open: %w", err)
	}
	defer f.Close()
	return decodeJSON(path, f, v)
}

func decodeJSON(name string, r io.Reader, v any) error {
	dec := json.NewDecoder(bufio.NewReaderSize(r, 1<<20))
	if err := dec.Decode(v); err != nil {
		var se *json.SyntaxError
		var te *json.UnmarshalTypeError
		switch {
		case errors.As(err, &se):
			return fmt.Errorf("%s: invalid JSON at byte %d: %w", name, se.Offset, err)
		case errors.As(err, &te):
			return fmt.Errorf("%s: field %q at byte %d: %w", name, te.Field, te.Offset, err)
		case errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, io.EOF):
			return fmt.Errorf("%s: truncated JSON: %w", name, err)
		}
		return fmt.Errorf("%s: %w", name, err)
	}
	return nil
}
