package train

import (
	stdctx "context"
	"fmt"
	"time"

	"github.com/gomlx/gomlx/pkg/ml/context"

	"shopagent/env/webshopdata"
	"shopagent/features"
	"shopagent/models"
)

// WebShopTestGoals is the size of WebShop's test split: the first 500 human goals.
const WebShopTestGoals = 500

// QueryRun configures RunQuery, the training of the query model (models.QueryModel)
// on human search queries.
type QueryRun struct {
	RunOptions
	// Queries is a goal_query_map.json (instruction -> human queries); empty uses
	// WebShop's, embedded. HumanGoals is a human_goals.json in WebShop's goal order;
	// empty uses WebShop's, embedded. Instructions that are not human goals are dropped.
	Queries, HumanGoals string
	// KeepTest also trains on the instructions of WebShop's test split (the first
	// WebShopTestGoals human goals); by default they are held out, vocabulary included.
	KeepTest bool
	// Holdout is the fraction of the remaining instructions held out, by instruction,
	// chosen with SplitSeed.
	Holdout   float64
	SplitSeed uint64
	// Preset sizes the encoder; VocabPath, InitPath and VocabSize choose the
	// vocabulary as for pretraining (learned from instruction text only); MaxLen caps
	// an instruction's tokens.
	Preset              string
	VocabPath, InitPath string
	VocabSize, MaxLen   int
}

// DefaultQueryRun returns the query model's defaults, chosen on the held-out split:
// the tiny preset, 6 epochs of 32, learning rate 1e-3, dropout 0.3 (about 900 training
// instructions: the tagger overfits at 0.1), a 1,000-token vocabulary, 10% held out.
func DefaultQueryRun() QueryRun {
	o := DefaultRunOptions()
	o.Steps, o.Epochs, o.Dropout = 600, 6, 0.3
	return QueryRun{RunOptions: o, Holdout: 0.1, SplitSeed: 1, Preset: "tiny", VocabSize: 1000, MaxLen: models.DefaultQueryMaxLen}
}

// QueryRefSets holds a query run's instructions and their human queries by use.
type QueryRefSets struct {
	Train, Heldout, WebShopTest map[string][]string
	// Queries and HumanGoals name the sources read.
	Queries, HumanGoals string
}

// RunQuery trains the query model and writes RUN_DIR/result.json; it returns the
// instruction sets it trained on and held out.
func RunQuery(ctx stdctx.Context, r QueryRun) (*RunResult, QueryRefSets, error) {
	start := time.Now()
	var sets QueryRefSets
	if err := r.validate(); err != nil {
		return nil, sets, err
	}
	if r.Holdout < 0 || r.Holdout >= 1 {
		return nil, sets, fmt.Errorf("train: query: the held-out fraction must be in [0, 1)")
	}
	if r.MaxLen < 8 || r.MaxLen > 512 {
		return nil, sets, fmt.Errorf("train: query: max length %d not in [8, 512]", r.MaxLen)
	}
	var refs map[string][]string
	var err error
	sets.Queries, sets.HumanGoals = r.Queries, r.HumanGoals
	if r.Queries == "" {
		sets.Queries = "embedded:goal_query_map.json"
		refs, err = QueryRefs(webshopdata.GoalQueryMap())
	} else {
		refs, err = LoadQueryRefs(r.Queries)
	}
	if err != nil {
		return nil, sets, err
	}
	goalTexts := webshopdata.HumanGoals()
	if r.HumanGoals == "" {
		sets.HumanGoals = "embedded:human_goals.json"
	} else if goalTexts, err = LoadHumanGoals(r.HumanGoals); err != nil {
		return nil, sets, err
	}
	index := map[string]int{}
	for i, g := range goalTexts {
		if _, ok := index[g]; !ok {
			index[g] = i
		}
	}
	sets.WebShopTest = map[string][]string{}
	dropped := 0
	for ins := range refs {
		i, ok := index[ins]
		switch {
		case !ok:
			delete(refs, ins)
			dropped++
		case i < WebShopTestGoals && !r.KeepTest:
			sets.WebShopTest[ins] = refs[ins]
			delete(refs, ins)
		}
	}
	r.logf("queries: %d instructions are human goals (%d dropped: not in %s); %d of WebShop's test split held out",
		len(refs)+len(sets.WebShopTest), dropped, sets.HumanGoals, len(sets.WebShopTest))
	if len(refs) == 0 {
		return nil, sets, fmt.Errorf("train: query: no training instructions left in %s", sets.Queries)
	}
	sets.Train, sets.Heldout = SplitQueryRefs(refs, r.Holdout, r.SplitSeed)
	r.logf("queries: %d training instructions, %d held out (%.0f%%, split seed %d)", len(sets.Train), len(sets.Heldout), 100*r.Holdout, r.SplitSeed)
	tok, initCk, err := chooseVocab(r.RunOptions, r.VocabPath, r.InitPath, func() (*features.Tokenizer, error) {
		// Learned from instruction text only (no query labels are involved), without
		// WebShop's test split unless KeepTest.
		docs := goalTexts
		if !r.KeepTest && len(docs) > WebShopTestGoals {
			docs = docs[WebShopTestGoals:]
		}
		return r.learnVocab(docs, r.VocabSize, "instructions")
	})
	if err != nil {
		return nil, sets, err
	}
	pcfg, err := features.NewPolicyConfig(r.Preset, tok.VocabSize(), r.MaxLen, 0)
	if err != nil {
		return nil, sets, err
	}
	if initCk != nil {
		pcfg.Bert, pcfg.Preset = initCk.Meta.Policy.Bert, initCk.Meta.Policy.Preset
		pcfg.MaxStateLen = min(r.MaxLen, pcfg.Bert.MaxPositions)
		pcfg.MaxActionLen = min(pcfg.MaxActionLen, pcfg.Bert.MaxPositions)
	}
	if r.Dropout >= 0 {
		pcfg.Bert.Dropout = r.Dropout
	}
	if err := pcfg.Validate(); err != nil {
		return nil, sets, err
	}
	job, err := NewQueryJob(pcfg, tok, sets.Train, r.Batch, uint64(r.Seed))
	if err != nil {
		return nil, sets, err
	}
	steps := r.Steps
	if r.Epochs > 0 {
		steps = int64(r.Epochs * job.BatchesPerEpoch())
	}
	cfg, err := r.config(pcfg, tok, steps)
	if err != nil {
		return nil, sets, err
	}
	info := map[string]any{"queries": sets.Queries, "human_goals": sets.HumanGoals, "holdout": r.Holdout, "split_seed": r.SplitSeed,
		"train_instructions": len(sets.Train), "heldout_instructions": len(sets.Heldout)}
	for k, v := range info {
		cfg.Info[k] = v
	}
	if initCk != nil {
		cfg.Info["init"] = initCk.Dir
		cfg.Init = func(c *context.Context) error {
			n, err := initCk.LoadInto(c, models.EncoderScope+"/")
			if err != nil {
				return err
			}
			r.logf("encoder initialised from %s (%d variables)", initCk.Dir, n)
			return nil
		}
	}
	r.logf("query: preset %s (%d encoder parameters), %d instructions, %d steps of %d (%.1f epochs)",
		pcfg.Preset, pcfg.Bert.NumParams(), job.Examples(), steps, r.Batch, float64(steps)/float64(job.BatchesPerEpoch()))
	res, err := Run(ctx, cfg, job)
	if err != nil {
		return nil, sets, err
	}
	rr, err := finish("query", r.Out, start, res, info)
	return rr, sets, err
}
