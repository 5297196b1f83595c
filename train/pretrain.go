package train

import (
	"bufio"
	stdctx "context"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"time"

	"github.com/gomlx/gomlx/pkg/core/dtypes"
	"github.com/gomlx/gomlx/pkg/core/graph"
	"github.com/gomlx/gomlx/pkg/core/tensors"
	"github.com/gomlx/gomlx/pkg/ml/context"

	"shopagent/env"
	"shopagent/env/webshopdata"
	"shopagent/features"
	"shopagent/models"
)

// Masked-LM pretraining of the policy's encoder (scope "policy/bert") on shop text, with
// BERT's recipe: 15% of the non-special tokens are chosen; of those 80% become [MASK], 10% a
// random token and 10% stay; the loss is the cross-entropy of the original tokens at the
// chosen positions, through BERT's prediction head (cls.predictions, decoder tied to the
// word embeddings).

// PretrainJobName names pretraining checkpoints.
const PretrainJobName = "pretrain"

// MLMProbability is the fraction of tokens chosen for prediction.
const MLMProbability = 0.15

// ShopCorpus returns the pretraining documents of a shop: one page-like text per product
// (title, price, option groups and values, bullet points, description, in the layout of
// the shop's item and features pages) and one per instruction of the given goal splits
// (never the test split: the agent is evaluated on those goals), plus the fixed strings of
// WebShop's pages, so that the vocabulary and the encoder see the page chrome.
func ShopCorpus(shop *env.Shop, splits ...string) ([]string, error) {
	var docs []string
	for i := range shop.Catalog.Products {
		p := &shop.Catalog.Products[i]
		var b strings.Builder
		b.WriteString(p.Title + "\nPrice: " + p.PriceText + "\nRating: N.A.\n")
		for _, g := range p.Options {
			b.WriteString(g.Name + "\n")
			for _, v := range g.Values {
				b.WriteString("  [button] " + v + " [button_]\n")
			}
		}
		for _, bp := range p.BulletPoints {
			b.WriteString(" " + bp + "\n")
		}
		b.WriteString(p.Description + "\n")
		docs = append(docs, b.String())
	}
	for _, s := range splits {
		if s == "test" {
			return nil, fmt.Errorf("train: the pretraining corpus must not contain the test split's instructions")
		}
		goals, err := shop.SplitGoals(s)
		if err != nil {
			return nil, err
		}
		for _, g := range goals {
			docs = append(docs, "Instruction:\n"+g.Instruction+"\n")
		}
	}
	docs = append(docs, pageChrome()...)
	return docs, nil
}

// pageChrome returns the fixed strings of WebShop's pages in text_rich layout.
func pageChrome() []string {
	var out []string
	for p := 1; p <= 5; p++ {
		out = append(out, fmt.Sprintf("[button] Back to Search [button_]\nPage %d (Total results: 50)\n[button] < Prev [button_]\n[button] Next > [button_]\n", p))
	}
	out = append(out,
		"WebShop\nInstruction: \n[button] Search [button_]\n",
		"[button] Back to Search [button_]\n[button] < Prev [button_]\n[button] Description [button_]\n[button] Features [button_]\n[button] Reviews [button_]\n[button] Attributes [button_]\n[button] Buy Now [button_]\n",
		"You have clicked the option.\n[clicked button] the option [clicked button_]\n",
		"Thank you for shopping with us!\nYour score (min 0.0, max 1.0)\n",
		"item - ",
	)
	return out
}

// ReadExtraText reads extra pretraining text: a JSON file holding a list of strings (like
// WebShop's human_goals.json) or an object whose string keys and values are used (like
// goal_query_map.json), or a text file with one document per non-empty line.
//
// exclude (may be nil) drops instructions the agent is evaluated on: a string for which it
// returns true is left out, and so are an object key's values (the human queries of a test
// instruction in goal_query_map.json). It returns the documents and how many were left out.
func ReadExtraText(path string, exclude func(string) bool) ([]string, int, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, 0, fmt.Errorf("train: extra text: %w", err)
	}
	if exclude == nil {
		exclude = func(string) bool { return false }
	}
	var out []string
	dropped := 0
	add := func(s string) {
		if s = strings.TrimSpace(s); s == "" {
			return
		}
		if exclude(s) {
			dropped++
			return
		}
		out = append(out, s)
	}
	if strings.EqualFold(filepath.Ext(path), ".json") {
		var v any
		if err := json.Unmarshal(data, &v); err != nil {
			return nil, 0, fmt.Errorf("train: extra text %s: %w", path, err)
		}
		var walk func(x any)
		walk = func(x any) {
			switch t := x.(type) {
			case string:
				add(t)
			case []any:
				for _, e := range t {
					walk(e)
				}
			case map[string]any:
				keys := make([]string, 0, len(t))
				for k := range t {
					keys = append(keys, k)
				}
				sort.Strings(keys)
				for _, k := range keys {
					if exclude(strings.TrimSpace(k)) {
						dropped++
						continue
					}
					add(k)
					walk(t[k])
				}
			}
		}
		walk(v)
		if len(out) == 0 && dropped == 0 {
			return nil, 0, fmt.Errorf("train: extra text %s holds no strings", path)
		}
		return out, dropped, nil
	}
	sc := bufio.NewScanner(strings.NewReader(string(data)))
	sc.Buffer(make([]byte, 1<<20), 16<<20)
	for sc.Scan() {
		add(sc.Text())
	}
	if err := sc.Err(); err != nil {
		return nil, 0, fmt.Errorf("train: extra text %s: %w", path, err)
	}
	if len(out) == 0 && dropped == 0 {
		return nil, 0, fmt.Errorf("train: extra text %s is empty", path)
	}
	return out, dropped, nil
}

// TestInstructions returns a predicate that is true for the instructions of a shop's test
// split and of WebShop's 500 test goals (compared without the price clause, case, and
// surrounding spaces and periods): the text no training input may contain.
func TestInstructions(shop *env.Shop) func(string) bool {
	key := func(s string) string {
		return strings.Trim(strings.TrimSpace(strings.ToLower(env.StripPriceClause(s))), ". ")
	}
	test := map[string]bool{}
	for _, h := range webshopdata.HumanGoals()[:500] {
		test[key(h)] = true
	}
	if shop != nil {
		if goals, err := shop.SplitGoals("test"); err == nil {
			for _, g := range goals {
				test[key(g.Instruction)] = true
			}
		}
	}
	return func(s string) bool { return test[key(s)] }
}

// learnVocab is BuildCorpusVocab with a log line naming what docs are ("documents").
func (o RunOptions) learnVocab(docs []string, size int, what string) (*features.Tokenizer, error) {
	t := time.Now()
	tok, err := BuildCorpusVocab(docs, size)
	if err == nil {
		o.logf("vocabulary: %d tokens learned from %d %s in %s", tok.VocabSize(), len(docs), what, time.Since(t).Round(time.Millisecond))
	}
	return tok, err
}

// BuildCorpusVocab learns a WordPiece vocabulary of about size tokens from documents
// (features.BuildVocab, minimum pair frequency 2).
func BuildCorpusVocab(docs []string, size int) (*features.Tokenizer, error) {
	vocab := features.BuildVocab(func(yield func(string) bool) {
		for _, d := range docs {
			if !yield(d) {
				return
			}
		}
	}, size, 2)
	return features.NewTokenizer(vocab)
}

// PackSequences tokenizes documents and packs them into sequences of seqLen tokens:
// [CLS] tokens [SEP], documents separated by [SEP] and cut where a sequence is full.
func PackSequences(tok *features.Tokenizer, docs []string, seqLen int) [][]int32 {
	if seqLen < 8 {
		seqLen = 8
	}
	body := seqLen - 2
	var seqs [][]int32
	cur := make([]int32, 0, body)
	emit := func() {
		if len(cur) == 0 {
			return
		}
		s := make([]int32, 0, seqLen)
		s = append(s, tok.CLSID())
		s = append(s, cur...)
		s = append(s, tok.SEPID())
		seqs = append(seqs, s)
		cur = cur[:0]
	}
	for _, d := range docs {
		ids := tok.Encode(d)
		for len(ids) > 0 {
			n := min(body-len(cur), len(ids))
			cur = append(cur, ids[:n]...)
			ids = ids[n:]
			if len(cur) == body {
				emit()
			}
		}
		if len(cur) > 0 && len(cur) < body {
			cur = append(cur, tok.SEPID())
			if len(cur) == body {
				emit()
			}
		}
	}
	emit()
	return seqs
}

// MLMJob is the masked-LM pretraining job.
type MLMJob struct {
	cfg       features.PolicyConfig
	seqs      [][]int32
	batchSize int
	seqLen    int
	maxPred   int
	seed      uint64
	vocab     int
	special   map[int32]bool
	maskID    int32

	epoch int64
	perm  []int
}

// NewMLMJob returns a pretraining job over packed sequences of at most seqLen tokens.
func NewMLMJob(cfg features.PolicyConfig, tok *features.Tokenizer, seqs [][]int32, batchSize, seqLen int, seed uint64) (*MLMJob, error) {
	if len(seqs) == 0 {
		return nil, fmt.Errorf("%w: empty pretraining corpus", ErrNoData)
	}
	if batchSize <= 0 {
		return nil, fmt.Errorf("train: batch size must be positive, got %d", batchSize)
	}
	if seqLen > cfg.Bert.MaxPositions {
		return nil, fmt.Errorf("train: sequence length %d exceeds the model's %d positions", seqLen, cfg.Bert.MaxPositions)
	}
	special := map[int32]bool{}
	for _, s := range features.SpecialTokens() {
		if id, ok := tok.ID(s); ok {
			special[id] = true
		}
	}
	// Room for 15% of the tokens plus a margin for the binomial spread.
	maxPred := int(float64(seqLen)*MLMProbability*1.5) + 2
	return &MLMJob{cfg: cfg, seqs: seqs, batchSize: batchSize, seqLen: seqLen, maxPred: maxPred, seed: seed,
		vocab: tok.VocabSize(), special: special, maskID: tok.MASKID(), epoch: -1}, nil
}

// Name implements Job.
func (j *MLMJob) Name() string { return PretrainJobName }

// MetricNames implements Job: the accuracy of the predicted tokens.
func (j *MLMJob) MetricNames() []string { return []string{"mlm_accuracy"} }

// BatchesPerEpoch returns the number of steps of one pass over the sequences.
func (j *MLMJob) BatchesPerEpoch() int { return (len(j.seqs) + j.batchSize - 1) / j.batchSize }

// Batch implements Job: ids [B, T], mask [B, T], prediction positions [M, 1] (flat
// b*T+t), labels [M], label validity [M], with M = B x maxPred.
func (j *MLMJob) Batch(step int64) ([]*tensors.Tensor, int, error) {
	per := int64(j.BatchesPerEpoch())
	epoch := step / per
	if epoch != j.epoch {
		j.perm = rand.New(rand.NewPCG(j.seed, uint64(epoch)+0x6d6c6d)).Perm(len(j.seqs))
		j.epoch = epoch
	}
	rng := rand.New(rand.NewPCG(j.seed^0x6d61736b, uint64(step)))
	B, T, P := j.batchSize, j.seqLen, j.maxPred
	ids := make([]int32, B*T)
	mask := make([]int32, B*T)
	pos := make([]int32, B*P)
	labels := make([]int32, B*P)
	valid := make([]float32, B*P)
	lo := int(step%per) * B
	n := 0
	for b := 0; b < B; b++ {
		k := lo + b
		if k >= len(j.perm) {
			k = j.perm[rng.IntN(len(j.perm))] // fill the last batch of an epoch
		} else {
			k = j.perm[k]
		}
		s := j.seqs[k]
		n++
		row := ids[b*T : (b+1)*T]
		copy(row, s)
		for t := range s {
			mask[b*T+t] = 1
		}
		var cand []int
		for t, id := range s {
			if !j.special[id] {
				cand = append(cand, t)
			}
		}
		k = 0
		for _, t := range cand {
			if k >= P || rng.Float64() >= MLMProbability {
				continue
			}
			pos[b*P+k] = int32(b*T + t)
			labels[b*P+k] = row[t]
			valid[b*P+k] = 1
			k++
			switch r := rng.Float64(); {
			case r < 0.8:
				row[t] = j.maskID
			case r < 0.9:
				row[t] = int32(rng.IntN(j.vocab))
			}
		}
		for ; k < P; k++ {
			pos[b*P+k] = int32(b * T) // the [CLS] position, ignored
		}
	}
	return []*tensors.Tensor{
		tensors.FromFlatDataAndDimensions(ids, B, T),
		tensors.FromFlatDataAndDimensions(mask, B, T),
		tensors.FromFlatDataAndDimensions(pos, B*P, 1),
		tensors.FromFlatDataAndDimensions(labels, B*P),
		tensors.FromFlatDataAndDimensions(valid, B*P),
	}, n, nil
}

// Loss implements Job.
func (j *MLMJob) Loss(ctx *context.Context, inputs []*graph.Node) (*graph.Node, []*graph.Node) {
	return MLMLoss(ctx, j.cfg, inputs, true)
}

// MLMLoss is the masked-LM loss and accuracy for the inputs of MLMJob.Batch.
func MLMLoss(ctx *context.Context, cfg features.PolicyConfig, inputs []*graph.Node, train bool) (*graph.Node, []*graph.Node) {
	ids, mask, pos, labels, valid := inputs[0], inputs[1], inputs[2], inputs[3], inputs[4]
	g := ids.Graph()
	hidden := models.BertEncode(ctx.In(models.PolicyScope).In("bert"), cfg.Bert, ids, mask, train) // [B, T, H]
	b, t := ids.Shape().Dimensions[0], ids.Shape().Dimensions[1]
	flat := graph.Reshape(hidden, b*t, cfg.Bert.Hidden)
	picked := graph.Gather(flat, pos) // [M, H]
	wordEmb := models.WordEmbeddings(ctx, cfg.Bert, g)
	logits := models.MLMHead(ctx.In(models.PolicyScope), cfg.Bert, wordEmb, picked) // [M, V]
	maxL := graph.StopGradient(graph.ReduceAndKeep(logits, graph.ReduceMax, -1))
	shifted := graph.Sub(logits, maxL)
	lse := graph.Log(graph.ReduceSum(graph.Exp(shifted), -1))
	onehot := graph.OneHot(labels, cfg.Bert.VocabSize, dtypes.Float32)
	nll := graph.Sub(lse, graph.ReduceSum(graph.Mul(shifted, onehot), -1))
	n := graph.Max(graph.ReduceAllSum(valid), graph.ScalarOne(g, dtypes.Float32))
	loss := graph.Div(graph.ReduceAllSum(graph.Mul(nll, valid)), n)
	hit := graph.ConvertDType(graph.Equal(graph.ArgMax(logits, -1, dtypes.Int32), labels), dtypes.Float32)
	acc := graph.Div(graph.ReduceAllSum(graph.Mul(hit, valid)), n)
	return loss, []*graph.Node{acc}
}

// PretrainRun configures RunPretrain.
type PretrainRun struct {
	RunOptions
	// Preset sizes the encoder ("tiny", "small", "base"); ignored with InitPath.
	Preset string
	// VocabPath is a vocab.txt to use; empty learns one of about VocabSize tokens from
	// the corpus (or keeps the run's own when resuming). InitPath continues from a
	// checkpoint or run directory instead (an import-hf output, say): its encoder, its
	// masked-LM head when it has one, its size and its vocabulary.
	VocabPath string
	VocabSize int
	InitPath  string
	// MaxLen is the length of the packed pretraining sequences in tokens.
	MaxLen int
	// ExtraText are more text files (ReadExtraText); instructions of the test split,
	// and queries typed for them, are left out.
	ExtraText []string
}

// DefaultPretrainRun returns pretraining's defaults: the tiny preset, 300 steps of 32
// sequences of 128 tokens, learning rate 1e-3, an 8,000-token vocabulary.
func DefaultPretrainRun() PretrainRun {
	o := DefaultRunOptions()
	o.Steps = 300
	return PretrainRun{RunOptions: o, Preset: "tiny", VocabSize: 8000, MaxLen: 128}
}

// RunPretrain pretrains the encoder with the masked-LM recipe on the shop's text (its
// products, the instructions of the train and dev goals, WebShop's page chrome and the
// extra text) and writes RUN_DIR/result.json.
func RunPretrain(ctx stdctx.Context, shop *env.Shop, r PretrainRun) (*RunResult, error) {
	start := time.Now()
	if err := r.validate(); err != nil {
		return nil, err
	}
	if r.MaxLen < 16 || r.MaxLen > 512 {
		return nil, fmt.Errorf("train: pretrain: max length %d not in [16, 512]", r.MaxLen)
	}
	docs, err := ShopCorpus(shop, "train", "dev")
	if err != nil {
		return nil, err
	}
	isTest := TestInstructions(shop)
	for _, p := range r.ExtraText {
		more, dropped, err := ReadExtraText(p, isTest)
		if err != nil {
			return nil, err
		}
		if dropped > 0 {
			r.logf("extra text %s: left out %d test-split instructions (and their queries)", p, dropped)
		}
		docs = append(docs, more...)
	}
	tok, initCk, err := chooseVocab(r.RunOptions, r.VocabPath, r.InitPath, func() (*features.Tokenizer, error) {
		return r.learnVocab(docs, r.VocabSize, "documents")
	})
	if err != nil {
		return nil, err
	}
	pcfg, err := features.NewPolicyConfig(r.Preset, tok.VocabSize(), 0, 0)
	if err != nil {
		return nil, err
	}
	if initCk != nil {
		pcfg.Bert, pcfg.Preset = initCk.Meta.Policy.Bert, initCk.Meta.Policy.Preset
		pcfg.MaxStateLen = min(pcfg.MaxStateLen, pcfg.Bert.MaxPositions)
		pcfg.MaxActionLen = min(pcfg.MaxActionLen, pcfg.Bert.MaxPositions)
		if r.MaxLen > pcfg.Bert.MaxPositions {
			return nil, fmt.Errorf("train: pretrain: max length %d exceeds the initial encoder's %d positions", r.MaxLen, pcfg.Bert.MaxPositions)
		}
	}
	if r.Dropout >= 0 {
		pcfg.Bert.Dropout = r.Dropout
	}
	seqs := PackSequences(tok, docs, r.MaxLen)
	job, err := NewMLMJob(pcfg, tok, seqs, r.Batch, r.MaxLen, uint64(r.Seed))
	if err != nil {
		return nil, err
	}
	steps := r.Steps
	if r.Epochs > 0 {
		steps = int64(r.Epochs * job.BatchesPerEpoch())
	}
	cfg, err := r.config(pcfg, tok, steps)
	if err != nil {
		return nil, err
	}
	info := map[string]any{"corpus_documents": len(docs), "sequences": len(seqs), "max_len": r.MaxLen, "extra_text": r.ExtraText}
	for k, v := range info {
		cfg.Info[k] = v
	}
	if initCk != nil {
		cfg.Info["init"] = initCk.Dir
		cfg.Init = func(c *context.Context) error {
			n, err := initCk.LoadInto(c, models.EncoderScope+"/", models.PolicyScope+"/cls/")
			if err != nil {
				return fmt.Errorf("init %s: %w", initCk.Dir, err)
			}
			r.logf("initialised from %s (step %d, %d variables)", initCk.Dir, initCk.Meta.Step, n)
			return nil
		}
	}
	r.logf("pretrain: preset %s (%d encoder parameters), %d sequences of %d tokens, %d steps of %d (%.1f epochs)",
		pcfg.Preset, pcfg.Bert.NumParams(), len(seqs), r.MaxLen, steps, r.Batch, float64(steps)/float64(job.BatchesPerEpoch()))
	res, err := Run(ctx, cfg, job)
	if err != nil {
		return nil, err
	}
	return finish("pretrain", r.Out, start, res, info)
}

// chooseVocab picks a run's tokenizer: the initial checkpoint's (initPath), a given
// vocab.txt, the run's own when resuming, or a learned one (learn).
func chooseVocab(o RunOptions, vocabPath, initPath string, learn func() (*features.Tokenizer, error)) (*features.Tokenizer, *models.Checkpoint, error) {
	runVocab := filepath.Join(o.Out, models.CheckpointVocabFile)
	switch {
	case initPath != "":
		if vocabPath != "" {
			return nil, nil, fmt.Errorf("train: the initial checkpoint brings its own vocabulary; give no vocabulary file")
		}
		ck, err := models.LoadCheckpoint(initPath, false)
		if err != nil {
			return nil, nil, fmt.Errorf("train: init: %w", err)
		}
		return ck.Tokenizer, ck, nil
	case vocabPath != "":
		tok, err := features.LoadVocab(vocabPath)
		return tok, nil, err
	case o.Resume && fileExists(runVocab):
		tok, err := features.LoadVocab(runVocab)
		return tok, nil, err
	}
	tok, err := learn()
	return tok, nil, err
}

func fileExists(p string) bool {
	_, err := os.Stat(p)
	return err == nil
}
