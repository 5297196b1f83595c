package main

import (
	"encoding/json"
	"fmt"
	"strings"

	"github.com/spf13/cobra"

	"shopagent/features"
	"shopagent/models"
)

// newModelsCmd is the "models" command group: model file utilities.
func newModelsCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "models",
		Short: "Model utilities: import a Hugging Face BERT",
	}
	cmd.AddCommand(newModelsImportHFCmd())
	return cmd
}

func newModelsImportHFCmd() *cobra.Command {
	var model, config, vocab, out string
	var maxState, maxAction int
	var asJSON bool
	cmd := &cobra.Command{
		Use:   "import-hf --model DIR_OR_SAFETENSORS --out DIR",
		Short: "Convert a Hugging Face BERT (model.safetensors) into a checkpoint for train il --init",
		Long: `Reads a Hugging Face BERT checkpoint (model.safetensors with BertModel names,
or BertForPreTraining/BertForMaskedLM names with the "bert." prefix; F32, F16,
BF16 or F64), its config.json and vocab.txt, and writes a checkpoint directory
(checkpoint.json, model.safetensors, vocab.txt) that "train il --init DIR" starts
the encoder from. Every encoder tensor must be present with the shape config.json
implies. The pooler and the masked-LM head (cls.predictions) are kept; other
heads are skipped and listed. The four WebShop tokens are appended to the
vocabulary and get word-embedding rows equal to the mean of the others.

--config and --vocab default to config.json and vocab.txt beside the model file,
as in a Hugging Face model directory (e.g. a download of bert-base-uncased).`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if model == "" {
				return fmt.Errorf("--model is required")
			}
			if out == "" {
				return fmt.Errorf("--out is required")
			}
			res, err := models.ImportHF(models.HFImportOptions{Model: model, Config: config, Vocab: vocab,
				MaxStateLen: maxState, MaxActionLen: maxAction}, out)
			if err != nil {
				return err
			}
			w := cmd.OutOrStdout()
			if asJSON {
				enc := json.NewEncoder(w)
				enc.SetIndent("", "  ")
				return enc.Encode(res)
			}
			b := res.Meta.Policy.Bert
			fmt.Fprintf(w, "imported %s: preset %s (%d layers, hidden %d, %d heads, intermediate %d, %d positions), %d encoder parameters\n",
				model, res.Meta.Policy.Preset, b.Layers, b.Hidden, b.Heads, b.Intermediate, b.MaxPositions, b.NumParams())
			fmt.Fprintf(w, "tensors: encoder %d, pooler %d, masked-LM head %d; vocabulary %d tokens (%d WebShop tokens added)\n",
				res.Encoder, res.Pooler, res.MLMHead, b.VocabSize, res.AddedTokens)
			if len(res.Skipped) > 0 {
				fmt.Fprintf(w, "skipped: %s\n", strings.Join(res.Skipped, ", "))
			}
			fmt.Fprintf(w, "checkpoint: %s (use: shopagent train il --init %s ...)\n", res.Dir, res.Dir)
			return nil
		},
	}
	fl := cmd.Flags()
	fl.StringVar(&model, "model", "", "Hugging Face model directory or model.safetensors file")
	fl.StringVar(&config, "config", "", "config.json (default: beside the model file)")
	fl.StringVar(&vocab, "vocab", "", "vocab.txt (default: beside the model file)")
	fl.StringVar(&out, "out", "", "checkpoint directory to write (must not exist)")
	fl.IntVar(&maxState, "max-state-len", features.DefaultMaxStateLen, "policy max state length stored in the checkpoint (capped by the positions)")
	fl.IntVar(&maxAction, "max-action-len", features.DefaultMaxActionLen, "policy max action length stored in the checkpoint")
	fl.BoolVar(&asJSON, "json", false, "print the result as JSON")
	return cmd
}
