package main

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/gomlx/gomlx/backends"
	mlctx "github.com/gomlx/gomlx/pkg/ml/context"
	"github.com/spf13/cobra"

	"shopagent/export"
	"shopagent/export/onnxrt"
	"shopagent/features"
	"shopagent/models"
	"shopagent/train"
)

func newTrainCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "train",
		Short: "Train policies: pretraining, imitation learning, PG, PPO, DPO, generated trajectories, the query model",
		Long: `Training jobs write a run directory: checkpoints/ckpt-<step>/ (model and
optimizer state, config, vocabulary), metrics.parquet (step, loss, lr, grad_norm,
examples_per_s, elapsed_s, extra) and vocab.txt. A job checkpoints every
--checkpoint-every steps, at the end and on SIGINT/SIGTERM; --resume continues
from the latest checkpoint at its step.`,
	}
	cmd.AddCommand(newTrainPretrainCmd(), newTrainILCmd(), newTrainQueryCmd(), newTrainPGCmd(), newTrainPPOCmd(),
		newTrainDPOCmd(), newTrainGenerateCmd())
	return cmd
}

// trainFlags are the flags shared by training jobs.
type trainFlags struct {
	preset          string
	steps           int64
	batch           int
	lr              float64
	warmup          float64
	decay           string
	minLR           float64
	weightDecay     float64
	clip            float64
	out             string
	resume          bool
	backend         string
	shapes          string
	seed            int64
	checkpointEvery int64
	keep            int
	dropout         float64
	logEvery        int64
	noProgress      bool
	export          bool
	ortLib          string
}

// registerExport adds --export (and --ort-lib) to a job whose checkpoints are policies.
func (f *trainFlags) registerExport(cmd *cobra.Command) {
	cmd.Flags().BoolVar(&f.export, "export", false, "also export every saved checkpoint for serving: CKPT/"+exportSubdir+"/ (model.onnx, actions.onnx, scorer.onnx, vocab.txt, policy.json; parity-checked, see shopagent export)")
	cmd.Flags().StringVar(&f.ortLib, "ort-lib", "", "ONNX Runtime library for --export's parity check (default $SHOPAGENT_ORT_LIB, else third_party/onnxruntime/)")
}

// exportSubdir is where --export puts a checkpoint's policy directory.
const exportSubdir = "onnx"

func (f *trainFlags) register(cmd *cobra.Command, steps int64, batch int, lr float64) {
	fl := cmd.Flags()
	fl.StringVar(&f.preset, "preset", "tiny", "encoder size: "+strings.Join(features.PresetNames, ", "))
	fl.Int64Var(&f.steps, "steps", steps, "optimizer steps")
	fl.IntVar(&f.batch, "batch", batch, "examples per step")
	fl.Float64Var(&f.lr, "lr", lr, "peak learning rate (AdamW; suits the tiny preset, use about 1e-4 for small and base)")
	fl.Float64Var(&f.warmup, "warmup", 0.1, "linear warm-up: a fraction of the steps if < 1, else a step count")
	fl.StringVar(&f.decay, "decay", train.DecayLinear, "decay after the warm-up: linear, cosine or constant")
	fl.Float64Var(&f.minLR, "min-lr-ratio", 0, "floor of the decay as a fraction of --lr")
	fl.Float64Var(&f.weightDecay, "weight-decay", 0.01, "AdamW weight decay (matrices and embeddings only)")
	fl.Float64Var(&f.clip, "clip", 1.0, "global gradient-norm clipping (0 disables)")
	fl.StringVar(&f.out, "out", "", "run directory (required)")
	fl.BoolVar(&f.resume, "resume", false, "continue from the run directory's latest checkpoint")
	fl.StringVar(&f.backend, "backend", models.DefaultBackend, "GoMLX backend: go (pure Go) or xla[:cuda|cpu|/path/plugin.so]")
	fl.StringVar(&f.shapes, "shapes", models.ShapesAuto, "padded input shapes: auto (on the XLA backend a small fixed set, compiled before the first step; fine buckets otherwise), xla or fine (docs/GPU.md)")
	fl.Int64Var(&f.seed, "train-seed", 1, "seed of initialisation, dropout, data order and masking (--seed is the shop's price seed)")
	fl.Int64Var(&f.checkpointEvery, "checkpoint-every", 100, "checkpoint every N steps (0: only at the end)")
	fl.IntVar(&f.keep, "keep", 3, "checkpoints kept (0: all)")
	fl.Float64Var(&f.dropout, "dropout", -1, "encoder dropout (-1: the preset's, 0.1)")
	fl.Int64Var(&f.logEvery, "log-every", 0, "log line every N steps (0: 10% of the run)")
	fl.BoolVar(&f.noProgress, "no-progress", false, "no progress bar, log lines only")
}

func (f *trainFlags) validate() error {
	switch {
	case f.out == "":
		return fmt.Errorf("--out is required")
	case f.steps <= 0:
		return fmt.Errorf("--steps must be positive")
	case f.batch <= 0:
		return fmt.Errorf("--batch must be positive")
	case !(f.lr > 0):
		return fmt.Errorf("--lr must be positive")
	case f.dropout >= 1:
		return fmt.Errorf("--dropout must be below 1")
	}
	return nil
}

func (f *trainFlags) config(cmd *cobra.Command, be backends.Backend, pcfg features.PolicyConfig, tok *features.Tokenizer) train.Config {
	warm := int64(f.warmup)
	if f.warmup < 1 {
		warm = int64(f.warmup * float64(f.steps))
	}
	return train.Config{
		RunDir: f.out, Steps: f.steps,
		Schedule:        train.Schedule{Peak: f.lr, Warmup: warm, Decay: f.decay, MinRatio: f.minLR},
		Optimizer:       train.OptimizerConfig{WeightDecay: f.weightDecay, ClipNorm: f.clip},
		CheckpointEvery: f.checkpointEvery, Keep: f.keep, Resume: f.resume, Seed: f.seed,
		Policy: pcfg, Tokenizer: tok, Backend: be, Shapes: f.shapes,
		Log: cmd.ErrOrStderr(), LogEvery: f.logEvery, ProgressBar: !f.noProgress,
		Info:            map[string]any{"args": strings.Join(os.Args, " "), "seed": f.seed, "backend": f.backend},
		AfterCheckpoint: f.afterCheckpoint(cmd),
	}
}

// afterCheckpoint returns the --export hook (nil without --export).
func (f *trainFlags) afterCheckpoint(cmd *cobra.Command) func(string) error {
	if !f.export {
		return nil
	}
	return func(dir string) error {
		res, err := export.Export(dir, filepath.Join(dir, exportSubdir), export.Options{
			Backend: f.backend, ORT: onnxrt.Options{Lib: f.ortLib}, Overwrite: true})
		if err != nil {
			return fmt.Errorf("--export: %w", err)
		}
		fmt.Fprintf(cmd.ErrOrStderr(), "exported %s (parity max |diff| %.2g)\n", res.Dir, res.Manifest.Parity.MaxAbsDiff)
		return nil
	}
}

// signalContext is cancelled on SIGINT or SIGTERM, so jobs checkpoint and stop.
func signalContext(parent context.Context) (context.Context, context.CancelFunc) {
	if parent == nil {
		parent = context.Background()
	}
	return signal.NotifyContext(parent, os.Interrupt, syscall.SIGTERM)
}

func newTrainPretrainCmd() *cobra.Command {
	var tf trainFlags
	var sf shopFlags
	var vocabPath, initPath string
	var vocabSize, maxLen int
	var extra []string
	cmd := &cobra.Command{
		Use:   "pretrain --out RUN_DIR",
		Short: "Masked-LM pretraining of the encoder on shop text",
		Long: `Pretrains the policy's BERT encoder with BERT's masked-LM recipe (15% of the
tokens; 80% [MASK], 10% random, 10% kept) on the shop's text: one page-like
document per product (title, price, options, bullet points, description) and
the instructions of the train and dev goals (never the test goals), plus the
--extra-text files (a JSON list of strings such as WebShop's human_goals.json,
or a text file with one document per line). Without --vocab a WordPiece
vocabulary is learned from that corpus and saved as RUN_DIR/vocab.txt.
--init continues from a checkpoint instead (for example a Hugging Face BERT
brought in by 'shopagent models import-hf'): its encoder, its masked-LM head
when it has one, its size and its vocabulary.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if err := tf.validate(); err != nil {
				return err
			}
			if maxLen < 16 || maxLen > 512 {
				return fmt.Errorf("--max-len must be in [16, 512]")
			}
			train.InstallFastDotGradients()
			shop, err := sf.open()
			if err != nil {
				return err
			}
			docs, err := train.ShopCorpus(shop, "train", "dev")
			if err != nil {
				return err
			}
			isTest := train.TestInstructions(shop)
			for _, p := range extra {
				more, dropped, err := train.ReadExtraText(p, isTest)
				if err != nil {
					return err
				}
				if dropped > 0 {
					fmt.Fprintf(cmd.ErrOrStderr(), "--extra-text %s: left out %d test-split instructions (and their queries)\n", p, dropped)
				}
				docs = append(docs, more...)
			}
			var tok *features.Tokenizer
			var initCk *models.Checkpoint
			runVocab := filepath.Join(tf.out, models.CheckpointVocabFile)
			switch {
			case initPath != "":
				if vocabPath != "" {
					return fmt.Errorf("--init brings its own vocabulary; drop --vocab")
				}
				initCk, err = models.LoadCheckpoint(initPath, false)
				if err != nil {
					return fmt.Errorf("--init: %w", err)
				}
				tok = initCk.Tokenizer
			case vocabPath != "":
				tok, err = features.LoadVocab(vocabPath)
			case tf.resume && fileExists(runVocab):
				tok, err = features.LoadVocab(runVocab)
			default:
				t := time.Now()
				tok, err = train.BuildCorpusVocab(docs, vocabSize)
				if err == nil {
					fmt.Fprintf(cmd.ErrOrStderr(), "vocabulary: %d tokens learned from %d documents in %s\n", tok.VocabSize(), len(docs), time.Since(t).Round(time.Millisecond))
				}
			}
			if err != nil {
				return err
			}
			pcfg, err := features.NewPolicyConfig(tf.preset, tok.VocabSize(), 0, 0)
			if err != nil {
				return err
			}
			if initCk != nil {
				pcfg.Bert, pcfg.Preset = initCk.Meta.Policy.Bert, initCk.Meta.Policy.Preset
				pcfg.MaxStateLen = min(pcfg.MaxStateLen, pcfg.Bert.MaxPositions)
				pcfg.MaxActionLen = min(pcfg.MaxActionLen, pcfg.Bert.MaxPositions)
				if maxLen > pcfg.Bert.MaxPositions {
					return fmt.Errorf("--max-len %d exceeds the --init encoder's %d positions", maxLen, pcfg.Bert.MaxPositions)
				}
			}
			if tf.dropout >= 0 {
				pcfg.Bert.Dropout = tf.dropout
			}
			seqs := train.PackSequences(tok, docs, maxLen)
			job, err := train.NewMLMJob(pcfg, tok, seqs, tf.batch, maxLen, uint64(tf.seed))
			if err != nil {
				return err
			}
			be, err := models.NewBackend(tf.backend)
			if err != nil {
				return err
			}
			cfg := tf.config(cmd, be, pcfg, tok)
			cfg.Info["corpus_documents"] = len(docs)
			cfg.Info["sequences"] = len(seqs)
			cfg.Info["max_len"] = maxLen
			cfg.Info["extra_text"] = extra
			if initCk != nil {
				cfg.Info["init"] = initCk.Dir
				cfg.Init = func(c *mlctx.Context) error {
					n, err := initCk.LoadInto(c, models.EncoderScope+"/", models.PolicyScope+"/cls/")
					if err != nil {
						return fmt.Errorf("--init %s: %w", initCk.Dir, err)
					}
					fmt.Fprintf(cmd.ErrOrStderr(), "initialised from %s (step %d, %d variables)\n", initCk.Dir, initCk.Meta.Step, n)
					return nil
				}
			}
			fmt.Fprintf(cmd.ErrOrStderr(), "pretrain: preset %s (%d encoder parameters), %d sequences of %d tokens, %d steps of %d (%.1f epochs)\n",
				pcfg.Preset, pcfg.Bert.NumParams(), len(seqs), maxLen, tf.steps, tf.batch, float64(tf.steps)/float64(job.BatchesPerEpoch()))
			ctx, cancel := signalContext(cmd.Context())
			defer cancel()
			res, err := train.Run(ctx, cfg, job)
			if err != nil {
				return err
			}
			return reportRun(cmd, "pretrain", res)
		},
	}
	tf.register(cmd, 300, 32, 1e-3)
	sf.register(cmd)
	cmd.Flags().StringVar(&vocabPath, "vocab", "", "vocab.txt to use (default: learn one from the corpus)")
	cmd.Flags().StringVar(&initPath, "init", "", "checkpoint or run directory to continue from (e.g. an import-hf output): encoder, MLM head, size and vocabulary")
	cmd.Flags().IntVar(&vocabSize, "vocab-size", 8000, "size of the learned vocabulary")
	cmd.Flags().IntVar(&maxLen, "max-len", 128, "tokens per pretraining sequence")
	cmd.Flags().StringSliceVar(&extra, "extra-text", nil, "extra text files (JSON list of strings or one document per line)")
	return cmd
}

func newTrainILCmd() *cobra.Command {
	var tf trainFlags
	var sf shopFlags
	var demos, initPath, vocabPath string
	var maxState, maxAction, maxActions, devGoals, epochs int
	var minReward float64
	cmd := &cobra.Command{
		Use:   "il --demos FILE.parquet --out RUN_DIR [--init PRETRAIN_RUN_DIR]",
		Short: "Imitation learning of the choice policy from demonstrations",
		Long: `Trains the choice policy (BERT encoder + BiDAF choice head + value head) with
the cross-entropy of the demonstrated action among the available ones, on the
click steps of a trajectory file (searches are made by the agent's query
proposer). --init starts the encoder from a pretraining run (its vocabulary is
used); otherwise the encoder starts from scratch with --vocab or a vocabulary
learned from the demonstrations. With --dev-goals N the policy is evaluated on
the first N dev goals of the shop (shop flags) at the end.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if demos == "" {
				return fmt.Errorf("--demos is required")
			}
			if epochs > 0 {
				tf.steps = 1 // replaced below
			}
			if err := tf.validate(); err != nil {
				return err
			}
			train.InstallFastDotGradients()
			t := time.Now()
			data, err := train.LoadILData(demos, minReward)
			if err != nil {
				return err
			}
			fmt.Fprintf(cmd.ErrOrStderr(), "demos: %d click steps from %d episodes (%d skipped, %s observations) in %s\n",
				len(data.Examples), data.Episodes, data.Skipped, data.ObsMode, time.Since(t).Round(time.Millisecond))
			var tok *features.Tokenizer
			var initCk *models.Checkpoint
			bert := features.BertConfig{}
			switch {
			case initPath != "":
				initCk, err = models.LoadCheckpoint(initPath, false)
				if err != nil {
					return fmt.Errorf("--init: %w", err)
				}
				tok = initCk.Tokenizer
				bert = initCk.Meta.Policy.Bert
			case vocabPath != "":
				tok, err = features.LoadVocab(vocabPath)
			case tf.resume && fileExists(filepath.Join(tf.out, models.CheckpointVocabFile)):
				tok, err = features.LoadVocab(filepath.Join(tf.out, models.CheckpointVocabFile))
			default:
				var docs []string
				for _, ex := range data.Examples {
					docs = append(docs, ex.State)
					docs = append(docs, ex.Actions...)
				}
				tok, err = train.BuildCorpusVocab(docs, 8000)
			}
			if err != nil {
				return err
			}
			pcfg, err := features.NewPolicyConfig(tf.preset, tok.VocabSize(), maxState, maxAction)
			if err != nil {
				return err
			}
			if initCk != nil {
				pcfg.Bert, pcfg.Preset = bert, initCk.Meta.Policy.Preset
				// The --init encoder's positions bound the lengths (an imported BERT has 512).
				pcfg.MaxStateLen = min(pcfg.MaxStateLen, bert.MaxPositions)
				pcfg.MaxActionLen = min(pcfg.MaxActionLen, bert.MaxPositions)
			}
			if tf.dropout >= 0 {
				pcfg.Bert.Dropout = tf.dropout
			}
			pcfg.ObsMode = data.ObsMode
			if err := pcfg.Validate(); err != nil {
				return err
			}
			enc := make([]features.EncodedChoice, len(data.Examples))
			for i, ex := range data.Examples {
				enc[i] = features.EncodeChoice(tok, pcfg, ex)
			}
			job, err := train.NewILJob(pcfg, enc, tf.batch, maxActions, uint64(tf.seed))
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
			cfg.Info["demos"] = demos
			cfg.Info["examples"] = len(enc)
			cfg.Info["episodes"] = data.Episodes
			if initCk != nil {
				cfg.Info["init"] = initCk.Dir
				cfg.Init = func(c *mlctx.Context) error {
					n, err := initCk.LoadInto(c, models.EncoderScope+"/")
					if err != nil {
						return err
					}
					fmt.Fprintf(cmd.ErrOrStderr(), "encoder initialised from %s (step %d, %d variables)\n", initCk.Dir, initCk.Meta.Step, n)
					return nil
				}
			}
			fmt.Fprintf(cmd.ErrOrStderr(), "il: preset %s, %d examples, %d steps of %d (%.1f epochs)\n",
				pcfg.Preset, len(enc), tf.steps, tf.batch, float64(tf.steps)/float64(job.BatchesPerEpoch()))
			ctx, cancel := signalContext(cmd.Context())
			defer cancel()
			res, err := train.Run(ctx, cfg, job)
			if err != nil {
				return err
			}
			if err := reportRun(cmd, "il", res); err != nil || res.Interrupted || devGoals <= 0 {
				return err
			}
			shop, err := sf.open()
			if err != nil {
				return err
			}
			goals, err := shop.SplitGoals("dev")
			if err != nil {
				return err
			}
			goals = goals[:min(devGoals, len(goals))]
			pol, err := models.LoadPolicy(be, res.Checkpoint)
			if err != nil {
				return err
			}
			defer pol.Close()
			ev, err := train.EvaluatePolicy(shop, goals, pol, train.EvalConfig{GoalOffset: shop.Splits.Dev[0]})
			if err != nil {
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "il: dev (%d goals): score %.2f, success rate %.2f%%, mean steps %.2f (%s)\n",
				ev.Summary.Episodes, ev.Summary.Score, ev.Summary.SuccessRate, ev.Summary.MeanSteps, ev.Elapsed.Round(time.Millisecond))
			return nil
		},
	}
	tf.register(cmd, 500, 32, 1e-3)
	tf.registerExport(cmd)
	sf.register(cmd)
	cmd.Flags().StringVar(&demos, "demos", "", "demonstrations: a trajectory file or a directory of them")
	cmd.Flags().StringVar(&initPath, "init", "", "pretraining run directory or checkpoint to start the encoder from")
	cmd.Flags().StringVar(&vocabPath, "vocab", "", "vocab.txt (without --init; default: learned from the demonstrations)")
	cmd.Flags().IntVar(&maxState, "max-state-len", features.DefaultMaxStateLen, "longest state in tokens (truncated from the left)")
	cmd.Flags().IntVar(&maxAction, "max-action-len", features.DefaultMaxActionLen, "longest action in tokens")
	cmd.Flags().IntVar(&maxActions, "max-actions", train.DefaultTrainMaxActions, "actions per training state (the demonstrated one and a random sample)")
	cmd.Flags().IntVar(&epochs, "epochs", 0, "passes over the examples (overrides --steps when > 0)")
	cmd.Flags().IntVar(&devGoals, "dev-goals", 0, "evaluate on the first N dev goals at the end")
	cmd.Flags().Float64Var(&minReward, "min-reward", 0, "use only episodes with at least this final reward")
	return cmd
}

// reportRun prints a run's outcome and writes RUN_DIR/result.json.
func reportRun(cmd *cobra.Command, job string, res *train.Result) error {
	w := cmd.OutOrStdout()
	status := "finished"
	if res.Interrupted {
		status = "interrupted"
	}
	fmt.Fprintf(w, "%s %s at step %d (started at %d) in %s: loss %.4f (mean of the last 10%%: %.4f)",
		job, status, res.Step, res.StartStep, res.Elapsed.Round(time.Second), res.LastLoss, res.MeanLoss)
	for k, v := range res.LastMetrics {
		fmt.Fprintf(w, ", %s %.4f", k, v)
	}
	fmt.Fprintf(w, "\ncheckpoint: %s\n", res.Checkpoint)
	b, _ := json.MarshalIndent(map[string]any{
		"job": job, "status": status, "step": res.Step, "start_step": res.StartStep,
		"elapsed_s": res.Elapsed.Seconds(), "last_loss": res.LastLoss, "mean_loss": res.MeanLoss,
		"metrics": res.LastMetrics, "checkpoint": res.Checkpoint,
	}, "", "  ")
	return os.WriteFile(filepath.Join(filepath.Dir(filepath.Dir(res.Checkpoint)), "result.json"), append(b, '\n'), 0o644)
}

func fileExists(p string) bool {
	_, err := os.Stat(p)
	return err == nil
}
