package serve

import (
	"errors"
	"fmt"
	"math"
	"path/filepath"

	"github.com/maypok86/otter/v2"
	"github.com/maypok86/otter/v2/stats"

	"shopagent/env"
	"shopagent/export/onnxrt"
	"shopagent/features"
)

// ORTOptions configure an ONNXPolicy.
type ORTOptions struct {
	// Name names the policy (default: the directory's base name).
	Name string
	// Lib is the ONNX Runtime shared library (default $SHOPAGENT_ORT_LIB, else
	// third_party/onnxruntime/libonnxruntime.so.1 under the repository root). One process
	// loads one library.
	Lib string
	// IntraOpThreads is the number of threads one forward pass may use; 0 means 1. The
	// default is 1 because the server scores many concurrent requests on one shared
	// session: one thread per run lets concurrent requests fill the cores without
	// oversubscribing them (ONNX Runtime's advice for throughput). Raise it for low
	// latency with few clients.
	IntraOpThreads int
	// Device is "cpu" (default) or "cuda" (needs the CUDA provider beside the library, see
	// onnxrt.CheckCUDA and `make onnxruntime-cuda`; loading
	// fails with a message saying so otherwise).
	Device string
	// DeviceID is the GPU used with Device "cuda".
	DeviceID int
	// ActionCacheMB bounds the action-encoding cache in MiB (0: no cache). With a cache,
	// a policy directory that has actions.onnx and scorer.onnx (see onnxrt.Manifest.Split)
	// is served by those two graphs: each distinct action's encoder states are computed
	// once, by actions.onnx, and reused by every later request that offers the same
	// action (product titles, buttons and option values repeat across shoppers), so a
	// request encodes only its state and its unseen actions. The results equal
	// model.onnx's (checked at export). Entries weigh their token count x the hidden
	// size x 4 bytes; the least valuable are evicted (otter's W-TinyLFU).
	ActionCacheMB int
	// ChunkActions bounds the actions scored in one ONNX Runtime run (default
	// DefaultChunkActions): a request with more is scored in chunks (the state once per
	// chunk), so the memory of a run, ONNX Runtime's arena included, does not grow with
	// the number of actions. The logits equal those of one run: each action's logit
	// depends on the state and that action only.
	ChunkActions int
}

// DefaultChunkActions is ORTOptions.ChunkActions' default.
const DefaultChunkActions = 16

// ONNXPolicy is a Policy that runs an exported policy directory (model.onnx, vocab.txt,
// policy.json; see `shopagent export`) on ONNX Runtime. It featurizes an observation as
// training does (features.ChoiceFromObservation, features.EncodeChoice with the policy's
// tokenizer and limits). It is safe for concurrent use: runs share one ONNX Runtime
// session, which allows concurrent runs, and Close waits for runs in flight.
type ONNXPolicy struct {
	manifest *onnxrt.Manifest
	tok      *features.Tokenizer
	sess     *onnxrt.Session // model.onnx, without an action cache
	info     PolicyInfo
	// With an action cache: actions.onnx, scorer.onnx and the cache of encoder states
	// (key: the action's token ids; value: [tokens, H] float32 rows).
	actions, scorer *onnxrt.Session
	cache           *otter.Cache[string, []float32]
	chunk           int
}

var _ Policy = (*ONNXPolicy)(nil)

// LoadONNXPolicy loads a policy directory: it reads policy.json, checks the sha256 of
// model.onnx and vocab.txt against it, loads the vocabulary and creates the ONNX Runtime
// session. Missing or corrupt files give errors naming them.
func LoadONNXPolicy(dir string, opts ORTOptions) (*ONNXPolicy, error) {
	m, err := onnxrt.ReadManifest(dir)
	if err != nil {
		return nil, fmt.Errorf("serve: load ONNX policy: %w", err)
	}
	if err := m.VerifyFiles(dir); err != nil {
		return nil, fmt.Errorf("serve: load ONNX policy: %w", err)
	}
	tok, err := features.LoadVocab(filepath.Join(dir, onnxrt.VocabFile))
	if err != nil {
		return nil, fmt.Errorf("serve: load ONNX policy %s: %w", dir, err)
	}
	if tok.VocabSize() != m.Policy.Bert.VocabSize {
		return nil, fmt.Errorf("serve: load ONNX policy %s: vocab.txt has %d tokens, the model %d", dir, tok.VocabSize(), m.Policy.Bert.VocabSize)
	}
	if opts.ActionCacheMB < 0 {
		return nil, fmt.Errorf("serve: load ONNX policy %s: negative action cache size %d MiB", dir, opts.ActionCacheMB)
	}
	name := opts.Name
	if name == "" {
		name = filepath.Base(filepath.Clean(dir))
	}
	if opts.ChunkActions <= 0 {
		opts.ChunkActions = DefaultChunkActions
	}
	p := &ONNXPolicy{
		manifest: m, tok: tok, chunk: opts.ChunkActions,
		info: PolicyInfo{Name: name, Dir: dir, Preset: m.Preset, SHA256: m.SHA256[onnxrt.ModelFile]},
	}
	ortOpts := onnxrt.Options{Lib: opts.Lib, IntraOpThreads: opts.IntraOpThreads, Device: opts.Device, DeviceID: opts.DeviceID}
	if opts.ActionCacheMB > 0 && m.Split {
		if p.actions, err = onnxrt.NewGraphSession(filepath.Join(dir, onnxrt.ActionsFile), onnxrt.GraphActions, ortOpts); err != nil {
			return nil, fmt.Errorf("serve: load ONNX policy %s: %w", dir, err)
		}
		if p.scorer, err = onnxrt.NewGraphSession(filepath.Join(dir, onnxrt.ScorerFile), onnxrt.GraphScorer, ortOpts); err != nil {
			p.actions.Close()
			return nil, fmt.Errorf("serve: load ONNX policy %s: %w", dir, err)
		}
		p.cache, err = otter.New(&otter.Options[string, []float32]{
			MaximumWeight: uint64(opts.ActionCacheMB) << 20,
			Weigher: func(k string, v []float32) uint32 {
				return uint32(len(k) + 4*len(v) + 64)
			},
			StatsRecorder: stats.NewCounter(),
		})
		if err != nil {
			p.Close()
			return nil, fmt.Errorf("serve: load ONNX policy %s: action cache: %w", dir, err)
		}
		return p, nil
	}
	if p.sess, err = onnxrt.NewSession(filepath.Join(dir, onnxrt.ModelFile), ortOpts); err != nil {
		return nil, fmt.Errorf("serve: load ONNX policy %s: %w", dir, err)
	}
	return p, nil
}

// ActionCacheStats describes a policy's action-encoding cache.
type ActionCacheStats struct {
	// Hits and Misses count the distinct actions of requests found and not found.
	Hits, Misses uint64
	// Entries is the number of cached actions; Bytes their weight.
	Entries int
	Bytes   uint64
}

// ActionCache returns the statistics of the action-encoding cache, and false when the
// policy runs without one (ORTOptions.ActionCacheMB 0, or a directory without
// actions.onnx and scorer.onnx).
func (p *ONNXPolicy) ActionCache() (ActionCacheStats, bool) {
	if p.cache == nil {
		return ActionCacheStats{}, false
	}
	st := p.cache.Stats()
	return ActionCacheStats{Hits: st.Hits, Misses: st.Misses, Entries: p.cache.EstimatedSize(), Bytes: p.cache.WeightedSize()}, true
}

// Manifest returns the policy's policy.json.
func (p *ONNXPolicy) Manifest() onnxrt.Manifest { return *p.manifest }

// Info implements Policy: the name, directory, preset and the sha256 of model.onnx.
func (p *ONNXPolicy) Info() PolicyInfo { return p.info }

// Close implements Policy: it releases the ONNX Runtime sessions (after runs in flight).
func (p *ONNXPolicy) Close() error {
	var errs []error
	for _, s := range []*onnxrt.Session{p.sess, p.actions, p.scorer} {
		if s != nil {
			errs = append(errs, s.Close())
		}
	}
	if p.cache != nil {
		p.cache.InvalidateAll()
	}
	return errors.Join(errs...)
}

// ActInput is one observation to score with ActBatch.
type ActInput struct {
	// Instruction overrides the instruction parsed from the observation when not empty.
	Instruction string
	// Observation is the page text (WebShop's text_rich or text mode).
	Observation string
	// Actions are the available actions: "click[...]" and "search[...]".
	Actions []string
}

// Act implements Policy: the probability of each action (in the order given) and the
// state's value. See ActBatch.
func (p *ONNXPolicy) Act(instruction, observation string, actions []string) (Decision, error) {
	ds, err := p.ActBatch([]ActInput{{Instruction: instruction, Observation: observation, Actions: actions}})
	if err != nil {
		return Decision{}, err
	}
	return ds[0], nil
}

// ActBatch scores several observations in one ONNX Runtime run per class of state length
// (states padded to the longest of their class, a power of two of at least 64 tokens, so
// that a short page batched with a long one is not padded to it; actions to the longest
// and the most actions; the graph's axes are dynamic).
//
// Actions are WebShop action strings. A click[x] is scored as the training agent scores
// clickable x (features.ChoiceFromObservation: a product on a results page reads "item -
// <title> - <price>" with its position, a selected option value is marked as clicked);
// products are ranked in the order the actions list them, so give them in page order as
// WebShop does.
// A search[q] (a candidate query) is scored like any other action, with the text "search
// q"; so is click[search], with the text "search". Probabilities are the softmax of the
// logits over the given actions.
func (p *ONNXPolicy) ActBatch(inputs []ActInput) ([]Decision, error) {
	if len(inputs) == 0 {
		return nil, errors.New("serve: ONNX policy: no observations")
	}
	cfg := p.manifest.Policy
	encoded := make([]features.EncodedChoice, len(inputs))
	order := make([][]int, len(inputs)) // order[i][k]: the model slot of action k
	for i, in := range inputs {
		ex, slots, err := choiceFromActions(in)
		if err != nil {
			if len(inputs) > 1 {
				return nil, fmt.Errorf("serve: ONNX policy: observation %d: %w", i, err)
			}
			return nil, fmt.Errorf("serve: ONNX policy: %w", err)
		}
		encoded[i] = features.EncodeChoice(p.tok, cfg, ex)
		order[i] = slots
	}
	logits, values, stride, err := p.score(encoded)
	if err != nil {
		return nil, fmt.Errorf("serve: ONNX policy %s: %w", p.info.Name, err)
	}
	out := make([]Decision, len(inputs))
	for i := range inputs {
		l := make([]float64, len(order[i]))
		for k, slot := range order[i] {
			l[k] = float64(logits[i*stride+slot])
		}
		probs, err := finiteSoftmax(l)
		if err != nil {
			return nil, fmt.Errorf("serve: ONNX policy %s: %w", p.info.Name, err)
		}
		out[i] = Decision{Probabilities: probs, Value: float64(values[i])}
	}
	return out, nil
}

// score returns the logits ([len(encoded), stride], each state's actions first) and the
// values of encoded states: in one run when every state has at most p.chunk actions,
// else state by state, each in chunks of at most p.chunk actions.
func (p *ONNXPolicy) score(encoded []features.EncodedChoice) (logits, values []float32, stride int, err error) {
	maxA := 0
	for _, e := range encoded {
		maxA = max(maxA, len(e.Actions))
	}
	if maxA <= p.chunk {
		groups := stateLengthGroups(encoded)
		if len(groups) == 1 {
			pb, err := onnxrt.ExactBatch(encoded)
			if err != nil {
				return nil, nil, 0, err
			}
			logits, values, err := p.run(pb)
			return logits, values, pb.A, err
		}
		logits = make([]float32, len(encoded)*maxA)
		values = make([]float32, len(encoded))
		for _, g := range groups {
			part := make([]features.EncodedChoice, len(g))
			for k, i := range g {
				part[k] = encoded[i]
			}
			pb, err := onnxrt.ExactBatch(part)
			if err != nil {
				return nil, nil, 0, err
			}
			l, v, err := p.run(pb)
			if err != nil {
				return nil, nil, 0, err
			}
			for k, i := range g {
				copy(logits[i*maxA:i*maxA+len(encoded[i].Actions)], l[k*pb.A:])
				values[i] = v[k]
			}
		}
		return logits, values, maxA, nil
	}
	logits = make([]float32, len(encoded)*maxA)
	values = make([]float32, len(encoded))
	for i, e := range encoded {
		for lo := 0; lo < len(e.Actions); lo += p.chunk {
			hi := min(lo+p.chunk, len(e.Actions))
			part := e
			part.Actions, part.ActionContent, part.Positions = e.Actions[lo:hi], e.ActionContent[lo:hi], e.Positions[lo:hi]
			pb, err := onnxrt.ExactBatch([]features.EncodedChoice{part})
			if err != nil {
				return nil, nil, 0, err
			}
			l, v, err := p.run(pb)
			if err != nil {
				return nil, nil, 0, err
			}
			copy(logits[i*maxA+lo:], l[:hi-lo])
			if lo == 0 {
				values[i] = v[0]
			}
		}
	}
	return logits, values, maxA, nil
}

// stateLengthGroups splits a batch's states into runs of similar length, so that padding
// to the longest state of a run at most doubles a state's tokens: states are grouped by
// the power of two (at least 64) their token count rounds up to, each group in batch
// order. One state, or states of one class, make one group.
func stateLengthGroups(encoded []features.EncodedChoice) [][]int {
	class := func(n int) int {
		c := 64
		for c < n {
			c *= 2
		}
		return c
	}
	var order []int
	byClass := map[int][]int{}
	for i, e := range encoded {
		c := class(len(e.State))
		if _, ok := byClass[c]; !ok {
			order = append(order, c)
		}
		byClass[c] = append(byClass[c], i)
	}
	groups := make([][]int, 0, len(order))
	for _, c := range order {
		groups = append(groups, byClass[c])
	}
	return groups
}

// run scores one padded batch, through the action cache when there is one.
func (p *ONNXPolicy) run(pb *features.PolicyBatch) (logits, values []float32, err error) {
	if p.cache != nil {
		return p.runCached(pb)
	}
	return p.sess.Run(pb)
}

// runCached scores pb with scorer.onnx, taking each distinct action's encoder states from
// the cache and encoding the others, all in one actions.onnx run, into it.
func (p *ONNXPolicy) runCached(pb *features.PolicyBatch) (logits, values []float32, err error) {
	h := p.manifest.Policy.Bert.Hidden
	rows := make([][]float32, pb.U)
	keys := make([]string, pb.U)
	lens := make([]int, pb.U)
	var missing []int
	key := make([]byte, 0, 4*pb.Ta)
	for r := range pb.U {
		ids, mask := pb.ActionIDs[r*pb.Ta:(r+1)*pb.Ta], pb.ActionMask[r*pb.Ta:(r+1)*pb.Ta]
		n := 0
		for n < pb.Ta && mask[n] != 0 {
			n++
		}
		key = onnxrt.AppendActionKey(key[:0], ids[:n])
		lens[r] = n
		if v, ok := p.cache.GetIfPresent(string(key)); ok && len(v) == n*h {
			rows[r] = v
			continue
		}
		keys[r] = string(key)
		missing = append(missing, r)
	}
	if len(missing) > 0 {
		ta := 1
		for _, r := range missing {
			ta = max(ta, lens[r])
		}
		ids := make([]int32, len(missing)*ta)
		mask := make([]int32, len(missing)*ta)
		for i, r := range missing {
			copy(ids[i*ta:], pb.ActionIDs[r*pb.Ta:r*pb.Ta+lens[r]])
			copy(mask[i*ta:], pb.ActionMask[r*pb.Ta:r*pb.Ta+lens[r]])
		}
		enc, err := p.actions.RunActions(ids, mask, len(missing), ta, h)
		if err != nil {
			return nil, nil, fmt.Errorf("serve: ONNX policy %s: action encoder: %w", p.info.Name, err)
		}
		for i, r := range missing {
			rows[r] = append([]float32(nil), enc[i*ta*h:(i*ta+lens[r])*h]...)
			p.cache.Set(keys[r], rows[r])
		}
	}
	hidden := make([]float32, pb.U*pb.Ta*h)
	for r, v := range rows {
		copy(hidden[r*pb.Ta*h:], v)
	}
	return p.scorer.RunScorer(pb, hidden, h)
}

// choiceFromActions builds the choice example of an observation and its WebShop actions,
// returning, for each action, its slot in the example.
func choiceFromActions(in ActInput) (features.ChoiceExample, []int, error) {
	if len(in.Actions) == 0 {
		return features.ChoiceExample{}, nil, errors.New("no actions")
	}
	var clickables []string
	var clickOf []int // action index of each clickable
	type extra struct {
		action int
		text   string
	}
	var extras []extra
	for k, a := range in.Actions {
		pa := env.ParseAction(a)
		switch {
		case pa.HasArg && pa.Name == "click" && pa.Arg == env.ClickSearch:
			extras = append(extras, extra{k, env.ClickSearch})
		case pa.HasArg && pa.Name == "click":
			clickables = append(clickables, pa.Arg)
			clickOf = append(clickOf, k)
		case pa.HasArg && pa.Name == "search":
			extras = append(extras, extra{k, "search " + pa.Arg})
		default:
			return features.ChoiceExample{}, nil, fmt.Errorf("action %d %q is neither click[...] nor search[...]", k, a)
		}
	}
	ex, idx := features.ChoiceFromObservation(in.Observation, clickables)
	if len(idx) != len(clickables) {
		return features.ChoiceExample{}, nil, fmt.Errorf("featurization kept %d of %d clickables", len(idx), len(clickables))
	}
	if in.Instruction != "" {
		ex.Instruction = in.Instruction
	}
	slots := make([]int, len(in.Actions))
	for j, c := range idx {
		slots[clickOf[c]] = j
	}
	for _, e := range extras {
		slots[e.action] = len(ex.Actions)
		ex.Actions = append(ex.Actions, e.text)
		ex.Positions = append(ex.Positions, 0)
	}
	return ex, slots, nil
}

// finiteSoftmax returns the softmax of logits, or an error when they are not finite.
func finiteSoftmax(logits []float64) ([]float64, error) {
	m := math.Inf(-1)
	for _, l := range logits {
		if math.IsNaN(l) || math.IsInf(l, 0) {
			return nil, fmt.Errorf("non-finite logit %g", l)
		}
		m = max(m, l)
	}
	out := make([]float64, len(logits))
	var s float64
	for i, l := range logits {
		out[i] = math.Exp(l - m)
		s += out[i]
	}
	for i := range out {
		out[i] /= s
	}
	return out, nil
}
