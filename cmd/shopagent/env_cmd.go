package main

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"shopagent/env"
	"shopagent/env/shopgen"
	"shopagent/env/webshopdata"
)

func newEnvCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "env",
		Short: "The shop simulator: generate a shop, play it, step it, score purchases",
	}
	cmd.AddCommand(newEnvGenerateCmd(), newEnvStatsCmd(), newEnvParseCmd(), newEnvPlayCmd(), newEnvStepCmd(), newEnvRewardCmd(),
		newEnvBenchCmd(), newEnvWebCmd())
	return cmd
}

func newEnvGenerateCmd() *cobra.Command {
	cfg := shopgen.DefaultConfig()
	var out string
	var quiet bool
	cmd := &cobra.Command{
		Use:   "generate --out DIR [--goals 2500|all|RANGES] [--products N] [--seed S]",
		Short: "Generate the built-in shop: WebShop's human instructions with products built backwards",
		Long: `Writes items_shuffle.json, items_ins_v2.json, items_human_ins.json (WebShop's
formats) and goals.json into --out. The goals are WebShop's 12,087 human
instructions in WebShop's goal order (--goals selects them: the first N, all, or
index ranges such as 0-49,500-549,1500-1699); the splits are WebShop's (test =
goal indices 0-499, dev = 500-1499, train = the rest). Each goal gets
--products/goals products (--per-goal when --products is 0): a target built
from the instruction, near-duplicate siblings, distractors of another kind and
fillers of the same sub-category. The output is byte-identical for the same flags.
See docs/ENV.md for the calibration of the knobs.`,
		Example: `  shopagent env generate --out shop                 # the default: 2,500 goals, 25,000 products
  shopagent env generate --goals all --out shop-full  # 12,087 goals, 120,870 products`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if out == "" {
				return fmt.Errorf("--out is required")
			}
			t := time.Now()
			var progress func(done, total int)
			var bar *episodeProgress
			if !quiet {
				progress = func(done, total int) {
					if bar == nil {
						bar = newCountBar(total, "generate", "goals")
					}
					_ = bar.Set(done)
				}
			}
			err := shopgen.Generate(cfg, out, progress)
			if bar != nil {
				_ = bar.Finish()
			}
			if err != nil {
				return err
			}
			goals, products, err := cfg.Size()
			if err != nil {
				return err
			}
			sp := env.SplitRanges(goals)
			fmt.Fprintf(cmd.OutOrStdout(), "wrote %d products and %d goals (test %d, dev %d, train %d) to %s in %s\n",
				products, goals, span(sp.Test), span(sp.Dev), span(sp.Train), out, time.Since(t).Round(time.Millisecond))
			return nil
		},
	}
	f := cmd.Flags()
	f.StringVar(&out, "out", "", "output directory")
	f.StringVar(&cfg.Goals, "goals", cfg.Goals, "WebShop goals to use: N (the first N), all, or index ranges like 0-49,500-549")
	f.IntVar(&cfg.Products, "products", cfg.Products, "catalogue size (0: --per-goal per goal; at most 1,181,436)")
	f.IntVar(&cfg.ProductsPerGoal, "per-goal", cfg.ProductsPerGoal, "products per goal when --products is 0")
	f.Int64Var(&cfg.Seed, "seed", cfg.Seed, "generator seed")
	f.BoolVar(&quiet, "quiet", false, "no progress line")
	f.Float64Var(&cfg.Siblings, "siblings", cfg.Siblings, "mean near-duplicate siblings of the target per goal")
	f.Float64Var(&cfg.DuplicateShare, "duplicate-share", cfg.DuplicateShare, "share of siblings that satisfy the goal too")
	f.Float64Var(&cfg.Distractors, "distractors", cfg.Distractors, "mean distractors (another kind of product named after the goal's) per goal")
	f.Float64Var(&cfg.FillerType, "filler-type", cfg.FillerType, "probability that a filler is named with the goal's product type")
	f.Float64Var(&cfg.FillerKeywords, "filler-keywords", cfg.FillerKeywords, "probability that a filler repeats each other instruction word")
	f.Float64Var(&cfg.FillerAttributes, "filler-attributes", cfg.FillerAttributes, "probability that a filler has each goal attribute")
	f.Float64Var(&cfg.FillerNearAttributes, "filler-near-attributes", cfg.FillerNearAttributes, "probability that a filler has an attribute sharing a word with a goal attribute it lacks")
	f.Float64Var(&cfg.AttrOnlyMined, "attr-only-mined", cfg.AttrOnlyMined, "probability that a target's goal attribute is in its mined attributes only")
	f.Float64Var(&cfg.AttrUnsearchable, "attr-unsearchable", cfg.AttrUnsearchable, "probability that it is written only in later bullet points (not searchable)")
	f.Float64Var(&cfg.NoAttributesRate, "no-attributes-rate", cfg.NoAttributesRate, "share of non-target products without mined attributes")
	f.Float64Var(&cfg.NoPriceFashion, "no-price-fashion", cfg.NoPriceFashion, "share of fashion products without pricing ($100.0)")
	f.Float64Var(&cfg.NoPriceOther, "no-price-other", cfg.NoPriceOther, "share of other products without pricing")
	f.Float64Var(&cfg.TargetNoPrice, "target-no-price", cfg.TargetNoPrice, "share of targets without pricing")
	f.Float64Var(&cfg.PriceRangeRate, "price-range-rate", cfg.PriceRangeRate, "share of priced products priced as a range")
	f.Float64Var(&cfg.EmptyDescRate, "empty-desc-rate", cfg.EmptyDescRate, "share of products with an empty description")
	f.Float64Var(&cfg.NoisyQueryRate, "noisy-query-rate", cfg.NoisyQueryRate, "share of products whose query field is another sub-category's")
	f.Float64Var(&cfg.SyntheticInsRate, "synthetic-ins-rate", cfg.SyntheticInsRate, "share of products (2+ attributes) with a synthetic instruction")
	return cmd
}

func newEnvStatsCmd() *cobra.Command {
	var sf shopFlags
	var split string
	var asJSON bool
	cmd := &cobra.Command{
		Use:   "stats [--data DIR] [--split test] [--json]",
		Short: "Print how realistic a shop is, beside real WebShop's figures",
		Long: `Computes, for any shop (the built-in one or WebShop's own files), the figures
that compare it with real WebShop: where its instructions come from, title
lengths, titles shared between products, products without mined attributes or
prices, goals without options, how often searching the instruction puts the
goal's product first or on the first page, and WebShop's rule agent (search the
instruction, buy the first result) on --split. Real WebShop's figures stand
beside them with their basis.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			shop, err := sf.open()
			if err != nil {
				return err
			}
			st, err := env.Stats(shop, split, 0)
			if err != nil {
				return err
			}
			if asJSON {
				enc := json.NewEncoder(cmd.OutOrStdout())
				enc.SetIndent("", "  ")
				return enc.Encode(struct {
					Shop    env.ShopStats                `json:"shop"`
					WebShop map[string]env.WebShopFigure `json:"webshop"`
				}{st, env.WebShopReference()})
			}
			printStats(cmd.OutOrStdout(), st)
			return nil
		},
	}
	sf.register(cmd)
	cmd.Flags().StringVar(&split, "split", "test", "split for the search and rule-agent figures: test, dev, train or all")
	cmd.Flags().BoolVar(&asJSON, "json", false, "print JSON instead of a table")
	return cmd
}

// printStats writes the stats table with WebShop's figures beside.
func printStats(w io.Writer, st env.ShopStats) {
	ref := env.WebShopReference()
	rows := []struct {
		key, label, val string
	}{
		{"products", "products", fmt.Sprint(st.Products)},
		{"goals", "goals", fmt.Sprint(st.Goals)},
		{"human_instructions_pct", "instructions that are WebShop's human texts, %", fmt.Sprintf("%.1f", st.HumanInstructionsPct)},
		{"words_per_instruction", "words per instruction", fmt.Sprintf("%.1f", st.WordsPerInstruction)},
		{"distinct_words_per_1000", "distinct words per 1,000 instructions", fmt.Sprintf("%.0f", st.DistinctWordsPer1000)},
		{"title_words_mean", "title words, mean (min to max)", fmt.Sprintf("%.1f (%d to %d)", st.TitleWordsMean, st.TitleWordsMin, st.TitleWordsMax)},
		{"shared_title_pct", "products sharing an exact title, %", fmt.Sprintf("%.1f", st.SharedTitlePct)},
		{"no_mined_attr_pct", "products without a mined attribute, %", fmt.Sprintf("%.1f", st.NoMinedAttrPct)},
		{"mined_attrs_mean", "mined attributes per product", fmt.Sprintf("%.2f", st.MinedAttrsMean)},
		{"no_price_pct", "products without pricing, %", fmt.Sprintf("%.1f", st.NoPricePct)},
		{"empty_desc_pct", "products with an empty description, %", fmt.Sprintf("%.1f", st.EmptyDescPct)},
		{"goals_without_options_pct", "goals without options, %", fmt.Sprintf("%.1f", st.NoOptionsPct)},
		{"attributes_per_goal", "attributes / options per goal", fmt.Sprintf("%.2f / %.2f", st.AttrsPerGoal, st.OptionsPerGoal)},
		{"target_rank1_pct", fmt.Sprintf("target first / in top 10, instruction as query (%s), %%", st.Split), fmt.Sprintf("%.1f / %.1f", st.TargetRank1Pct, st.TargetTop10Pct)},
		{"rule_score", fmt.Sprintf("rule agent score (%s, %d goals)", st.Split, st.SplitGoals), fmt.Sprintf("%.1f", st.RuleScore)},
		{"rule_success_pct", "rule agent success, %", fmt.Sprintf("%.1f", st.RuleSuccessPct)},
		{"rule_right_type_pct", "rule agent buys the right type (r_type 1), %", fmt.Sprintf("%.1f", st.RuleRightTypePct)},
	}
	fmt.Fprintf(w, "| %s | this shop | real WebShop | basis |\n| --- | ---: | ---: | --- |\n", "figure")
	for _, r := range rows {
		f, ok := ref[r.key]
		if !ok {
			f = env.WebShopFigure{Value: "-", Basis: "not measured"}
		}
		fmt.Fprintf(w, "| %s | %s | %s | %s |\n", r.label, r.val, f.Value, f.Basis)
	}
}

func newEnvParseCmd() *cobra.Command {
	var goal int
	cmd := &cobra.Command{
		Use:   "parse [INSTRUCTION] [--goal I]",
		Short: "Show what the built-in shop's generator reads from an instruction",
		Long: `Prints, as JSON, the product type, attributes (WebShop's mined phrases),
option values and other words that the built-in shop's generator reads from an
instruction: the text given, or WebShop's human instruction number --goal (its
index in WebShop's goal order).`,
		Args: cobra.MaximumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			var ins string
			switch {
			case len(args) == 1:
				ins = args[0]
			case goal >= 0 && goal < webshopdata.NumHumanGoals:
				ins = webshopdata.HumanGoals()[goal]
			default:
				return fmt.Errorf("give an instruction or --goal 0..%d", webshopdata.NumHumanGoals-1)
			}
			enc := json.NewEncoder(cmd.OutOrStdout())
			enc.SetIndent("", "  ")
			enc.SetEscapeHTML(false)
			return enc.Encode(shopgen.Parse(ins))
		},
	}
	cmd.Flags().IntVar(&goal, "goal", -1, "WebShop's human instruction of this goal index")
	return cmd
}

// span is the length of a [start, end) range.
func span(r [2]int) int { return r[1] - r[0] }

// goalFlags pick one goal of a shop.
type goalFlags struct {
	split string
	goal  int
	obs   string
	steps int
	attrs bool
}

func (g *goalFlags) register(cmd *cobra.Command) {
	cmd.Flags().StringVar(&g.split, "split", "test", "goal split: test, dev, train or all")
	cmd.Flags().IntVar(&g.goal, "goal", 0, "goal index within the split")
	cmd.Flags().StringVar(&g.obs, "obs", "text_rich", "observation mode: text or text_rich")
	cmd.Flags().IntVar(&g.steps, "max-steps", 100, "end the episode with reward 0 after this many steps (0 = no cap)")
	cmd.Flags().BoolVar(&g.attrs, "show-attributes", false, "offer the attributes sub-page on item pages")
}

func (g *goalFlags) pick(shop *env.Shop) (env.Goal, env.Config, error) {
	mode, err := env.ParseObsMode(g.obs)
	if err != nil {
		return env.Goal{}, env.Config{}, err
	}
	goals, err := shop.SplitGoals(g.split)
	if err != nil {
		return env.Goal{}, env.Config{}, err
	}
	if g.goal < 0 || g.goal >= len(goals) {
		return env.Goal{}, env.Config{}, fmt.Errorf("--goal %d out of range: split %q has %d goals", g.goal, g.split, len(goals))
	}
	return goals[g.goal], env.Config{Mode: mode, MaxSteps: g.steps, ShowAttributes: g.attrs}, nil
}

func newEnvPlayCmd() *cobra.Command {
	var sf shopFlags
	var gf goalFlags
	cmd := &cobra.Command{
		Use:   "play",
		Short: "Play a goal in the terminal",
		Long: `Shows each page with numbered actions. Type a number, search[...] or
click[...] (or "search words" as a shortcut for search[words]); "quit" ends.
The reward and its components are shown after "buy now".`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			shop, err := sf.open()
			if err != nil {
				return err
			}
			goal, cfg, err := gf.pick(shop)
			if err != nil {
				return err
			}
			return play(shop.NewEnv(cfg), goal, cmd.InOrStdin(), cmd.OutOrStdout())
		},
	}
	sf.register(cmd)
	gf.register(cmd)
	return cmd
}

func play(e *env.Env, goal env.Goal, in io.Reader, out io.Writer) error {
	obs := e.Reset(goal)
	sc := bufio.NewScanner(in)
	for {
		fmt.Fprintf(out, "\n==== %s page ====\n%s\n", obs.Page, obs.Text)
		actions := obs.Actions()
		for i, a := range actions {
			fmt.Fprintf(out, "  [%d] %s\n", i, a)
		}
		fmt.Fprint(out, "> ")
		if !sc.Scan() {
			return sc.Err()
		}
		line := strings.TrimSpace(sc.Text())
		switch {
		case line == "quit" || line == "exit":
			return nil
		case line == "":
			continue
		}
		action := line
		if n, err := strconv.Atoi(line); err == nil {
			if n < 0 || n >= len(actions) {
				fmt.Fprintf(out, "no action %d\n", n)
				continue
			}
			action = actions[n]
			if strings.HasPrefix(action, "search[") {
				fmt.Fprint(out, "search for: ")
				if !sc.Scan() {
					return sc.Err()
				}
				action = env.Search(strings.TrimSpace(sc.Text()))
			}
		} else if !strings.Contains(line, "[") {
			action = env.Search(line)
		}
		next, r, done, info := e.Step(action)
		if !info.Valid {
			fmt.Fprintf(out, "(%q did nothing: %s)\n", action, info.Reason)
		}
		obs = next
		if done {
			fmt.Fprintf(out, "\n==== done after %d steps: reward %.4f ====\n", info.Steps, r)
			if info.Purchase != nil {
				b, _ := json.MarshalIndent(info.Purchase, "", "  ")
				fmt.Fprintln(out, string(b))
			}
			if info.Truncated {
				fmt.Fprintln(out, "(step cap reached)")
			}
			return nil
		}
	}
}

// stepLine is one JSON line of `env step`.
type stepLine struct {
	Step             int             `json:"step"`
	Action           string          `json:"action,omitempty"`
	Valid            *bool           `json:"valid,omitempty"`
	Reason           string          `json:"reason,omitempty"`
	Page             env.PageKind    `json:"page"`
	Text             string          `json:"text"`
	AvailableActions []string        `json:"available_actions"`
	Reward           float64         `json:"reward"`
	Done             bool            `json:"done"`
	Truncated        bool            `json:"truncated,omitempty"`
	Purchase         *env.Purchase   `json:"purchase,omitempty"`
	Components       *env.RewardInfo `json:"reward_components,omitempty"`
	Goal             *env.Goal       `json:"goal,omitempty"`
}

func newEnvStepCmd() *cobra.Command {
	var sf shopFlags
	var gf goalFlags
	var actions []string
	var showGoal bool
	cmd := &cobra.Command{
		Use:   "step --goal I --action A [--action A ...]",
		Short: "Run scripted actions on a goal, printing one JSON line per observation",
		Long: `Resets the goal, then applies each --action in order. Prints the first
observation and one JSON line after each action: page, text, available actions,
reward, done, and the reward components when done. An action that does nothing
(WebShop ignores it) is printed with the reason and ends the command with an
error (exit status 1).`,
		Example: `  shopagent env step --goal 0 --obs text --action 'search[red lipstick]' --action 'click[b0abc12345]'`,
		Args:    cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			shop, err := sf.open()
			if err != nil {
				return err
			}
			goal, cfg, err := gf.pick(shop)
			if err != nil {
				return err
			}
			e := shop.NewEnv(cfg)
			enc := json.NewEncoder(cmd.OutOrStdout())
			enc.SetEscapeHTML(false)
			obs := e.Reset(goal)
			first := stepLine{Page: obs.Page, Text: obs.Text, AvailableActions: obs.Actions()}
			if showGoal {
				first.Goal = &goal
			}
			if err := enc.Encode(first); err != nil {
				return err
			}
			for _, a := range actions {
				obs, r, done, info := e.Step(a)
				valid := info.Valid
				line := stepLine{Step: info.Steps, Action: a, Valid: &valid, Reason: info.Reason, Page: obs.Page, Text: obs.Text,
					AvailableActions: obs.Actions(), Reward: r, Done: done, Truncated: info.Truncated, Purchase: info.Purchase}
				if info.Purchase != nil {
					line.Components = &info.Purchase.Reward
				}
				if err := enc.Encode(line); err != nil {
					return err
				}
				if !valid {
					return fmt.Errorf("action %d %q did nothing: %s", info.Steps, a, info.Reason)
				}
				if done {
					break
				}
			}
			return nil
		},
	}
	sf.register(cmd)
	gf.register(cmd)
	cmd.Flags().StringArrayVar(&actions, "action", nil, "an action (search[...] or click[...]); repeat in order")
	cmd.Flags().BoolVar(&showGoal, "show-goal", false, "include the goal in the first line")
	return cmd
}

func newEnvRewardCmd() *cobra.Command {
	var goalPath, productPath, optionsJSON string
	var price float64
	cmd := &cobra.Command{
		Use:   "reward --goal goal.json --product product.json [--options JSON] [--price P]",
		Short: "Score a purchase against a goal with WebShop's reward",
		Long: `Prints the reward and its components as JSON. The goal is in WebShop's
goal shape (instruction_text, attributes, goal_options list or object,
price_upper, name, query, product_category); the product in WebShop's loaded
shape (Title, BulletPoints, Description, Attributes, ...) or as an
items_shuffle record. --options is a JSON list of chosen values or a
{name: value} object; --price defaults to the product's (low) price.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			gb, err := os.ReadFile(goalPath)
			if err != nil {
				return err
			}
			goal, err := env.ParseGoalJSON(gb)
			if err != nil {
				return fmt.Errorf("%s: %w", goalPath, err)
			}
			pb, err := os.ReadFile(productPath)
			if err != nil {
				return err
			}
			p, err := env.ParseProductJSON(pb)
			if err != nil {
				return fmt.Errorf("%s: %w", productPath, err)
			}
			opts, err := parseOptionsArg(optionsJSON)
			if err != nil {
				return err
			}
			if cmd.Flags().Changed("price") {
				p.Price = price
			}
			info := env.NewScorer().Reward(&p, &goal, p.Price, opts)
			enc := json.NewEncoder(cmd.OutOrStdout())
			enc.SetIndent("", "  ")
			return enc.Encode(info)
		},
	}
	cmd.Flags().StringVar(&goalPath, "goal", "", "goal JSON file (required)")
	cmd.Flags().StringVar(&productPath, "product", "", "product JSON file (required)")
	cmd.Flags().StringVar(&optionsJSON, "options", "", "chosen options: JSON list of values or {name: value} object")
	cmd.Flags().Float64Var(&price, "price", 0, "price paid (default: the product's price)")
	_ = cmd.MarkFlagRequired("goal")
	_ = cmd.MarkFlagRequired("product")
	return cmd
}

func parseOptionsArg(s string) ([]string, error) {
	s = strings.TrimSpace(s)
	if s == "" {
		return nil, nil
	}
	if strings.HasPrefix(s, "[") {
		var vals []string
		if err := json.Unmarshal([]byte(s), &vals); err != nil {
			return nil, fmt.Errorf("--options: %w", err)
		}
		return vals, nil
	}
	g, err := env.ParseGoalJSON([]byte(`{"attributes":["x"],"goal_options":` + s + `}`))
	if err != nil {
		return nil, fmt.Errorf("--options: want a JSON list or object: %w", err)
	}
	vals := make([]string, len(g.Options))
	for i, o := range g.Options {
		vals[i] = o.Value
	}
	return vals, nil
}
