package shopgen

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"

	"shopagent/env"
	"shopagent/env/webshopdata"
)

// Config holds the generator's knobs. Start from DefaultConfig; Generate uses
// every field as given.
type Config struct {
	// Goals selects WebShop's human instructions by their index in WebShop's
	// goal order: "all" (12,087), a count N (the first N) or index ranges
	// ("0-49,500-549,1500-1699"). Splits follow WebShop's boundaries: test =
	// indices below 500, dev = below 1,500, train = the rest.
	Goals string
	// Products is the size of the catalogue; 0 means ProductsPerGoal per
	// goal. Every goal gets Products / goals products (its target first),
	// from 1 to 256.
	Products int
	// ProductsPerGoal is the catalogue size per goal when Products is 0.
	ProductsPerGoal int
	// Seed selects the catalogue; the same config gives byte-identical files,
	// and a goal's products depend only on the seed and the goal's index.
	Seed int64

	// Siblings is the mean number of near-duplicates of the target (same
	// product, another title) per goal; each misses one requirement (an
	// attribute, the wanted option value or the price cap), or, with
	// probability DuplicateShare, nothing.
	Siblings       float64
	DuplicateShare float64
	// Distractors is the mean number of products of another kind named after
	// the goal's product ("Hair Extension Storage Bag") per goal.
	Distractors float64
	// FillerType is the probability that a filler (another product of the
	// goal's sub-category) is named with the goal's product type, and
	// FillerKeywords and FillerAttributes the probabilities that it shares
	// each of the instruction's other words and each goal attribute.
	FillerType       float64
	FillerKeywords   float64
	FillerAttributes float64
	// FillerNearAttributes is the probability that a filler has, for a goal
	// attribute it lacks, one sharing a word with it ("dairy free" for
	// "gluten free") or that word alone in its title.
	FillerNearAttributes float64

	// AttrOnlyMined is the probability that a goal attribute of the target
	// is in its mined attributes only (not in its text); AttrUnsearchable
	// that it is written only in later bullet points, which WebShop's search
	// does not index.
	AttrOnlyMined    float64
	AttrUnsearchable float64
	// NoAttributesRate is the share of other products with no mined
	// attribute (WebShop's 1,000-product sample: 18.5% of all products).
	NoAttributesRate float64
	// NoPriceFashion and NoPriceOther are the shares of products without
	// pricing (WebShop then shows $100.0 and uses 100 in the reward);
	// TargetNoPrice is that share among targets (a target without pricing
	// gets a cap of 110 to 140 dollars).
	NoPriceFashion float64
	NoPriceOther   float64
	TargetNoPrice  float64
	// PriceRangeRate is the share of priced products priced as a range.
	PriceRangeRate float64
	// EmptyDescRate is the share of products with an empty description.
	EmptyDescRate float64
	// NoisyQueryRate is the share of products whose query field (WebShop's
	// scraping query) is another sub-category's.
	NoisyQueryRate float64
	// ImageRate is the share of products with an image URL.
	ImageRate float64
	// SyntheticInsRate is the share of products with at least two mined
	// attributes that get WebShop's synthetic "Find me ..." instruction in
	// items_ins_v2.json (WebShop's 1,000-product sample: 41.5%).
	SyntheticInsRate float64
	// Workers is the number of goroutines (0 = GOMAXPROCS); the output does
	// not depend on it.
	Workers int
}

// DefaultConfig returns the calibrated defaults (docs/ENV.md): the first
// 2,500 goals (WebShop's 500 test, 1,000 dev and 1,000 train goals), 10
// products per goal, seed 1.
func DefaultConfig() Config {
	return Config{
		Goals:                "2500",
		ProductsPerGoal:      10,
		Seed:                 1,
		Siblings:             1.5,
		DuplicateShare:       0.05,
		Distractors:          4,
		FillerType:           0.8,
		FillerKeywords:       0.9,
		FillerAttributes:     0.02,
		FillerNearAttributes: 1,
		AttrOnlyMined:        0.4,
		AttrUnsearchable:     0.5,
		NoAttributesRate:     0.23,
		NoPriceFashion:       0.5,
		NoPriceOther:         0.25,
		TargetNoPrice:        0.1,
		PriceRangeRate:       0.1,
		EmptyDescRate:        0.08,
		NoisyQueryRate:       0.04,
		ImageRate:            1,
		SyntheticInsRate:     0.4,
	}
}

// MaxProducts is the largest catalogue Generate makes (WebShop's size).
const MaxProducts = 1181436

// maxPerGoal bounds the products of one goal (their ASINs are keyed by
// goal index * maxPerGoal + position).
const maxPerGoal = 256

// SelectGoals returns the WebShop goal indices a Goals spec selects, sorted.
func SelectGoals(spec string) ([]int, error) {
	spec = strings.TrimSpace(spec)
	n := webshopdata.NumHumanGoals
	if spec == "" || spec == "all" {
		out := make([]int, n)
		for i := range out {
			out[i] = i
		}
		return out, nil
	}
	if k, err := strconv.Atoi(spec); err == nil {
		if k < 1 || k > n {
			return nil, fmt.Errorf("goals %d: want 1..%d", k, n)
		}
		return SelectGoals(fmt.Sprintf("0-%d", k-1))
	}
	seen := map[int]bool{}
	var out []int
	for _, part := range strings.Split(spec, ",") {
		lo, hi, isRange := strings.Cut(strings.TrimSpace(part), "-")
		a, err1 := strconv.Atoi(lo)
		b := a
		var err2 error
		if isRange {
			b, err2 = strconv.Atoi(hi)
		}
		if err1 != nil || err2 != nil || a < 0 || b < a || b >= n {
			return nil, fmt.Errorf("goals %q: bad range %q (want N, all, or ranges like 0-49,500-549 within 0..%d)", spec, part, n-1)
		}
		for i := a; i <= b; i++ {
			if !seen[i] {
				seen[i] = true
				out = append(out, i)
			}
		}
	}
	slices.Sort(out)
	return out, nil
}

// Size returns the number of goals and products Generate writes for the configuration
// (an error for a configuration Generate refuses).
func (c Config) Size() (goals, products int, err error) {
	idx, err := SelectGoals(c.Goals)
	if err != nil {
		return 0, 0, err
	}
	per, err := c.validate(len(idx))
	if err != nil {
		return 0, 0, err
	}
	for _, n := range per {
		products += n
	}
	return len(idx), products, nil
}

func (c Config) validate(goals int) (perGoal []int, err error) {
	rate := func(name string, v float64) error {
		if !(v >= 0 && v <= 1) {
			return fmt.Errorf("generate: %s = %v, want 0..1", name, v)
		}
		return nil
	}
	for _, x := range []struct {
		n string
		v float64
	}{{"DuplicateShare", c.DuplicateShare}, {"FillerType", c.FillerType}, {"FillerKeywords", c.FillerKeywords},
		{"FillerAttributes", c.FillerAttributes}, {"FillerNearAttributes", c.FillerNearAttributes}, {"AttrOnlyMined", c.AttrOnlyMined}, {"AttrUnsearchable", c.AttrUnsearchable},
		{"NoAttributesRate", c.NoAttributesRate}, {"NoPriceFashion", c.NoPriceFashion}, {"NoPriceOther", c.NoPriceOther}, {"TargetNoPrice", c.TargetNoPrice},
		{"PriceRangeRate", c.PriceRangeRate}, {"EmptyDescRate", c.EmptyDescRate}, {"NoisyQueryRate", c.NoisyQueryRate},
		{"ImageRate", c.ImageRate}, {"SyntheticInsRate", c.SyntheticInsRate}} {
		if err := rate(x.n, x.v); err != nil {
			return nil, err
		}
	}
	if c.AttrOnlyMined+c.AttrUnsearchable > 1 {
		return nil, errors.New("generate: AttrOnlyMined + AttrUnsearchable > 1")
	}
	if c.Siblings < 0 || c.Distractors < 0 {
		return nil, errors.New("generate: Siblings and Distractors must be >= 0")
	}
	total := c.Products
	if total == 0 {
		if c.ProductsPerGoal < 1 {
			return nil, fmt.Errorf("generate: ProductsPerGoal = %d, want >= 1 (start from DefaultConfig)", c.ProductsPerGoal)
		}
		total = c.ProductsPerGoal * goals
	}
	if total < goals || total > MaxProducts || total > goals*maxPerGoal {
		return nil, fmt.Errorf("generate: %d products for %d goals: want %d..%d (1 to %d per goal, at most %d)",
			total, goals, goals, min(MaxProducts, goals*maxPerGoal), maxPerGoal, MaxProducts)
	}
	perGoal = make([]int, goals)
	for i := range perGoal {
		perGoal[i] = total / goals
		if i < total%goals {
			perGoal[i]++
		}
	}
	return perGoal, nil
}

// goalOut is what one goal contributes to the files: JSON records and
// entries joined by ",\n".
type goalOut struct {
	products []byte
	attrs    []byte
	human    []byte
	goal     env.GoalRecord
}

// Generate writes the built-in shop into dir (created if needed): WebShop's
// three files (items_shuffle.json, items_ins_v2.json, items_human_ins.json)
// and goals.json, the goals in WebShop's order with WebShop's splits. The
// goals are WebShop's human instructions (cfg.Goals selects them); each
// goal's products are built backwards from its instruction (see the package
// comment). progress, when not nil, is called with the number of goals done.
func Generate(cfg Config, dir string, progress func(done, total int)) error {
	idx, err := SelectGoals(cfg.Goals)
	if err != nil {
		return err
	}
	perGoal, err := cfg.validate(len(idx))
	if err != nil {
		return err
	}
	d, err := loadData()
	if err != nil {
		return err
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return fmt.Errorf("generate: %w", err)
	}
	instructions := webshopdata.HumanGoals()
	workers := cfg.Workers
	if workers <= 0 {
		workers = runtime.GOMAXPROCS(0)
	}
	w, err := newShopWriter(dir)
	if err != nil {
		return err
	}
	defer w.abort()
	outs := make([]*goalOut, len(idx))
	records := make([]env.GoalRecord, len(idx))
	asins := newASINer(cfg.Seed)
	var cache subCache
	var mu sync.Mutex
	done, written := 0, 0
	next := make(chan int)
	var wg sync.WaitGroup
	var firstErr error
	for range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for k := range next {
				o, err := d.goal(&cfg, idx[k], instructions[idx[k]], perGoal[k], asins, &cache)
				mu.Lock()
				if err != nil && firstErr == nil {
					firstErr = err
				}
				if err == nil {
					outs[k], records[k] = o, o.goal
					// Write finished goals in goal order and let them go.
					for written < len(outs) && outs[written] != nil && firstErr == nil {
						if err := w.write(outs[written]); err != nil {
							firstErr = err
						}
						outs[written] = nil
						written++
					}
				}
				done++
				if progress != nil {
					progress(done, len(idx))
				}
				mu.Unlock()
			}
		}()
	}
	for k := range idx {
		next <- k
	}
	close(next)
	wg.Wait()
	if firstErr != nil {
		return firstErr
	}
	if err := w.finish(); err != nil {
		return err
	}
	return writeGoals(dir, idx, records)
}

// goal builds and encodes one goal's products.
func (d *data) goal(cfg *Config, index int, instruction string, n int, asins asiner, cache *subCache) (*goalOut, error) {
	r := rand.New(rand.NewPCG(uint64(cfg.Seed), uint64(index)))
	req := d.parse(instruction)
	b := &goalBuild{d: d, cfg: cfg, r: r, req: req}
	b.sub = d.subFor(&req, cache)
	prods := b.build(n)
	out := &goalOut{}
	order := r.Perm(len(prods)) // file order within the goal; the target is not always first
	recs := make([]env.RawProduct, len(prods))
	var targetTitle string
	var targetASIN string
	for k, p := range prods {
		asin := asins.asin(index*maxPerGoal + k)
		t := p.render()
		recs[k] = p.record(asin, t)
		if k == 0 {
			targetTitle, targetASIN = t.title, asin
		}
		if err := p.checkRole(b, t); err != nil {
			return nil, fmt.Errorf("goal %d (%q): %s product %d: %w", index, instruction, roleName(p.role), k, err)
		}
	}
	var pb, ab, hb bytes.Buffer
	for _, k := range order {
		p := prods[k]
		rec := recs[k]
		if pb.Len() > 0 {
			pb.WriteString(",\n")
			ab.WriteString(",\n")
		}
		if err := encode(&pb, rec); err != nil {
			return nil, err
		}
		writeAttrs(&ab, rec.ASIN, p, r, cfg)
	}
	target := prods[0]
	opts := make([]string, len(req.Options))
	for i, o := range req.Options {
		opts[i] = o.Value
	}
	hb.WriteString(jsonString(targetASIN) + ": ")
	if err := encode(&hb, []env.RawHumanInstruction{{ASIN: targetASIN, Instruction: instruction,
		InstructionAttributes: req.Attributes, InstructionOptions: opts}}); err != nil {
		return nil, err
	}
	out.products, out.attrs, out.human = pb.Bytes(), ab.Bytes(), hb.Bytes()
	priceText := ""
	if b.cap < 1000000 {
		priceText = fmt.Sprintf(", and price lower than %.2f dollars", b.cap)
	}
	out.goal = env.GoalRecord{ASIN: targetASIN, Category: target.sub.cat.name, Query: target.query, Name: targetTitle,
		ProductCategory: target.sub.path, Instruction: strings.Trim(instruction, ".") + priceText,
		Attributes: req.Attributes, PriceUpper: b.cap, GoalOptions: opts, Weight: 1, WebShopIndex: index}
	if out.goal.GoalOptions == nil {
		out.goal.GoalOptions = []string{}
	}
	return out, nil
}

func roleName(r role) string {
	return [...]string{"target", "sibling", "distractor", "filler"}[r]
}

// record is the product as a record of WebShop's items_shuffle.json.
func (p *product) record(asin string, t rendered) env.RawProduct {
	rec := env.RawProduct{ASIN: asin, Name: t.title, FullDescription: t.desc, SmallDescription: env.StringOrList(t.bullets),
		Category: p.sub.cat.name, Query: p.query, ProductCategory: p.sub.path, Images: []string{}}
	if rec.SmallDescription == nil {
		rec.SmallDescription = env.StringOrList{}
	}
	if p.image {
		rec.Images = []string{"https://shopagent.invalid/images/" + asin + ".jpg"}
	}
	switch {
	case p.noPrice:
	case p.priceHi > p.price:
		rec.Pricing = formatPrice(p.price) + " - " + formatPrice(p.priceHi)
	default:
		rec.Pricing = formatPrice(p.price)
	}
	for _, g := range p.opts {
		vals := make([]env.RawOptionValue, len(g.values))
		for i, v := range g.values {
			vals[i] = env.RawOptionValue{Value: titleCase(strings.ReplaceAll(v, " | ", "/"))}
		}
		rec.CustomizationOptions = append(rec.CustomizationOptions, env.RawOptionGroup{Name: titleCase(g.name), Values: vals})
	}
	return rec
}

func formatPrice(v float64) string { return "$" + strconv.FormatFloat(v, 'f', 2, 64) }

// checkRole verifies what the product is for: the target and duplicate
// siblings satisfy the goal; a sibling's missing attribute is absent from its
// text and mined attributes.
func (p *product) checkRole(b *goalBuild, t rendered) error {
	if p.role != roleTarget {
		text := strings.ToLower(t.title + " " + strings.Join(t.bullets, " ") + " " + t.desc)
		for _, m := range p.mustLack {
			if strings.Contains(text, m) || hasRelated(p.attrs, m) {
				return fmt.Errorf("still shows the attribute %q it must lack", m)
			}
		}
		return nil
	}
	for _, g := range b.req.Attributes {
		if !slices.ContainsFunc(p.attrs, func(a *attr) bool { return a.phrase == g }) {
			return fmt.Errorf("lacks goal attribute %q", g)
		}
	}
	for _, o := range b.req.Options {
		if !slices.ContainsFunc(p.opts, func(g optGroup) bool { return slices.Contains(g.values, o.Value) }) {
			return fmt.Errorf("does not offer goal option %q", o.Value)
		}
	}
	if hi := max(p.price, p.priceHi); hi > b.cap {
		return fmt.Errorf("price %v above the cap %v", hi, b.cap)
	}
	return nil
}

// writeAttrs writes the product's items_ins_v2.json entry.
func writeAttrs(buf *bytes.Buffer, asin string, p *product, r *rand.Rand, cfg *Config) {
	rec := env.RawAttributes{Attributes: []string{}}
	if !p.dummy {
		for _, a := range p.attrs {
			rec.Attributes = append(rec.Attributes, a.phrase)
		}
	}
	if len(rec.Attributes) >= 2 && r.Float64() < cfg.SyntheticInsRate {
		var pre, with, forUse []string
		for _, a := range p.attrs {
			switch a.slot {
			case slotFor:
				forUse = append(forUse, a.phrase)
			case slotWith, slotType:
				with = append(with, a.phrase)
			default:
				pre = append(pre, a.phrase)
			}
			rec.InstructionAttributes = append(rec.InstructionAttributes, a.phrase)
		}
		ins := "Find me "
		if len(pre) > 0 {
			ins += strings.Join(pre, ", ") + " "
		}
		ins += p.query
		if len(with) > 0 {
			ins += " with " + strings.Join(with, ", ")
		}
		if len(forUse) > 0 {
			ins += " for " + strings.Join(forUse, ", ")
		}
		rec.Instruction = ins
	}
	buf.WriteString(jsonString(asin) + ": ")
	_ = encode(buf, rec)
}

func jsonString(s string) string {
	b, _ := json.Marshal(s)
	return string(b)
}

// encode writes v as compact JSON without a trailing newline.
func encode(buf *bytes.Buffer, v any) error {
	var tmp bytes.Buffer
	enc := json.NewEncoder(&tmp)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		return err
	}
	buf.Write(bytes.TrimRight(tmp.Bytes(), "\n"))
	return nil
}

// shopWriter streams the three WebShop files through temporary files.
type shopWriter struct {
	paths []string
	files []*os.File
	bufs  []*bufio.Writer
	any   []bool
	done  bool
}

var shopFiles = []struct{ name, open, close string }{
	{env.ProductsFile, "[\n", "\n]\n"},
	{env.AttributesFile, "{\n", "\n}\n"},
	{env.HumanInsFile, "{\n", "\n}\n"},
}

func newShopWriter(dir string) (*shopWriter, error) {
	w := &shopWriter{}
	for _, sf := range shopFiles {
		p := filepath.Join(dir, sf.name)
		f, err := os.Create(p + ".tmp")
		if err != nil {
			w.abort()
			return nil, fmt.Errorf("generate: %w", err)
		}
		w.paths = append(w.paths, p)
		w.files = append(w.files, f)
		b := bufio.NewWriterSize(f, 1<<20)
		b.WriteString(sf.open)
		w.bufs = append(w.bufs, b)
		w.any = append(w.any, false)
	}
	return w, nil
}

func (w *shopWriter) write(o *goalOut) error {
	for i, part := range [][]byte{o.products, o.attrs, o.human} {
		if len(part) == 0 {
			continue
		}
		if w.any[i] {
			w.bufs[i].WriteString(",\n")
		}
		w.any[i] = true
		if _, err := w.bufs[i].Write(part); err != nil {
			return fmt.Errorf("generate: %w", err)
		}
	}
	return nil
}

// finish closes the files and renames them into place.
func (w *shopWriter) finish() error {
	for i, b := range w.bufs {
		b.WriteString(shopFiles[i].close)
		err := b.Flush()
		if cerr := w.files[i].Close(); err == nil {
			err = cerr
		}
		if err == nil {
			err = os.Rename(w.paths[i]+".tmp", w.paths[i])
		}
		if err != nil {
			return fmt.Errorf("generate: %w", err)
		}
	}
	w.done = true
	return nil
}

// abort removes the temporary files of an unfinished write.
func (w *shopWriter) abort() {
	if w.done {
		return
	}
	for i, f := range w.files {
		f.Close()
		os.Remove(w.paths[i] + ".tmp")
	}
}

// writeGoals writes goals.json with WebShop's split boundaries over the
// selected goal indices.
func writeGoals(dir string, idx []int, records []env.GoalRecord) error {
	gf := env.GoalsFileData{Source: "shopagent built-in shop: WebShop's human instructions with products built backwards (env/shopgen)",
		Goals: records}
	split := func(lo, hi int) [2]int {
		a := slices.IndexFunc(idx, func(i int) bool { return i >= lo })
		if a < 0 {
			return [2]int{len(idx), len(idx)}
		}
		b := slices.IndexFunc(idx, func(i int) bool { return i >= hi })
		if b < 0 {
			b = len(idx)
		}
		return [2]int{a, b}
	}
	gf.Splits = env.SplitsRecord{Test: split(0, 500), Dev: split(500, 1500), Train: split(1500, webshopdata.NumHumanGoals)}
	if n := gf.Splits.Test[1] - gf.Splits.Test[0]; n < 500 {
		gf.Splits.Note = fmt.Sprintf("a subset of WebShop's goals: %d of its 500 test goals, %d of its 1,000 dev goals and %d train goals",
			n, gf.Splits.Dev[1]-gf.Splits.Dev[0], gf.Splits.Train[1]-gf.Splits.Train[0])
	}
	return env.WriteGoalsFile(dir, gf)
}

// asiner maps a product key to a unique ASIN: a keyed Feistel permutation
// onto 36^8 codes after "B0".
type asiner struct{ keys [4]uint64 }

const asinSpace = 2821109907456 // 36^8

func splitMix(x uint64) uint64 {
	x += 0x9E3779B97F4A7C15
	x = (x ^ (x >> 30)) * 0xBF58476D1CE4E5B9
	x = (x ^ (x >> 27)) * 0x94D049BB133111EB
	return x ^ (x >> 31)
}

func hashString(s string) uint64 {
	h := uint64(0xcbf29ce484222325)
	for i := 0; i < len(s); i++ {
		h = (h ^ uint64(s[i])) * 0x100000001B3
	}
	return splitMix(h)
}

func newASINer(seed int64) asiner {
	var a asiner
	s := uint64(seed) ^ 0xA5A5A5A5_5A5A5A5A
	for i := range a.keys {
		s = splitMix(s + uint64(i))
		a.keys[i] = s
	}
	return a
}

func (a asiner) permute(x uint64) uint64 {
	const half, mask = 21, 1<<21 - 1
	for {
		l, r := x>>half, x&mask
		for _, k := range a.keys {
			l, r = r, l^(splitMix(r^k)&mask)
		}
		x = l<<half | r
		if x < asinSpace {
			return x
		}
	}
}

func (a asiner) asin(i int) string {
	const digits = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ"
	v := a.permute(uint64(i))
	var b [10]byte
	b[0], b[1] = 'B', '0'
	for j := 9; j >= 2; j-- {
		b[j] = digits[v%36]
		v /= 36
	}
	return string(b[:])
}

// SampleGoals returns a Goals spec of the first test, dev and train goals of
// WebShop's splits ("0-19,500-519,1500-1559" for 20, 20, 60): a small shop
// with all three splits, for tests and quick runs.
func SampleGoals(test, dev, train int) string {
	var parts []string
	for _, s := range []struct{ start, n int }{{0, min(test, 500)}, {500, min(dev, 1000)}, {1500, min(train, webshopdata.NumHumanGoals-1500)}} {
		if s.n > 0 {
			parts = append(parts, fmt.Sprintf("%d-%d", s.start, s.start+s.n-1))
		}
	}
	return strings.Join(parts, ",")
}
