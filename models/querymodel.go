package models

import (
	"fmt"
	"math"
	"sort"
	"strings"
	"sync"

	"shopagent/features"

	"github.com/gomlx/gomlx/backends"
	"github.com/gomlx/gomlx/pkg/core/graph"
	"github.com/gomlx/gomlx/pkg/core/tensors"
	"github.com/gomlx/gomlx/pkg/ml/context"
)

// The learned query model: a BERT token tagger over the instruction that predicts, for each
// instruction word, whether a human shopper keeps it in the search query (WebShop trains a
// BART model to write the query; with ~1,500 human queries, 90% of whose words occur in the
// instruction, choosing words is the tractable part, and it runs on a CPU).
//
// Input: [CLS] w1 w2 ... [SEP], the word pieces of the instruction's words (features.QueryWords:
// lowercased, WebShop's price clause cut, split like features.QueryTokenF1), with token type 1 for the
// pieces of the words the keyword heuristic (features.KeywordQuery) keeps and 0 for the others, so the
// model starts from the heuristic's decision and learns where humans differ. Output: one
// logit per token (a dense layer on the encoder's last hidden states); a word's keep
// probability is the sigmoid of its first piece's logit. Decoding keeps the words whose
// probability is at least Threshold, in instruction order, without repeats, at most MaxWords
// (the most probable ones).
//
// Variables: the encoder under policy/bert (Hugging Face names, so a pretraining run or an
// imported HF BERT can initialise it) and the tagger policy/query/tag/{weight [1, H],
// bias [1]}. A query model is stored as a training checkpoint (job "query"), in a run
// directory written by `shopagent train query`.

// QueryJobName is the job name of query model checkpoints.
const QueryJobName = "query"

// QueryTagScope is the scope of the tagger's dense layer.
const QueryTagScope = PolicyScope + "/query/tag"

// DefaultQueryMaxLen is the default token limit of a query model's input ([CLS] and [SEP]
// included); words beyond it are never kept.
const DefaultQueryMaxLen = 64

// DefaultQueryThreshold is the keep probability from which a word goes into the query.
const DefaultQueryThreshold = 0.5

// QueryEncoding is an instruction encoded for the query model.
type QueryEncoding struct {
	// Words are the instruction's words (features.QueryWords).
	Words []string
	// IDs and Types are the token ids and types (1: a word the heuristic keeps), [CLS] and
	// [SEP] included.
	IDs, Types []int32
	// First is the token index of each word's first piece, -1 for words cut by the length
	// limit (and words without tokens).
	First []int
	// Heuristic marks the words the keyword heuristic keeps.
	Heuristic []bool
}

// EncodeQuery encodes an instruction for a query model with maxLen tokens at most.
func EncodeQuery(tok *features.Tokenizer, instruction string, maxLen int) QueryEncoding {
	if maxLen < 3 {
		maxLen = 3
	}
	words := features.QueryWords(instruction)
	kept := map[string]bool{}
	for _, w := range strings.Fields(features.KeywordQuery{}.Queries(instruction)[0]) {
		kept[w] = true
	}
	e := QueryEncoding{Words: words, IDs: []int32{tok.CLSID()}, Types: []int32{0},
		First: make([]int, len(words)), Heuristic: make([]bool, len(words))}
	for i, w := range words {
		e.First[i] = -1
		e.Heuristic[i] = kept[strings.Trim(w, "'")]
		if kept[strings.Trim(w, "'")] {
			delete(kept, strings.Trim(w, "'")) // only a word's first occurrence
		}
		pieces := tok.Encode(w)
		if len(pieces) == 0 || len(e.IDs)+len(pieces) > maxLen-1 {
			continue
		}
		typ := int32(0)
		if e.Heuristic[i] {
			typ = 1
		}
		e.First[i] = len(e.IDs)
		for _, p := range pieces {
			e.IDs = append(e.IDs, p)
			e.Types = append(e.Types, typ)
		}
	}
	e.IDs = append(e.IDs, tok.SEPID())
	e.Types = append(e.Types, 0)
	return e
}

// QueryTagGraph is the query model's forward pass: token logits [B, T] from ids, types and
// mask [B, T] (mask non-zero on real tokens). Variables are created or reused under ctx's
// policy/bert and policy/query/tag scopes; train enables dropout.
func QueryTagGraph(ctx *context.Context, cfg features.PolicyConfig, ids, types, mask *graph.Node, train bool) *graph.Node {
	ctx = ctx.Checked(false)
	h := BertEncodeWithTypes(ctx.In(PolicyScope).In("bert"), cfg.Bert, ids, types, mask, train)
	logits := hfDense(ctx.In(PolicyScope).In("query").In("tag"), h, cfg.Bert.Hidden, 1)
	return graph.Reshape(logits, ids.Shape().Dimensions...)
}

// QueryPadLen rounds a token count up to the padded length used for it (a multiple of 16).
func QueryPadLen(n int) int { return max(16, (n+15)/16*16) }

// QueryModel proposes search queries with a trained tagger (see the file comment). It
// implements features.QueryProposer and is safe for concurrent use.
type QueryModel struct {
	// Config sizes the encoder (MaxStateLen is the input's token limit); Tokenizer encodes
	// instructions; Meta is the checkpoint's meta.
	Config    features.PolicyConfig
	Tokenizer *features.Tokenizer
	Meta      CheckpointMeta
	// Threshold is the keep probability from which a word is kept (DefaultQueryThreshold).
	Threshold float64
	// MaxWords caps the words of the model's query (features.DefaultQueryWords).
	MaxWords int
	// Fallback supplies the candidates after the model's query (features.KeywordQuery{}).
	Fallback features.QueryProposer

	exec *context.Exec
	mu   sync.Mutex
	err  error
}

// NewQueryModel builds a query model from a checkpoint on a backend. The checkpoint must
// hold the encoder and the tagger.
func NewQueryModel(backend backends.Backend, ck *Checkpoint) (*QueryModel, error) {
	cfg := ck.Meta.Policy
	missing, err := ck.missingEncoderVariables("query model")
	if err != nil {
		return nil, err
	}
	for _, n := range []string{"weight", "bias"} {
		if _, ok := ck.Model[QueryTagScope+"/"+n]; !ok {
			missing = append(missing, QueryTagScope+"/"+n)
		}
	}
	if len(missing) > 0 {
		return nil, fmt.Errorf("models: checkpoint %s (job %q) is not a query model: %d variables missing, e.g. %s", ck.Dir, ck.Meta.Job, len(missing), missing[0])
	}
	ctx := context.New()
	if _, err := ck.LoadInto(ctx, PolicyScope+"/"); err != nil {
		return nil, err
	}
	return newQueryModel(backend, cfg, ck.Tokenizer, ck.Meta, ctx)
}

// NewUntrainedQueryModel returns a query model with freshly initialised weights (seeded),
// for tests and baselines.
func NewUntrainedQueryModel(backend backends.Backend, cfg features.PolicyConfig, tok *features.Tokenizer, seed int64) (*QueryModel, error) {
	if tok == nil || tok.VocabSize() != cfg.Bert.VocabSize {
		return nil, fmt.Errorf("models: query model: the tokenizer does not match the config's vocabulary")
	}
	ctx := context.New()
	ctx.SetParam(context.ParamInitialSeed, seed)
	return newQueryModel(backend, cfg, tok, CheckpointMeta{Job: QueryJobName, Policy: cfg}, ctx)
}

// LoadQueryModel loads a query model from a checkpoint directory or a run directory (its
// latest checkpoint).
func LoadQueryModel(backend backends.Backend, path string) (*QueryModel, error) {
	ck, err := LoadCheckpoint(path, false)
	if err != nil {
		return nil, err
	}
	return NewQueryModel(backend, ck)
}

func newQueryModel(backend backends.Backend, cfg features.PolicyConfig, tok *features.Tokenizer, meta CheckpointMeta, ctx *context.Context) (*QueryModel, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	exec, err := context.NewExec(backend, ctx, func(ctx *context.Context, ids, types, mask *graph.Node) *graph.Node {
		return graph.Sigmoid(QueryTagGraph(ctx, cfg, ids, types, mask, false))
	})
	if err != nil {
		return nil, fmt.Errorf("models: query model: %w", err)
	}
	exec.SetMaxCache(-1)
	return &QueryModel{Config: cfg, Tokenizer: tok, Meta: meta, Threshold: DefaultQueryThreshold,
		MaxWords: features.DefaultQueryWords, Fallback: features.KeywordQuery{}, exec: exec}, nil
}

// Close releases the compiled executables.
func (m *QueryModel) Close() {
	if m.exec != nil {
		m.exec.Finalize()
	}
}

// Context returns the model's variables (for saving an untrained model, for instance).
func (m *QueryModel) Context() *context.Context { return m.exec.Context() }

// KeepProbs returns, for each instruction, the encoding and the keep probability of each of
// its words (0 for words cut by the length limit). Instructions are scored in batches of up
// to 64, padded to a multiple of 16 tokens.
func (m *QueryModel) KeepProbs(instructions []string) ([]QueryEncoding, [][]float64, error) {
	encs := make([]QueryEncoding, len(instructions))
	for i, ins := range instructions {
		encs[i] = EncodeQuery(m.Tokenizer, ins, m.Config.MaxStateLen)
	}
	probs := make([][]float64, len(instructions))
	// Group by padded length so a batch has one shape.
	order := make([]int, len(encs))
	for i := range order {
		order[i] = i
	}
	sort.SliceStable(order, func(a, b int) bool { return len(encs[order[a]].IDs) < len(encs[order[b]].IDs) })
	const maxBatch = 64
	for lo := 0; lo < len(order); {
		t := QueryPadLen(len(encs[order[lo]].IDs))
		hi := lo
		for hi < len(order) && hi-lo < maxBatch && QueryPadLen(len(encs[order[hi]].IDs)) == t {
			hi++
		}
		b := 1
		for b < hi-lo {
			b *= 2
		}
		ids, types, mask := make([]int32, b*t), make([]int32, b*t), make([]int32, b*t)
		for r, k := range order[lo:hi] {
			e := encs[k]
			copy(ids[r*t:], e.IDs)
			copy(types[r*t:], e.Types)
			for j := range e.IDs {
				mask[r*t+j] = 1
			}
		}
		out, err := m.exec.Exec1(tensors.FromFlatDataAndDimensions(ids, b, t),
			tensors.FromFlatDataAndDimensions(types, b, t), tensors.FromFlatDataAndDimensions(mask, b, t))
		if err != nil {
			return nil, nil, fmt.Errorf("models: query model forward: %w", err)
		}
		p := tensors.MustCopyFlatData[float32](out)
		for r, k := range order[lo:hi] {
			e := encs[k]
			probs[k] = make([]float64, len(e.Words))
			for w, f := range e.First {
				if f >= 0 {
					probs[k][w] = float64(p[r*t+f])
				}
			}
		}
		lo = hi
	}
	return encs, probs, nil
}

// DecodeQuery turns words and their keep probabilities into a query: the words with a
// probability of at least threshold, in order, without repeats, at most maxWords (the most
// probable ones). It returns "" when no word qualifies.
func DecodeQuery(words []string, probs []float64, threshold float64, maxWords int) string {
	type cand struct {
		i int
		p float64
	}
	var cands []cand
	seen := map[string]bool{}
	for i, w := range words {
		if i < len(probs) && probs[i] >= threshold && !seen[w] {
			seen[w] = true
			cands = append(cands, cand{i, probs[i]})
		}
	}
	if maxWords > 0 && len(cands) > maxWords {
		sort.SliceStable(cands, func(a, b int) bool { return cands[a].p > cands[b].p })
		cands = cands[:maxWords]
		sort.Slice(cands, func(a, b int) bool { return cands[a].i < cands[b].i })
	}
	out := make([]string, len(cands))
	for k, c := range cands {
		out[k] = words[c.i]
	}
	return strings.Join(out, " ")
}

// Propose returns the candidate queries for each instruction: the model's query first, then
// the fallback's candidates (without repeats). An instruction for which the model keeps no
// word gets the fallback's candidates only.
func (m *QueryModel) Propose(instructions []string) ([][]string, error) {
	encs, probs, err := m.KeepProbs(instructions)
	if err != nil {
		return nil, err
	}
	thr := m.Threshold
	if !(thr > 0) || math.IsNaN(thr) {
		thr = DefaultQueryThreshold
	}
	maxWords := m.MaxWords
	if maxWords <= 0 {
		maxWords = features.DefaultQueryWords
	}
	fb := m.Fallback
	if fb == nil {
		fb = features.KeywordQuery{}
	}
	out := make([][]string, len(instructions))
	for i, ins := range instructions {
		var qs []string
		add := func(q string) {
			q = strings.Join(strings.Fields(q), " ")
			if q != "" && !containsString(qs, q) {
				qs = append(qs, q)
			}
		}
		add(DecodeQuery(encs[i].Words, probs[i], thr, maxWords))
		for _, q := range fb.Queries(ins) {
			add(q)
		}
		if len(qs) == 0 {
			qs = []string{"shop"}
		}
		out[i] = qs
	}
	return out, nil
}

// Queries implements features.QueryProposer. If the model fails (it should not: the input is always
// valid), the fallback's candidates are returned and Err reports the failure.
func (m *QueryModel) Queries(instruction string) []string {
	qs, err := m.Propose([]string{instruction})
	if err != nil {
		m.mu.Lock()
		if m.err == nil {
			m.err = err
		}
		m.mu.Unlock()
		fb := m.Fallback
		if fb == nil {
			fb = features.KeywordQuery{}
		}
		return fb.Queries(instruction)
	}
	return qs[0]
}

// Err returns the first forward-pass failure of Queries, if any.
func (m *QueryModel) Err() error {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.err
}

func containsString(xs []string, s string) bool {
	for _, x := range xs {
		if x == s {
			return true
		}
	}
	return false
}
