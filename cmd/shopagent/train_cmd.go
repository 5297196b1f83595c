package main

import (
	"context"
	"fmt"
	"os"
	"os/signal"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"time"

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

// options maps the shared flags onto train.RunOptions.
func (f *trainFlags) options(cmd *cobra.Command) train.RunOptions {
	return train.RunOptions{
		Out: f.out, Resume: f.resume, Backend: f.backend, Seed: f.seed, Steps: f.steps, Batch: f.batch,
		LR: f.lr, Warmup: f.warmup, Decay: f.decay, MinLRRatio: f.minLR, WeightDecay: f.weightDecay, Clip: f.clip,
		Dropout: f.dropout, CheckpointEvery: f.checkpointEvery, Keep: f.keep, Shapes: f.shapes,
		Log: cmd.ErrOrStderr(), LogEvery: f.logEvery, ProgressBar: !f.noProgress,
		AfterCheckpoint: f.afterCheckpoint(cmd),
		Info:            map[string]any{"args": strings.Join(os.Args, " ")},
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
			shop, err := sf.open()
			if err != nil {
				return err
			}
			r := train.DefaultPretrainRun()
			r.RunOptions = tf.options(cmd)
			r.Preset, r.VocabPath, r.VocabSize, r.InitPath, r.MaxLen, r.ExtraText = tf.preset, vocabPath, vocabSize, initPath, maxLen, extra
			ctx, cancel := signalContext(cmd.Context())
			defer cancel()
			res, err := train.RunPretrain(ctx, shop, r)
			if err != nil {
				return err
			}
			printRun(cmd, res)
			return nil
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
	var demos, initPath, vocabPath, model string
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
			if err := tf.validate(); err != nil {
				return err
			}
			r := train.DefaultILRun()
			r.RunOptions = tf.options(cmd)
			r.Epochs = epochs
			r.Demos, r.MinReward, r.InitPath, r.VocabPath = demos, minReward, initPath, vocabPath
			r.Preset, r.MaxStateLen, r.MaxActionLen, r.MaxActions, r.Model = tf.preset, maxState, maxAction, maxActions, model
			ctx, cancel := signalContext(cmd.Context())
			defer cancel()
			res, err := train.RunIL(ctx, r)
			if err != nil {
				return err
			}
			printRun(cmd, res)
			if res.Interrupted || devGoals <= 0 {
				return nil
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
			be, err := models.NewBackend(tf.backend)
			if err != nil {
				return err
			}
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
	cmd.Flags().StringVar(&model, "model", features.ModelShopAgent, "choice model: webshop (WebShop's exactly) or shopagent (with exact-match and rank priors); RL and DPO keep their --init's")
	return cmd
}

// printRun prints a run's outcome (train wrote RUN_DIR/result.json).
func printRun(cmd *cobra.Command, res *train.RunResult) {
	w := cmd.OutOrStdout()
	status := "finished"
	if res.Interrupted {
		status = "interrupted"
	}
	fmt.Fprintf(w, "%s %s at step %d (started at %d) in %s (wall %s): loss %.4f (mean of the last 10%%: %.4f)",
		res.Job, status, res.Step, res.StartStep, res.Elapsed.Round(time.Second), res.Wall.Round(time.Second), res.LastLoss, res.MeanLoss)
	keys := make([]string, 0, len(res.LastMetrics))
	for k := range res.LastMetrics {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	for _, k := range keys {
		fmt.Fprintf(w, ", %s %.4f", k, res.LastMetrics[k])
	}
	fmt.Fprintf(w, "\ncheckpoint: %s\n", res.Checkpoint)
}
