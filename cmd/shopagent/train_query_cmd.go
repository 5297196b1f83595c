package main

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"time"

	mlctx "github.com/gomlx/gomlx/pkg/ml/context"
	"github.com/spf13/cobra"

	"shopagent/env/webshopdata"
	"shopagent/features"
	"shopagent/models"
	"shopagent/train"
)

// defaultQueryDropout is the query model's encoder dropout unless --dropout is given.
const defaultQueryDropout = 0.3

// webshopTestGoals is the size of WebShop's test split (the first human goals).
const webshopTestGoals = 500

// newTrainQueryCmd is "train query": the learned query model.
func newTrainQueryCmd() *cobra.Command {
	var tf trainFlags
	var sf shopFlags
	var queries, humanGoals, vocabPath, initPath string
	var holdout float64
	var splitSeed uint64
	var vocabSize, maxLen, epochs int
	var keepTest, noShopEval bool
	cmd := &cobra.Command{
		Use:   "query --out RUN_DIR [--queries goal_query_map.json]",
		Short: "Train the query model (which instruction words go into the search) on human queries",
		Long: `Trains models.QueryModel, a BERT token tagger that predicts for each word of
an instruction whether a human shopper keeps it in the search query, on WebShop's
human queries (WebShop's goal_query_map.json, embedded; --queries reads another
file in that format: instruction -> queries). The
keyword heuristic's decision is an input (token type), so the model learns where
humans differ from it. Defaults (tiny preset, 6 epochs, dropout 0.3, a 1,000-token
vocabulary learned from the instructions) were chosen on the held-out split: the
tagger overfits the ~900 training instructions with more epochs or a larger
vocabulary (16 epochs, 4,000 tokens: held-out F1 0.731 vs the heuristic's 0.779).

The instructions are WebShop human goals (--human-goals: a human_goals.json; by
default WebShop's, embedded): instructions that are not human goals are dropped,
and those of WebShop's test split (the first 500 human goals) are never trained
on, nor is the vocabulary learned from them (--keep-test to use them too); they
are reported as a second held-out set. --holdout of the remaining instructions
(10%, chosen with --split-seed) are held out by instruction.

At the end the run prints (and writes to RUN_DIR/query_eval.json) the token F1
against the human queries of the model, the heuristic and the raw instruction,
and the top-10/top-50 hit rate of the goal product on the shop's goals (shop
flags; --no-shop-eval skips it). The run directory is the query model: use it
with LoadQueryModel (or eval --query-model where wired).`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if epochs > 0 {
				tf.steps = 1 // replaced below
			}
			if err := tf.validate(); err != nil {
				return err
			}
			if holdout < 0 || holdout >= 1 {
				return fmt.Errorf("--holdout must be in [0, 1)")
			}
			if maxLen < 8 || maxLen > 512 {
				return fmt.Errorf("--max-len must be in [8, 512]")
			}
			train.InstallFastDotGradients()
			errw := cmd.ErrOrStderr()
			var refs map[string][]string
			var err error
			if queries == "" {
				queries = "embedded:goal_query_map.json"
				refs, err = train.QueryRefs(webshopdata.GoalQueryMap())
			} else {
				refs, err = train.LoadQueryRefs(queries)
			}
			if err != nil {
				return err
			}
			goalTexts := webshopdata.HumanGoals()
			if humanGoals == "" {
				humanGoals = "embedded:human_goals.json"
			} else if goalTexts, err = train.LoadHumanGoals(humanGoals); err != nil {
				return err
			}
			testRefs := map[string][]string{}
			index := map[string]int{}
			for i, g := range goalTexts {
				if _, ok := index[g]; !ok {
					index[g] = i
				}
			}
			dropped := 0
			for ins := range refs {
				i, ok := index[ins]
				switch {
				case !ok:
					delete(refs, ins)
					dropped++
				case i < webshopTestGoals && !keepTest:
					testRefs[ins] = refs[ins]
					delete(refs, ins)
				}
			}
			fmt.Fprintf(errw, "queries: %d instructions are human goals (%d dropped: not in %s); %d of WebShop's test split held out\n",
				len(refs)+len(testRefs), dropped, humanGoals, len(testRefs))
			if len(refs) == 0 {
				return fmt.Errorf("no training instructions left in %s", queries)
			}
			trainRefs, heldRefs := train.SplitQueryRefs(refs, holdout, splitSeed)
			fmt.Fprintf(errw, "queries: %d training instructions, %d held out (%.0f%%, split seed %d)\n",
				len(trainRefs), len(heldRefs), 100*holdout, splitSeed)

			var tok *features.Tokenizer
			var initCk *models.Checkpoint
			runVocab := filepath.Join(tf.out, models.CheckpointVocabFile)
			switch {
			case initPath != "":
				if initCk, err = models.LoadCheckpoint(initPath, false); err != nil {
					return fmt.Errorf("--init: %w", err)
				}
				tok = initCk.Tokenizer
			case vocabPath != "":
				tok, err = features.LoadVocab(vocabPath)
			case tf.resume && fileExists(runVocab):
				tok, err = features.LoadVocab(runVocab)
			default:
				// Learned from instruction text only (the human goals, without WebShop's
				// test split unless --keep-test): no query labels are involved.
				docs := goalTexts
				if !keepTest && len(docs) > webshopTestGoals {
					docs = docs[webshopTestGoals:]
				}
				t := time.Now()
				tok, err = train.BuildCorpusVocab(docs, vocabSize)
				if err == nil {
					fmt.Fprintf(errw, "vocabulary: %d tokens learned from %d instructions in %s\n", tok.VocabSize(), len(docs), time.Since(t).Round(time.Millisecond))
				}
			}
			if err != nil {
				return err
			}
			pcfg, err := features.NewPolicyConfig(tf.preset, tok.VocabSize(), maxLen, 0)
			if err != nil {
				return err
			}
			if initCk != nil {
				pcfg.Bert, pcfg.Preset = initCk.Meta.Policy.Bert, initCk.Meta.Policy.Preset
				pcfg.MaxStateLen = min(maxLen, pcfg.Bert.MaxPositions)
				pcfg.MaxActionLen = min(pcfg.MaxActionLen, pcfg.Bert.MaxPositions)
			}
			pcfg.Bert.Dropout = defaultQueryDropout // ~900 instructions: the tagger overfits at 0.1
			if tf.dropout >= 0 {
				pcfg.Bert.Dropout = tf.dropout
			}
			if err := pcfg.Validate(); err != nil {
				return err
			}
			job, err := train.NewQueryJob(pcfg, tok, trainRefs, tf.batch, uint64(tf.seed))
			if err != nil {
				return err
			}
			if epochs > 0 {
				tf.steps = int64(epochs * job.BatchesPerEpoch())
			}
			be, err := models.NewBackend(tf.backend)
			if err != nil {
				return err
			}
			cfg := tf.config(cmd, be, pcfg, tok)
			cfg.Info["queries"] = queries
			cfg.Info["human_goals"] = humanGoals
			cfg.Info["holdout"] = holdout
			cfg.Info["split_seed"] = splitSeed
			cfg.Info["train_instructions"] = len(trainRefs)
			cfg.Info["heldout_instructions"] = len(heldRefs)
			if initCk != nil {
				cfg.Info["init"] = initCk.Dir
				cfg.Init = func(c *mlctx.Context) error {
					n, err := initCk.LoadInto(c, models.EncoderScope+"/")
					if err != nil {
						return err
					}
					fmt.Fprintf(errw, "encoder initialised from %s (%d variables)\n", initCk.Dir, n)
					return nil
				}
			}
			fmt.Fprintf(errw, "query: preset %s (%d encoder parameters), %d instructions, %d steps of %d (%.1f epochs)\n",
				pcfg.Preset, pcfg.Bert.NumParams(), job.Examples(), tf.steps, tf.batch, float64(tf.steps)/float64(job.BatchesPerEpoch()))
			ctx, cancel := signalContext(cmd.Context())
			defer cancel()
			res, err := train.Run(ctx, cfg, job)
			if err != nil {
				return err
			}
			if err := reportRun(cmd, "query", res); err != nil || res.Interrupted {
				return err
			}

			qm, err := models.LoadQueryModel(be, res.Checkpoint)
			if err != nil {
				return err
			}
			defer qm.Close()
			w := cmd.OutOrStdout()
			report := map[string]any{"checkpoint": res.Checkpoint}
			for _, set := range []struct {
				name string
				refs map[string][]string
			}{{"train", trainRefs}, {"heldout", heldRefs}, {"webshop_test", testRefs}} {
				if len(set.refs) == 0 {
					continue
				}
				r, err := train.EvaluateQueryModel(qm, set.refs)
				if err != nil {
					return err
				}
				report[set.name] = r
				fmt.Fprintf(w, "token F1 vs human queries, %s (%d instructions): model %.3f, heuristic %.3f, instruction %.3f\n",
					set.name, r.Instructions, r.Model, r.Heuristic, r.Instruction)
			}
			if !noShopEval {
				shop, err := sf.open()
				if err != nil {
					return err
				}
				t := time.Now()
				ms := train.EvaluateQueries(shop, shop.Goals, qm)
				hs := train.EvaluateQueries(shop, shop.Goals, features.KeywordQuery{})
				report["shop_model"], report["shop_heuristic"] = ms, hs
				fmt.Fprintf(w, "goal product in the top 10 / top 50 (%d shop goals): model %.1f%% / %.1f%%, heuristic %.1f%% / %.1f%% (%s)\n",
					ms.Goals, ms.Top10, ms.Top50, hs.Top10, hs.Top50, time.Since(t).Round(time.Millisecond))
				if err := qm.Err(); err != nil {
					return err
				}
			}
			b, _ := json.MarshalIndent(report, "", "  ")
			return os.WriteFile(filepath.Join(tf.out, "query_eval.json"), append(b, '\n'), 0o644)
		},
	}
	tf.register(cmd, 600, 32, 1e-3)
	sf.register(cmd)
	fl := cmd.Flags()
	fl.StringVar(&queries, "queries", "", "a goal_query_map.json (instruction -> human queries); default: WebShop's, embedded")
	fl.StringVar(&humanGoals, "human-goals", "", "a human_goals.json in WebShop's goal order; default: WebShop's, embedded")
	fl.Float64Var(&holdout, "holdout", 0.1, "fraction of the instructions held out")
	fl.Uint64Var(&splitSeed, "split-seed", 1, "seed of the held-out split")
	fl.BoolVar(&keepTest, "keep-test", false, "also train on the instructions of WebShop's test split")
	fl.StringVar(&vocabPath, "vocab", "", "vocab.txt (default: learned from the instructions)")
	fl.StringVar(&initPath, "init", "", "pretraining run, checkpoint or import-hf directory to start the encoder from (its vocabulary is used)")
	fl.IntVar(&vocabSize, "vocab-size", 1000, "size of the learned vocabulary")
	fl.IntVar(&maxLen, "max-len", models.DefaultQueryMaxLen, "instruction tokens at most")
	fl.IntVar(&epochs, "epochs", 6, "passes over the training instructions (overrides --steps when > 0; 0 uses --steps)")
	fl.BoolVar(&noShopEval, "no-shop-eval", false, "skip the search hit-rate evaluation on the shop's goals")
	return cmd
}
