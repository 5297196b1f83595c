package experiment

import (
	"encoding/json"
	"fmt"
	"image/color"
	"math"
	"os"
	"path/filepath"
	"strings"
	"time"

	"gonum.org/v1/plot"
	"gonum.org/v1/plot/plotter"
	"gonum.org/v1/plot/plotutil"
	"gonum.org/v1/plot/vg"
	"gonum.org/v1/plot/vg/draw"
	"gonum.org/v1/plot/vg/vgimg"

	"shopagent/abtest"
	"shopagent/atomicfile"
)

// Output files of an experiment.
const (
	ResultsJSON     = "results.json"
	ResultsMarkdown = "results.md"
	ScoresPlot      = "scores.png"
	RoundsPlot      = "rounds.png"
	// ThompsonDir holds the abtest outputs (report.json, episodes.parquet, report.md, abtest.png).
	ThompsonDir = "thompson"
)

// SeedResult is one trained model's evaluation on the test split.
type SeedResult struct {
	Seed int `json:"seed"`
	// Run is the model's run directory relative to the output directory ("rule" for the
	// rule agent).
	Run  string     `json:"run"`
	Eval EvalResult `json:"eval"`
	// StageWallS is the wall clock of the method's own stage (from its start, reference
	// passes and generation included) and BudgetS its budget (0: a step-counted stage);
	// TrainWallS adds every stage behind the model (demonstrations, pretraining, IL,
	// earlier rounds).
	StageWallS float64 `json:"stage_wall_s"`
	BudgetS    float64 `json:"budget_s,omitempty"`
	TrainWallS float64 `json:"train_wall_s"`
	EvalWallS  float64 `json:"eval_wall_s"`
	// Load is the machine's load average over the method's stage (mean of its start
	// and end): a wall-clock budget buys less on a busy machine.
	Load float64 `json:"load,omitempty"`
	// Generated is the number of successful episodes a generation round kept (of
	// GeneratedPlayed played); GeneratedTotal those of this and the earlier rounds.
	Generated       int `json:"generated,omitempty"`
	GeneratedPlayed int `json:"generated_played,omitempty"`
	GeneratedTotal  int `json:"generated_total,omitempty"`
	// Unchanged marks a generation round that had nothing to learn from (no success
	// kept, or no step where the reference chose otherwise): it kept the previous policy.
	Unchanged bool `json:"unchanged,omitempty"`
}

// Published is a published figure to compare a method with.
type Published struct {
	Score   float64 `json:"score,omitempty"`
	Success float64 `json:"success_rate"`
	Source  string  `json:"source"`
}

// published are the numbers reported on WebShop (500 test goals) for the methods this
// experiment reproduces: WebShop's paper (Yao et al., 2022) and the DPO paper.
var published = map[string]*Published{
	MethodRule:   {Score: 45.6, Success: 9.6, Source: "WebShop"},
	MethodIL:     {Score: 59.9, Success: 29.1, Source: "WebShop"},
	MethodPG:     {Score: 62.4, Success: 28.7, Source: "WebShop, IL+RL"},
	MethodPPO:    {Success: 15, Source: "DPO paper"},
	MethodDPO:    {Success: 19, Source: "DPO paper"},
	MethodDPOGen: {Success: 19, Source: "DPO paper: matched DPO on human demos"},
}

// MethodResult sums up one method over its seeds (mean and sample sd).
type MethodResult struct {
	Method string       `json:"method"`
	Label  string       `json:"label"`
	Seeds  []SeedResult `json:"seeds"`
	// Round is the generation round (dpo-gen 1, self-gen rounds 2..; 0 otherwise).
	Round int `json:"round,omitempty"`
	// Failures lists the seeds that produced no model or evaluation, with the reason.
	Failures    []string `json:"failures,omitempty"`
	ScoreMean   float64  `json:"score_mean"`
	ScoreSD     float64  `json:"score_sd"`
	SuccessMean float64  `json:"success_mean"`
	SuccessSD   float64  `json:"success_sd"`
	StepsMean   float64  `json:"steps_mean"`
	StageWallS  float64  `json:"stage_wall_s_mean"`
	BudgetS     float64  `json:"budget_s,omitempty"`
	TrainWallS  float64  `json:"train_wall_s_mean"`
	LoadMean    float64  `json:"load_mean,omitempty"`
	// InThompson is true when the method had an arm in the Thompson-sampling test;
	// ProbBest and Share are that arm's P(best) and traffic share (0..1).
	InThompson       bool    `json:"in_thompson"`
	ThompsonProbBest float64 `json:"thompson_prob_best"`
	ThompsonShare    float64 `json:"thompson_share"`
	ThompsonScore    float64 `json:"thompson_score"`
	ThompsonSuccess  float64 `json:"thompson_success_rate"`
	// Published is the published figure for the method, when there is one.
	Published *Published `json:"published,omitempty"`
}

func (m *MethodResult) add(s SeedResult) { m.Seeds = append(m.Seeds, s) }

func (m *MethodResult) finish() {
	var sc, su, st, stage, wall, load []float64
	for _, s := range m.Seeds {
		load = append(load, s.Load)
		sc, su, st = append(sc, s.Eval.Score), append(su, s.Eval.SuccessRate), append(st, s.Eval.MeanSteps)
		stage, wall = append(stage, s.StageWallS), append(wall, s.TrainWallS)
		m.BudgetS = max(m.BudgetS, s.BudgetS)
	}
	m.ScoreMean, m.ScoreSD = abtest.MeanSD(sc)
	m.SuccessMean, m.SuccessSD = abtest.MeanSD(su)
	m.StepsMean, _ = abtest.MeanSD(st)
	m.StageWallS, _ = abtest.MeanSD(stage)
	m.TrainWallS, _ = abtest.MeanSD(wall)
	m.LoadMean, _ = abtest.MeanSD(load)
}

// RoundResult is one point of the self-generation curve: round 0 is IL.
type RoundResult struct {
	Round int `json:"round"`
	// Trajectories is the mean number of generated trajectories used up to this round.
	Trajectories float64   `json:"trajectories"`
	Scores       []float64 `json:"scores"`
	Successes    []float64 `json:"success_rates"`
	ScoreMean    float64   `json:"score_mean"`
	SuccessMean  float64   `json:"success_mean"`
}

// roundsOf collects IL (round 0), dpo-gen (round 1) and the self-generation rounds.
func roundsOf(ms []MethodResult) []RoundResult {
	var out []RoundResult
	for _, m := range ms {
		if m.Method != MethodIL && m.Round == 0 {
			continue
		}
		if m.Round == 0 && !hasRounds(ms) {
			continue
		}
		r := RoundResult{Round: m.Round}
		var used []float64
		for _, s := range m.Seeds {
			r.Scores, r.Successes = append(r.Scores, s.Eval.Score), append(r.Successes, s.Eval.SuccessRate)
			used = append(used, float64(s.GeneratedTotal))
		}
		if len(r.Scores) == 0 {
			continue
		}
		r.ScoreMean, _ = abtest.MeanSD(r.Scores)
		r.SuccessMean, _ = abtest.MeanSD(r.Successes)
		r.Trajectories, _ = abtest.MeanSD(used)
		out = append(out, r)
	}
	return out
}

func hasRounds(ms []MethodResult) bool {
	for _, m := range ms {
		if m.Round > 0 && len(m.Seeds) > 0 {
			return true
		}
	}
	return false
}

// ShopInfo describes the shop the experiment ran on.
type ShopInfo struct {
	Dir      string `json:"dir"`
	Products int    `json:"products,omitempty"`
	Goals    int    `json:"goals,omitempty"`
	Test     int    `json:"test_goals,omitempty"`
	Dev      int    `json:"dev_goals,omitempty"`
	Train    int    `json:"train_goals,omitempty"`
	// EvalGoals and SweepGoals are the test and dev goals evaluated on.
	EvalGoals  int `json:"eval_goals,omitempty"`
	SweepGoals int `json:"sweep_goals,omitempty"`
}

// StageSummary is a stage's line in results.json (its record is in stages/).
type StageSummary struct {
	Name     string  `json:"name"`
	ElapsedS float64 `json:"elapsed_s"`
	BudgetS  float64 `json:"budget_s,omitempty"`
	// Load is the mean of the load averages at the stage's start and end.
	Load    float64 `json:"load,omitempty"`
	Resumed bool    `json:"resumed,omitempty"`
}

// Results is the outcome of an experiment (results.json).
type Results struct {
	Config  Config         `json:"config"`
	Shop    ShopInfo       `json:"shop"`
	Methods []MethodResult `json:"methods"`
	// Sweep are the dev-split trials; Rounds the self-generation curve.
	Sweep  []SweepResult `json:"sweep,omitempty"`
	Rounds []RoundResult `json:"rounds,omitempty"`
	// Thompson is the Thompson-sampling report (nil when it did not run).
	Thompson      *abtest.Report `json:"thompson,omitempty"`
	ThompsonError string         `json:"thompson_error,omitempty"`
	Stages        []StageSummary `json:"stages"`
	ElapsedS      float64        `json:"elapsed_s"`
}

// ReadResults reads a results.json.
func ReadResults(path string) (*Results, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("experiment: %w", err)
	}
	var r Results
	if err := json.Unmarshal(b, &r); err != nil {
		return nil, fmt.Errorf("experiment: %s: %w", path, err)
	}
	return &r, nil
}

// Write writes results.json, results.md, scores.png and (with generation rounds)
// rounds.png into dir.
func (r *Results) Write(dir string) error {
	b, err := json.MarshalIndent(r, "", "  ")
	if err != nil {
		return fmt.Errorf("experiment: results: %w", err)
	}
	if err := atomicfile.WriteFile(filepath.Join(dir, ResultsJSON), append(b, '\n'), 0o644); err != nil {
		return fmt.Errorf("experiment: %w", err)
	}
	if err := atomicfile.WriteFile(filepath.Join(dir, ResultsMarkdown), []byte(r.Markdown()), 0o644); err != nil {
		return fmt.Errorf("experiment: %w", err)
	}
	if err := r.plotScores(filepath.Join(dir, ScoresPlot)); err != nil {
		return err
	}
	if len(r.Rounds) > 1 {
		if err := r.plotRounds(filepath.Join(dir, RoundsPlot)); err != nil {
			return err
		}
	}
	return nil
}

// Markdown renders the results: the comparison table with the published numbers, the
// sweep, the self-generation rounds and the Thompson-sampling table.
func (r *Results) Markdown() string {
	var b strings.Builder
	c := r.Config
	b.WriteString("# The paper's experiment on the calibrated shop\n\n")
	fmt.Fprintf(&b, "Shop: %d products, %d goals (test %d, dev %d, train %d). %d seed(s); pretraining %d steps and IL %d steps (preset %s); "+
		"every fine-tuning stage %s of wall clock from its start; evaluation on %d test goals, greedy; total wall time %s.\n\n",
		r.Shop.Products, r.Shop.Goals, r.Shop.Test, r.Shop.Dev, r.Shop.Train, c.Seeds, c.Pretrain.Steps, c.IL.Steps, c.Pretrain.Preset,
		c.Budget, r.Shop.EvalGoals, time.Duration(r.ElapsedS*float64(time.Second)).Round(time.Second))
	b.WriteString("| method | seeds | score | success % | steps | stage wall (s) | load | Thompson share % | P(best) | published score / success % |\n")
	b.WriteString("| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | --- |\n")
	for _, m := range r.Methods {
		pub := "-"
		if p := m.Published; p != nil {
			sc := "-"
			if p.Score > 0 {
				sc = fmt.Sprintf("%.1f", p.Score)
			}
			pub = fmt.Sprintf("%s / %.1f (%s)", sc, p.Success, p.Source)
		}
		if len(m.Seeds) == 0 {
			fmt.Fprintf(&b, "| %s | 0 | - | - | - | - | - | - | - | %s |\n", m.Label, pub)
			continue
		}
		pb, sh := "-", "-"
		if m.InThompson {
			pb, sh = fmt.Sprintf("%.3f", m.ThompsonProbBest), fmt.Sprintf("%.1f", 100*m.ThompsonShare)
		}
		wall := fmt.Sprintf("%.0f", m.StageWallS)
		if m.BudgetS > 0 {
			wall += fmt.Sprintf(" (budget %.0f)", m.BudgetS)
		}
		load := fmt.Sprintf("%.1f", m.LoadMean)
		if m.Method == MethodRule {
			wall, load = "-", "-"
		}
		fmt.Fprintf(&b, "| %s | %d | %.1f ± %.1f | %.1f ± %.1f | %.2f | %s | %s | %s | %s | %s |\n", m.Label, len(m.Seeds),
			m.ScoreMean, m.ScoreSD, m.SuccessMean, m.SuccessSD, m.StepsMean, wall, load, sh, pb, pub)
	}
	b.WriteString("\nScore = 100 x mean reward; success = percent of episodes with reward 1; steps = mean environment steps; " +
		"mean ± sample sd over the seeds, each seed's model evaluated once on the test goals. Stage wall = the method's own stage " +
		"measured from its start (reference passes and generation included; IL: its steps); load = the machine's " +
		"one-minute load average during it (2 cores: above 2 the stage got less than the whole machine). Thompson: one arm per method (seed 1's model)")
	if r.Thompson != nil {
		fmt.Fprintf(&b, ", %d run(s) of %d episodes", r.Thompson.Runs, c.Thompson.Episodes)
	}
	b.WriteString("; share = the arm's fraction of the traffic, P(best) = posterior probability that its success rate is the highest. " +
		"Published: WebShop's paper and the DPO paper on real WebShop (different shop, models and budgets).\n")
	var failed []string
	for _, m := range r.Methods {
		for _, f := range m.Failures {
			failed = append(failed, fmt.Sprintf("- %s, %s", m.Label, f))
		}
	}
	if len(failed) > 0 {
		b.WriteString("\nFailed:\n\n" + strings.Join(failed, "\n") + "\n")
	}
	b.WriteString("\n![scores](" + ScoresPlot + ")\n")
	if len(r.Sweep) > 0 {
		fmt.Fprintf(&b, "\n## Hyperparameters chosen on the dev split (%d dev goals, training seed %d)\n\n", r.Shop.SweepGoals, c.SweepSeed)
		b.WriteString("| trial | dev score | dev success % | stage wall (s) | chosen |\n| --- | ---: | ---: | ---: | :---: |\n")
		for _, s := range r.Sweep {
			if s.Error != "" {
				fmt.Fprintf(&b, "| %s | - | - | - | failed: %s |\n", s.Trial, s.Error)
				continue
			}
			mark := ""
			if s.Selected {
				mark = "yes"
			}
			fmt.Fprintf(&b, "| %s | %.1f | %.1f | %.0f | %s |\n", s.Trial, s.Dev.Score, s.Dev.SuccessRate, s.StageWallS, mark)
		}
	}
	if len(r.Rounds) > 1 {
		b.WriteString("\n## Self-generation rounds\n\nRound 0 is IL; round r generates from round r-1's policy on the train goals, keeps the episodes " +
			"with reward 1 and trains DPO on them with round r-1 as the reference.\n\n")
		b.WriteString("| round | generated trajectories used (mean) | score (mean) | success % (mean) | per seed success % |\n| ---: | ---: | ---: | ---: | --- |\n")
		for _, rr := range r.Rounds {
			per := make([]string, len(rr.Successes))
			for i, s := range rr.Successes {
				per[i] = fmt.Sprintf("%.1f", s)
			}
			fmt.Fprintf(&b, "| %d | %.0f | %.1f | %.1f | %s |\n", rr.Round, rr.Trajectories, rr.ScoreMean, rr.SuccessMean, strings.Join(per, ", "))
		}
		b.WriteString("\n![rounds](" + RoundsPlot + ")\n")
	}
	if r.Thompson != nil {
		b.WriteString("\n## Thompson sampling\n\n" + r.Thompson.Markdown() + "\n![thompson](" + ThompsonDir + "/" + abtest.PlotFile + ")\n")
	} else if r.ThompsonError != "" {
		b.WriteString("\n## Thompson sampling\n\nnot run: " + r.ThompsonError + "\n")
	}
	return b.String()
}

// plotScores draws score and success rate per method as grouped bars with sd error bars.
func (r *Results) plotScores(path string) error {
	var labels []string
	var score, succ, scoreSD, succSD plotter.Values
	var scoreSeeds, succSeeds [][]float64
	for _, m := range r.Methods {
		if len(m.Seeds) == 0 {
			continue
		}
		labels = append(labels, m.Label)
		score, succ = append(score, m.ScoreMean), append(succ, m.SuccessMean)
		scoreSD, succSD = append(scoreSD, m.ScoreSD), append(succSD, m.SuccessSD)
		var a, b []float64
		for _, sd := range m.Seeds {
			a, b = append(a, sd.Eval.Score), append(b, sd.Eval.SuccessRate)
		}
		scoreSeeds, succSeeds = append(scoreSeeds, a), append(succSeeds, b)
	}
	p := plot.New()
	p.Title.Text = fmt.Sprintf("%d test goals: mean ± sd over %d seed(s), dots = seeds", r.Shop.EvalGoals, r.Config.Seeds)
	p.Y.Label.Text = "score / success rate (%)"
	p.Y.Min, p.Y.Max = 0, 115 // room for the legend above 100
	p.Legend.Top = true
	p.Add(plotter.NewGrid())
	if len(labels) > 0 {
		w := vg.Points(22)
		for i, series := range []struct {
			name   string
			vals   plotter.Values
			sd     plotter.Values
			seeds  [][]float64
			offset vg.Length
		}{{"score", score, scoreSD, scoreSeeds, -w / 2}, {"success rate", succ, succSD, succSeeds, w / 2}} {
			bars, err := plotter.NewBarChart(series.vals, w)
			if err != nil {
				return fmt.Errorf("experiment: plot: %w", err)
			}
			bars.Color = plotutil.Color(i)
			bars.LineStyle.Width = 0
			bars.Offset = series.offset
			p.Add(bars)
			p.Legend.Add(series.name, bars)
			errs := make(errPoints, len(series.vals))
			for k := range series.vals {
				errs[k] = errPoint{x: float64(k), y: series.vals[k], sd: series.sd[k]}
			}
			eb, err := plotter.NewYErrorBars(errs)
			if err != nil {
				return fmt.Errorf("experiment: plot: %w", err)
			}
			eb.Color = color.Black
			p.Add(shifted{eb, series.offset})
			// Every seed's value, as a point over its bar.
			var pts plotter.XYs
			for k, vals := range series.seeds {
				for _, v := range vals {
					pts = append(pts, plotter.XY{X: float64(k), Y: v})
				}
			}
			if len(pts) > 0 {
				sc, err := plotter.NewScatter(pts)
				if err != nil {
					return fmt.Errorf("experiment: plot: %w", err)
				}
				sc.GlyphStyle.Color, sc.GlyphStyle.Radius, sc.GlyphStyle.Shape = color.Black, vg.Points(2), draw.CircleGlyph{}
				p.Add(shifted{sc, series.offset})
			}
		}
		p.NominalX(labels...)
		p.X.Tick.Label.Rotation = math.Pi / 7
		p.X.Tick.Label.XAlign, p.X.Tick.Label.YAlign = draw.XRight, draw.YCenter
		p.X.Min, p.X.Max = -0.7, float64(len(labels)-1)+0.7
	}
	return save(p, path, vg.Length(math.Max(6, 1.3*float64(len(labels))))*vg.Inch, 4.5*vg.Inch)
}

// shifted draws a plotter moved right by dx (the error bars over offset bars).
type shifted struct {
	plot.Plotter
	dx vg.Length
}

// Plot implements plot.Plotter.
func (s shifted) Plot(c draw.Canvas, p *plot.Plot) {
	c.Push()
	c.Translate(vg.Point{X: s.dx})
	s.Plotter.Plot(c, p)
	c.Pop()
}

// errPoint / errPoints implement plotter.XYer and plotter.YErrorer.
type errPoint struct{ x, y, sd float64 }
type errPoints []errPoint

func (e errPoints) Len() int                        { return len(e) }
func (e errPoints) XY(i int) (float64, float64)     { return e[i].x, e[i].y }
func (e errPoints) YError(i int) (float64, float64) { return e[i].sd, e[i].sd }

// plotRounds draws success rate and score against the self-generation round (left) and
// against the generated trajectories used (right), every seed a point, means joined.
func (r *Results) plotRounds(path string) error {
	mk := func(xlabel string, x func(RoundResult) float64) (*plot.Plot, error) {
		p := plot.New()
		p.Title.Text = "Self-generation (test goals)"
		p.X.Label.Text = xlabel
		p.Y.Label.Text = "success rate / score (%)"
		p.Y.Min, p.Y.Max = 0, 100
		p.Legend.Top = true
		p.Add(plotter.NewGrid())
		for i, s := range []struct {
			name string
			mean func(RoundResult) float64
			vals func(RoundResult) []float64
		}{
			{"success rate", func(q RoundResult) float64 { return q.SuccessMean }, func(q RoundResult) []float64 { return q.Successes }},
			{"score", func(q RoundResult) float64 { return q.ScoreMean }, func(q RoundResult) []float64 { return q.Scores }},
		} {
			var line, pts plotter.XYs
			for _, q := range r.Rounds {
				line = append(line, plotter.XY{X: x(q), Y: s.mean(q)})
				for _, v := range s.vals(q) {
					pts = append(pts, plotter.XY{X: x(q), Y: v})
				}
			}
			l, err := plotter.NewLine(line)
			if err != nil {
				return nil, fmt.Errorf("experiment: plot: %w", err)
			}
			sc, err := plotter.NewScatter(pts)
			if err != nil {
				return nil, fmt.Errorf("experiment: plot: %w", err)
			}
			l.Color, sc.GlyphStyle.Color, sc.GlyphStyle.Shape = plotutil.Color(i), plotutil.Color(i), plotutil.Shape(i)
			p.Add(l, sc)
			p.Legend.Add(s.name+" (mean; points: seeds)", l, sc)
		}
		return p, nil
	}
	left, err := mk("round (0 = IL, 1 = DPO on IL's generated successes)", func(q RoundResult) float64 { return float64(q.Round) })
	if err != nil {
		return err
	}
	var ticks []plot.Tick
	for _, q := range r.Rounds {
		ticks = append(ticks, plot.Tick{Value: float64(q.Round), Label: fmt.Sprint(q.Round)})
	}
	left.X.Tick.Marker = plot.ConstantTicks(ticks)
	right, err := mk("generated trajectories used (cumulative, mean over seeds)", func(q RoundResult) float64 { return q.Trajectories })
	if err != nil {
		return err
	}
	img := vgimg.New(12*vg.Inch, 4.5*vg.Inch)
	dc := draw.New(img)
	tiles := draw.Tiles{Rows: 1, Cols: 2, PadX: vg.Inch / 4}
	canvases := plot.Align([][]*plot.Plot{{left, right}}, tiles, dc)
	left.Draw(canvases[0][0])
	right.Draw(canvases[0][1])
	f, err := os.Create(path)
	if err != nil {
		return fmt.Errorf("experiment: plot: %w", err)
	}
	if _, err := (vgimg.PngCanvas{Canvas: img}).WriteTo(f); err != nil {
		f.Close()
		return fmt.Errorf("experiment: plot %s: %w", path, err)
	}
	return f.Close()
}

func save(p *plot.Plot, path string, w, h vg.Length) error {
	if err := p.Save(w, h, path); err != nil {
		return fmt.Errorf("experiment: plot %s: %w", path, err)
	}
	return nil
}
