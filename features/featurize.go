package features

import (
	"fmt"
	"slices"
	"strings"
	"unicode"

	"shopagent/env"
)

// Featurization: how an observation and its clickables become the texts the choice model
// reads. Everything here works on the observation text and the list of clickables
// (lowercased, in page order) alone; the serving side calls the same functions, so training
// and serving featurize identically.
//
// State. The state is two segments, like a BERT sentence pair: [CLS] instruction [SEP]
// page [SEP]. The instruction segment (token type 1) is the goal's instruction as the page
// shows it; the page segment (token type 0) is the rest of the observation text in
// WebShop's text_rich mode (WebShop's imitation learning reads text_rich states), i.e. the
// observation without its "Instruction:" block, with one more change: on a results page
// the products' entries (button with the product code, title, price) are left out,
// because each product's action text carries its title and price. The instruction is
// capped at MaxInstructionLen tokens (its head is kept); the page fills the rest of the
// state length, truncated from the left (its tail is kept, as WebShop truncates states).
//
// Why: (1) a results page shrinks from about 320 tokens to about 60 (the encoder's cost is
// quadratic in the length: a results-page batch was about 6x slower than an item-page one);
// (2) the choice head must match action words with the instruction, not with the copy of
// the same words the page shows (every option value and, on a results page, every title
// is on the page too): the instruction segment gets its own token type, and the head's
// exact-match feature looks at the instruction segment only. Measured on the built-in shop
// (docs/TRAINING.md): with the raw text_rich state the tiny policy picked the demonstrated
// option value 18% of the time after 4 epochs. text-mode observations (" [SEP] "-separated)
// are accepted too.
//
// Actions. Every clickable except "search" is an action; its text is the clickable label
// without the "click[...]" wrapper (the wrapper would add the same three tokens to every
// action), except for (1) a product on a results page: as WebShop's click_item_name option,
// it reads "item - <title>", here followed by " - <price>" ("item - foo rice - $3.99"), both
// taken from the observation (the line after the product's button), lowercased; a product
// whose title cannot be found reads "item - <asin>"; and (2) an option value that the page
// shows as selected, which reads as the page renders it, "[clicked button] <value>
// [clicked button_]", so that the action itself says it is already chosen (the page
// segment says so too, but the choice head then has to find it there).
//
// Searches are not choices: the agent searches with a QueryProposer (query.go), and the
// choice model is trained and used on click steps only, as WebShop's choice model is.

// ItemActionPrefix starts the action text of a product on a results page.
const ItemActionPrefix = "item - "

// navigationLabels are the clickables of WebShop's pages that are not products or option
// values (lowercased, as clickables are).
var navigationLabels = []string{
	"search", "back to search", "< prev", "next >", "description", "features",
	"reviews", "attributes", "buy now",
}

// IsNavigationLabel reports whether a clickable is one of WebShop's fixed buttons (search,
// back to search, < prev, next >, description, features, reviews, attributes, buy now).
func IsNavigationLabel(c string) bool { return slices.Contains(navigationLabels, c) }

// resultEntry is a product shown on a results page.
type resultEntry struct {
	title, price string
}

// obsFields splits an observation into its visible strings: lines in text_rich mode,
// " [SEP] "-separated fields in text mode. Button markers are removed and fields trimmed.
func obsFields(text string) []string {
	var raw []string
	if strings.Contains(text, "\n") {
		raw = strings.Split(text, "\n")
	} else {
		raw = strings.Split(text, " [SEP] ")
	}
	out := make([]string, 0, len(raw))
	for _, f := range raw {
		f = stripButton(f)
		if f != "" {
			out = append(out, f)
		}
	}
	return out
}

// stripButton removes WebShop's button markers around a field and trims it.
func stripButton(f string) string {
	f = strings.TrimSpace(f)
	for _, m := range [][2]string{{ButtonToken, ButtonEndToken}, {ClickedButtonToken, ClickedButtonEndToken}} {
		if strings.HasPrefix(f, m[0]) && strings.HasSuffix(f, m[1]) {
			return strings.TrimSpace(f[len(m[0]) : len(f)-len(m[1])])
		}
	}
	return f
}

// isResultsPage reports whether an observation is a results page.
func isResultsPage(text string) bool { return strings.Contains(text, "(Total results: ") }

// parseResults maps each product code shown on a results page (lowercased) to its title and
// price: the two visible strings after the product's button.
func parseResults(text string, clickables []string) map[string]resultEntry {
	want := map[string]bool{}
	for _, c := range clickables {
		if !IsNavigationLabel(c) {
			want[c] = true
		}
	}
	out := map[string]resultEntry{}
	fields := obsFields(text)
	for i, f := range fields {
		key := strings.ToLower(f)
		if !want[key] {
			continue
		}
		if _, seen := out[key]; seen {
			continue
		}
		var e resultEntry
		if i+1 < len(fields) {
			e.title = fields[i+1]
		}
		if i+2 < len(fields) && strings.HasPrefix(fields[i+2], "$") {
			e.price = fields[i+2]
		}
		out[key] = e
	}
	return out
}

// ActionTexts returns the text the choice model reads for each clickable (see the file
// comment): the label, "item - <title> - <price>" for a product on a results page, or
// "[clicked button] <value> [clicked button_]" for an option value the page shows as
// selected (text_rich mode). "search" gets its label too, though agents never offer it to
// the model.
func ActionTexts(obsText string, clickables []string) []string {
	out := make([]string, len(clickables))
	var results map[string]resultEntry
	if isResultsPage(obsText) {
		results = parseResults(obsText, clickables)
	}
	var selected map[string]bool
	if results == nil && strings.Contains(obsText, ClickedButtonToken) {
		selected = map[string]bool{}
		for _, line := range strings.Split(obsText, "\n") {
			line = strings.TrimSpace(line)
			if strings.HasPrefix(line, ClickedButtonToken) && strings.HasSuffix(line, ClickedButtonEndToken) {
				selected[strings.ToLower(stripButton(line))] = true
			}
		}
	}
	for i, c := range clickables {
		out[i] = c
		if selected[c] && !IsNavigationLabel(c) {
			out[i] = ClickedButtonToken + " " + c + " " + ClickedButtonEndToken
			continue
		}
		if results == nil || IsNavigationLabel(c) {
			continue
		}
		e, ok := results[c]
		switch {
		case !ok || e.title == "":
			out[i] = ItemActionPrefix + c
		case e.price != "":
			out[i] = ItemActionPrefix + strings.ToLower(e.title) + " - " + e.price
		default:
			out[i] = ItemActionPrefix + strings.ToLower(e.title)
		}
	}
	return out
}

// MaxInstructionLen caps the instruction segment of a state, in tokens.
const MaxInstructionLen = 64

// StateText returns the page segment of a state (see the file comment): the observation
// text without its "Instruction:" block and, on a results page, without the products'
// entries (their action texts carry their titles and prices).
func StateText(obsText string, clickables []string) string {
	results := isResultsPage(obsText)
	codes := map[string]bool{}
	if results {
		for _, c := range clickables {
			if !IsNavigationLabel(c) {
				codes[c] = true
			}
		}
	}
	rich := strings.Contains(obsText, "\n")
	sep := " [SEP] "
	if rich {
		sep = "\n"
	}
	parts := strings.Split(obsText, sep)
	out := make([]string, 0, len(parts))
	for i := 0; i < len(parts); i++ {
		p := parts[i]
		if t := strings.TrimSpace(p); t == "Instruction:" {
			i++ // the instruction itself
			continue
		}
		if results && codes[strings.ToLower(stripButton(p))] {
			// Skip the product's button, its title and its price.
			skip := 1
			if i+skip < len(parts) && stripButton(parts[i+skip]) != "" && !codes[strings.ToLower(stripButton(parts[i+skip]))] {
				skip++
				if i+skip < len(parts) && strings.HasPrefix(strings.TrimSpace(parts[i+skip]), "$") {
					skip++
				}
			}
			i += skip - 1
			continue
		}
		if results && rich && strings.TrimSpace(p) == "" && i > 0 && i+1 < len(parts) {
			continue // the blank line before each product
		}
		out = append(out, p)
	}
	text := strings.Join(out, sep)
	if rich && !strings.HasSuffix(text, "\n") {
		text += "\n"
	}
	return text
}

// ChoiceExample is one decision of the choice model: the instruction, the page text (see
// StateText), the texts of the available actions (ActionTexts order) and, for training,
// the index of the chosen action (-1 when unknown).
type ChoiceExample struct {
	Instruction string
	State       string
	Actions     []string
	// Positions holds, per action, the 1-based position of a product among the results
	// page's products (the search engine's rank on that page), 0 for other actions; nil
	// means all 0.
	Positions []int
	Target    int
}

// MaxResultPosition is the largest product position the policy distinguishes (WebShop shows
// 10 products per results page); later positions count as this one.
const MaxResultPosition = 10

// ChoiceFromObservation builds a ChoiceExample from an observation's text and clickables,
// leaving out "search" (never a choice). It returns the example and, for each of its
// actions, the index of the clickable it stands for.
func ChoiceFromObservation(obsText string, clickables []string) (ChoiceExample, []int) {
	texts := ActionTexts(obsText, clickables)
	ex := ChoiceExample{Instruction: env.ParseInstruction(obsText), State: StateText(obsText, clickables), Target: -1}
	results := isResultsPage(obsText)
	var idx []int
	rank := 0
	for i, c := range clickables {
		if c == "search" {
			continue
		}
		pos := 0
		if results && !IsNavigationLabel(c) {
			rank++
			pos = rank
		}
		ex.Actions = append(ex.Actions, texts[i])
		ex.Positions = append(ex.Positions, pos)
		idx = append(idx, i)
	}
	return ex, idx
}

// EncodedChoice is a ChoiceExample as token ids: the state ([CLS] instruction [SEP] page
// [SEP]) with its token types (1 for the instruction's tokens, 0 for the others), and each
// action ([CLS] ... [SEP], right-truncated) with, per token, whether it is a content token
// (a word piece with a letter or a digit, not a special token): only content tokens count
// in the choice head's exact-match feature.
type EncodedChoice struct {
	State         []int32
	StateTypes    []int32
	Actions       [][]int32
	ActionContent [][]bool
	// Positions are the actions' product positions (see ChoiceExample), capped at
	// MaxResultPosition.
	Positions []int32
	Target    int
}

// isContentToken reports whether a token is a word piece with a letter or a digit.
func isContentToken(t string) bool {
	if t == "" || (strings.HasPrefix(t, "[") && strings.HasSuffix(t, "]")) {
		return false
	}
	for _, r := range t {
		if unicode.IsLetter(r) || unicode.IsDigit(r) {
			return true
		}
	}
	return false
}

// EncodeChoice tokenizes a ChoiceExample with the limits of cfg: the instruction keeps its
// first MaxInstructionLen tokens (at most half the state), the page its last tokens.
func EncodeChoice(tok *Tokenizer, cfg PolicyConfig, ex ChoiceExample) EncodedChoice {
	ins := tok.Encode(ex.Instruction)
	insCap := min(MaxInstructionLen, cfg.MaxStateLen/2)
	if len(ins) > insCap {
		ins = ins[:insCap]
	}
	page := tok.Encode(ex.State)
	room := cfg.MaxStateLen - 3 - len(ins)
	if len(page) > room {
		page = page[len(page)-room:]
	}
	ids := make([]int32, 0, len(ins)+len(page)+3)
	ids = append(ids, tok.CLSID())
	ids = append(ids, ins...)
	ids = append(ids, tok.SEPID())
	ids = append(ids, page...)
	ids = append(ids, tok.SEPID())
	types := make([]int32, len(ids))
	for i := 1; i <= len(ins); i++ {
		types[i] = 1
	}
	enc := EncodedChoice{State: ids, StateTypes: types, Target: ex.Target}
	enc.Actions = make([][]int32, len(ex.Actions))
	enc.ActionContent = make([][]bool, len(ex.Actions))
	enc.Positions = make([]int32, len(ex.Actions))
	for i := range enc.Positions {
		if i < len(ex.Positions) {
			enc.Positions[i] = int32(min(max(ex.Positions[i], 0), MaxResultPosition))
		}
	}
	for i, a := range ex.Actions {
		ids := tok.EncodeAction(a, cfg.MaxActionLen)
		enc.Actions[i] = ids
		content := make([]bool, len(ids))
		for k, id := range ids {
			content[k] = isContentToken(tok.Token(id))
		}
		enc.ActionContent[i] = content
	}
	return enc
}

// Bucket returns the smallest size in sizes (ascending) that is at least n, or the largest
// size when n exceeds them all (the caller truncates or chunks).
func Bucket(n int, sizes []int) int {
	for _, s := range sizes {
		if n <= s {
			return s
		}
	}
	return sizes[len(sizes)-1]
}

// BucketSizes lists the padded sizes of each input axis, so that only a few shapes (and
// compiled executables) occur. Each list is ascending.
type BucketSizes struct {
	// Batch sizes (states per call).
	Batch []int
	// State lengths in tokens.
	State []int
	// Action lengths in tokens.
	Action []int
	// Actions per state.
	Actions []int
	// Unique actions per batch (actions are encoded once per distinct text).
	Unique []int
}

// DefaultBuckets returns the buckets for a policy configuration. On the pure-Go backend
// compiling a new shape is cheap (well under a second for the tiny and small presets) while
// padding costs compute in every step, so the buckets are fine: state lengths in steps of
// 32 and action lengths in steps of 4 up to the configuration's maxima (always included),
// 2 to 16 actions per state in steps of 2, then 20, 24, 28, 32; distinct actions in steps
// of 16 up to 1024; batches of 1, 2, 4, 8, 16, 32 and 64 states.
func DefaultBuckets(cfg PolicyConfig) BucketSizes {
	steps := func(from, step, max int) []int {
		var out []int
		for s := from; s < max; s += step {
			out = append(out, s)
		}
		return append(out, max)
	}
	return BucketSizes{
		Batch:   []int{1, 2, 4, 8, 16, 32, 64},
		State:   steps(32, 32, cfg.MaxStateLen),
		Action:  steps(8, 4, cfg.MaxActionLen),
		Actions: []int{2, 4, 6, 8, 10, 12, 14, 16, 20, 24, 28, 32},
		Unique:  steps(16, 16, 1024),
	}
}

// PolicyBatch holds the padded inputs of the policy model for a batch of states.
//
// Actions are encoded once per distinct token sequence in the batch (navigation buttons
// repeat across states): ActionIDs holds the U distinct actions and ActionIndex maps each
// (state, action slot) to its row there.
type PolicyBatch struct {
	// B states, padded to Ts tokens; A action slots per state; U distinct actions padded to
	// Ta tokens.
	B, Ts, A, U, Ta int
	// Real is the number of real states (the others are padding).
	Real int
	// StateIDs [B, Ts], StateMask [B, Ts] (1 for real tokens) and StateTypes [B, Ts] (1 for
	// the instruction's tokens).
	StateIDs, StateMask, StateTypes []int32
	// ActionIDs [U, Ta] and ActionMask [U, Ta]: 0 for padding, 1 for a real token, 2 for a
	// real content token (see EncodedChoice); non-zero marks real tokens for the encoder.
	ActionIDs, ActionMask []int32
	// ActionIndex [B, A]: the row of ActionIDs of each action slot (0 for padding slots).
	ActionIndex []int32
	// ActionValid [B, A]: 1 for real action slots, 0 for padding.
	ActionValid []float32
	// ActionPos [B, A]: each action's product position (0 for other actions and padding).
	ActionPos []int32
	// Targets [B]: the chosen action of each state (0 for padding states or unknown).
	Targets []int32
	// TargetValid [B]: 1 for states with a known target, 0 otherwise.
	TargetValid []float32
}

// NewPolicyBatch pads encoded choices into a PolicyBatch using the buckets. States with
// more actions than the largest Actions bucket are an error (chunk them first); tokens are
// truncated to the largest length buckets. batchSize > 0 pads the batch to exactly that
// many states instead of the Batch buckets.
func NewPolicyBatch(examples []EncodedChoice, b BucketSizes, batchSize int) (*PolicyBatch, error) {
	if len(examples) == 0 {
		return nil, fmt.Errorf("features: empty policy batch")
	}
	maxA := b.Actions[len(b.Actions)-1]
	var nB int
	if batchSize > 0 {
		if len(examples) > batchSize {
			return nil, fmt.Errorf("features: %d states exceed the batch size %d", len(examples), batchSize)
		}
		nB = batchSize
	} else {
		nB = Bucket(len(examples), b.Batch)
		if len(examples) > nB {
			return nil, fmt.Errorf("features: %d states exceed the largest batch bucket %d", len(examples), nB)
		}
	}
	maxTs, maxTa, maxNA := 1, 1, 1
	// Distinct actions, keyed by their token ids.
	uniq := map[string]int32{}
	var rows [][]int32
	var rowContent [][]bool
	key := func(ids []int32) string {
		var sb strings.Builder
		for _, id := range ids {
			fmt.Fprintf(&sb, "%d,", id)
		}
		return sb.String()
	}
	slot := make([][]int32, len(examples))
	for i, ex := range examples {
		if len(ex.Actions) == 0 {
			return nil, fmt.Errorf("features: state %d of the batch has no actions", i)
		}
		if len(ex.Actions) > maxA {
			return nil, fmt.Errorf("features: state %d has %d actions, more than the largest bucket %d (chunk it)", i, len(ex.Actions), maxA)
		}
		if ex.Target >= len(ex.Actions) {
			return nil, fmt.Errorf("features: state %d has target %d of %d actions", i, ex.Target, len(ex.Actions))
		}
		maxTs = max(maxTs, len(ex.State))
		maxNA = max(maxNA, len(ex.Actions))
		slot[i] = make([]int32, len(ex.Actions))
		for j, a := range ex.Actions {
			k := key(a)
			r, ok := uniq[k]
			if !ok {
				r = int32(len(rows))
				uniq[k] = r
				rows = append(rows, a)
				var content []bool
				if j < len(ex.ActionContent) {
					content = ex.ActionContent[j]
				}
				rowContent = append(rowContent, content)
				maxTa = max(maxTa, len(a))
			}
			slot[i][j] = r
		}
	}
	pb := &PolicyBatch{
		B: nB, Real: len(examples),
		Ts: Bucket(maxTs, b.State), A: Bucket(maxNA, b.Actions),
		U: Bucket(len(rows), b.Unique), Ta: Bucket(maxTa, b.Action),
	}
	if len(rows) > pb.U {
		return nil, fmt.Errorf("features: %d distinct actions exceed the largest bucket %d", len(rows), pb.U)
	}
	pb.StateIDs = make([]int32, pb.B*pb.Ts)
	pb.StateMask = make([]int32, pb.B*pb.Ts)
	pb.StateTypes = make([]int32, pb.B*pb.Ts)
	pb.ActionIDs = make([]int32, pb.U*pb.Ta)
	pb.ActionMask = make([]int32, pb.U*pb.Ta)
	pb.ActionIndex = make([]int32, pb.B*pb.A)
	pb.ActionValid = make([]float32, pb.B*pb.A)
	pb.ActionPos = make([]int32, pb.B*pb.A)
	pb.Targets = make([]int32, pb.B)
	pb.TargetValid = make([]float32, pb.B)
	for i, ex := range examples {
		s, types := ex.State, ex.StateTypes
		if len(types) != len(s) {
			types = make([]int32, len(s))
		}
		if len(s) > pb.Ts { // keep the instruction segment and the tail of the page
			head := 1
			for head < len(types) && types[head] == 1 {
				head++
			}
			head = min(head+1, pb.Ts/2) // [CLS] instruction [SEP]
			s = append(append([]int32{}, s[:head]...), s[len(s)-pb.Ts+head:]...)
			types = append(append([]int32{}, types[:head]...), types[len(types)-pb.Ts+head:]...)
		}
		copy(pb.StateIDs[i*pb.Ts:], s)
		copy(pb.StateTypes[i*pb.Ts:], types)
		for t := range s {
			pb.StateMask[i*pb.Ts+t] = 1
		}
		for j := range ex.Actions {
			pb.ActionIndex[i*pb.A+j] = slot[i][j]
			pb.ActionValid[i*pb.A+j] = 1
			if j < len(ex.Positions) {
				pb.ActionPos[i*pb.A+j] = min(max(ex.Positions[j], 0), MaxResultPosition)
			}
		}
		if ex.Target >= 0 {
			pb.Targets[i] = int32(ex.Target)
			pb.TargetValid[i] = 1
		}
	}
	for r, a := range rows {
		if len(a) > pb.Ta { // keep the head, as EncodeAction does
			a = a[:pb.Ta]
		}
		copy(pb.ActionIDs[r*pb.Ta:], a)
		for t := range a {
			pb.ActionMask[r*pb.Ta+t] = 1
			if t < len(rowContent[r]) && rowContent[r][t] {
				pb.ActionMask[r*pb.Ta+t] = 2
			}
		}
	}
	return pb, nil
}
