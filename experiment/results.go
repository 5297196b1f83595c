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

	"shopagent/abtest"
)

// Output files of an experiment.
const (
	ResultsJSON        = "results.json"
	ResultsMarkdown    = "results.md"
	ScoresPlot         = "scores.png"
	DataEfficiencyPlot = "data_efficiency.png"
	// ThompsonDir holds the abtest outputs (report.json, episodes.parquet, report.md, abtest.png).
	ThompsonDir = "thompson"
)

// SeedResult is one trained model's exhaustive evaluation on the test split.
type SeedResult struct {
	Seed int `json:"seed"`
	// Run is the model's run directory ("rule" for the rule agent).
	Run         string  `json:"run"`
	Episodes    int     `json:"episodes"`
	Score       float64 `json:"score"`
	SuccessRate float64 `json:"success_rate"`
	MeanSteps   float64 `json:"mean_steps"`
	// TrainWallS is the wall clock of every training stage behind the model (pretraining,
	// IL, generation, RL), as first run (a resumed experiment keeps the recorded times).
	TrainWallS float64 `json:"train_wall_s"`
	EvalWallS  float64 `json:"eval_wall_s"`
}

// MethodResult sums up one method over its seeds (mean and sample sd).
type MethodResult struct {
	Method string       `json:"method"`
	Label  string       `json:"label"`
	Seeds  []SeedResult `json:"seeds"`
	// Failures lists the seeds that produced no model or evaluation, with the reason.
	Failures    []string `json:"failures,omitempty"`
	ScoreMean   float64  `json:"score_mean"`
	ScoreSD     float64  `json:"score_sd"`
	SuccessMean float64  `json:"success_mean"`
	SuccessSD   float64  `json:"success_sd"`
	StepsMean   float64  `json:"steps_mean"`
	TrainWallS  float64  `json:"train_wall_s_mean"`
	// InThompson is true when the method had an arm in the Thompson-sampling test;
	// ProbBest and Share are that arm's P(best) and traffic share (0..1).
	InThompson       bool    `json:"in_thompson"`
	ThompsonProbBest float64 `json:"thompson_prob_best"`
	ThompsonShare    float64 `json:"thompson_share"`
	ThompsonScore    float64 `json:"thompson_score"`
	ThompsonSuccess  float64 `json:"thompson_success_rate"`
}

func (m *MethodResult) finish() {
	var sc, su, st, wall []float64
	for _, s := range m.Seeds {
		sc, su, st, wall = append(sc, s.Score), append(su, s.SuccessRate), append(st, s.MeanSteps), append(wall, s.TrainWallS)
	}
	m.ScoreMean, m.ScoreSD = abtest.MeanSD(sc)
	m.SuccessMean, m.SuccessSD = abtest.MeanSD(su)
	m.StepsMean, _ = abtest.MeanSD(st)
	m.TrainWallS, _ = abtest.MeanSD(wall)
}

// DataPoint is one point of the data-efficiency curve: IL (seed 1) trained on Demos
// expert demonstrations, evaluated on the test split.
type DataPoint struct {
	Demos       int     `json:"demos"`
	Score       float64 `json:"score"`
	SuccessRate float64 `json:"success_rate"`
	MeanSteps   float64 `json:"mean_steps"`
	TrainWallS  float64 `json:"train_wall_s"`
	Error       string  `json:"error,omitempty"`
}

// ResultConfig is the configuration recorded in results.json.
type ResultConfig struct {
	Data          string   `json:"data"`
	Methods       []string `json:"methods"`
	Seeds         int      `json:"seeds"`
	Budget        string   `json:"rl_budget"`
	RLSteps       int      `json:"rl_steps,omitempty"`
	PretrainSteps int      `json:"pretrain_steps"`
	ILSteps       int      `json:"il_steps"`
	Preset        string   `json:"preset"`
	Demos         int      `json:"demos"`
	GenKeep       int      `json:"generated_keep"`
	Episodes      int      `json:"thompson_episodes"`
	Runs          int      `json:"thompson_runs"`
	MinShare      float64  `json:"thompson_min_share"`
	DemoCounts    []int    `json:"demo_counts,omitempty"`
	EvalFirst     int      `json:"eval_first,omitempty"`
}

func resultConfig(c Config) ResultConfig {
	return ResultConfig{Data: c.Data, Methods: c.Methods, Seeds: c.Seeds, Budget: c.Budget.String(), RLSteps: c.RLSteps,
		PretrainSteps: c.PretrainSteps, ILSteps: c.ILSteps, Preset: c.Preset, Demos: c.Demos, GenKeep: c.GenKeep,
		Episodes: c.Episodes, Runs: c.Runs, MinShare: c.MinShare, DemoCounts: c.DemoCounts, EvalFirst: c.EvalFirst}
}

// Results is the outcome of an experiment (results.json).
type Results struct {
	Config  ResultConfig   `json:"config"`
	Methods []MethodResult `json:"methods"`
	// Thompson is the Thompson-sampling report (nil when it did not run).
	Thompson      *abtest.Report `json:"thompson,omitempty"`
	ThompsonError string         `json:"thompson_error,omitempty"`
	// DataEfficiency is the IL curve against the number of demonstrations.
	DataEfficiency []DataPoint   `json:"data_efficiency,omitempty"`
	Stages         []StageRecord `json:"stages"`
	ElapsedS       float64       `json:"elapsed_s"`
}

// readThompson reads the abtest report and copies each arm's figures to its method.
func (r *Results) readThompson(dir string, methods map[string]*MethodResult) error {
	rep, err := abtest.ReadReport(filepath.Join(dir, abtest.ReportFile))
	if err != nil {
		return err
	}
	r.Thompson = &rep
	for _, a := range rep.Arms {
		if m, ok := methods[a.Name]; ok {
			m.InThompson, m.ThompsonProbBest, m.ThompsonShare = true, a.ProbBest, a.Share
			m.ThompsonScore, m.ThompsonSuccess = a.MeanScore, a.SuccessRate
		}
	}
	return nil
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

// Write writes results.json, results.md, scores.png and (with a curve)
// data_efficiency.png into dir.
func (r *Results) Write(dir string) error {
	b, err := json.MarshalIndent(r, "", "  ")
	if err != nil {
		return fmt.Errorf("experiment: results: %w", err)
	}
	if err := os.WriteFile(filepath.Join(dir, ResultsJSON), append(b, '\n'), 0o644); err != nil {
		return fmt.Errorf("experiment: %w", err)
	}
	if err := os.WriteFile(filepath.Join(dir, ResultsMarkdown), []byte(r.Markdown()), 0o644); err != nil {
		return fmt.Errorf("experiment: %w", err)
	}
	if err := r.plotScores(filepath.Join(dir, ScoresPlot)); err != nil {
		return err
	}
	if len(r.DataEfficiency) > 0 {
		if err := r.plotDataEfficiency(filepath.Join(dir, DataEfficiencyPlot)); err != nil {
			return err
		}
	}
	return nil
}

// Markdown renders the results: the comparison table, the Thompson-sampling table and
// the data-efficiency table.
func (r *Results) Markdown() string {
	var b strings.Builder
	c := r.Config
	b.WriteString("# Paper experiment: rule, IL, IL+PG, IL+PPO, IL+DPO\n\n")
	fmt.Fprintf(&b, "Shop `%s`; %d seed(s); pretraining %d steps (preset %s), IL %d steps, RL budget %s per run",
		c.Data, c.Seeds, c.PretrainSteps, c.Preset, c.ILSteps, c.Budget)
	if c.RLSteps > 0 {
		fmt.Fprintf(&b, " (at most %d steps)", c.RLSteps)
	}
	fmt.Fprintf(&b, "; test split")
	if c.EvalFirst > 0 {
		fmt.Fprintf(&b, " (first %d goals)", c.EvalFirst)
	}
	fmt.Fprintf(&b, "; total wall time %s.\n\n", time.Duration(r.ElapsedS*float64(time.Second)).Round(time.Second))
	b.WriteString("| method | seeds | score | success % | steps | train wall (s) | Thompson P(best) | Thompson share % |\n")
	b.WriteString("| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |\n")
	for _, m := range r.Methods {
		if len(m.Seeds) == 0 {
			fmt.Fprintf(&b, "| %s | 0 | - | - | - | - | - | - |\n", m.Label)
			continue
		}
		pb, sh := "-", "-"
		if m.InThompson {
			pb, sh = fmt.Sprintf("%.3f", m.ThompsonProbBest), fmt.Sprintf("%.1f", 100*m.ThompsonShare)
		}
		fmt.Fprintf(&b, "| %s | %d | %.1f ± %.1f | %.1f ± %.1f | %.2f | %.0f | %s | %s |\n", m.Label, len(m.Seeds),
			m.ScoreMean, m.ScoreSD, m.SuccessMean, m.SuccessSD, m.StepsMean, m.TrainWallS, pb, sh)
	}
	b.WriteString("\nScore = 100 x mean reward, success = percent of episodes with reward 1, steps = mean environment steps, " +
		"each over one exhaustive pass of the test goals (`shopagent eval`), mean ± sample sd over the seeds. " +
		"Train wall = wall clock of every training stage behind the model (pretraining + IL [+ generation] [+ RL]). " +
		"Thompson: one arm per method (seed 1's model), " + fmt.Sprintf("%d run(s) of %d episodes", c.Runs, c.Episodes) +
		"; P(best) = posterior probability that the arm has the highest success rate, share = its fraction of the traffic.\n")
	var failed []string
	for _, m := range r.Methods {
		for _, f := range m.Failures {
			failed = append(failed, fmt.Sprintf("- %s, %s", m.Label, f))
		}
	}
	if len(failed) > 0 {
		b.WriteString("\nSkipped:\n\n" + strings.Join(failed, "\n") + "\n")
	}
	b.WriteString("\n![scores](" + ScoresPlot + ")\n")
	if r.Thompson != nil {
		b.WriteString("\n## Thompson sampling\n\n" + r.Thompson.Markdown() + "\n![thompson](" + ThompsonDir + "/" + abtest.PlotFile + ")\n")
	} else if r.ThompsonError != "" {
		b.WriteString("\n## Thompson sampling\n\nnot run: " + r.ThompsonError + "\n")
	}
	if len(r.DataEfficiency) > 0 {
		b.WriteString("\n## Data efficiency (IL, seed 1)\n\n| demonstrations | score | success % | steps | train wall (s) |\n| ---: | ---: | ---: | ---: | ---: |\n")
		for _, p := range r.DataEfficiency {
			if p.Error != "" {
				fmt.Fprintf(&b, "| %d | - | - | - | - (%s) |\n", p.Demos, p.Error)
				continue
			}
			fmt.Fprintf(&b, "| %d | %.1f | %.1f | %.2f | %.0f |\n", p.Demos, p.Score, p.SuccessRate, p.MeanSteps, p.TrainWallS)
		}
		b.WriteString("\n![data efficiency](" + DataEfficiencyPlot + ")\n")
	}
	return b.String()
}

// plotScores draws score and success rate per method as grouped bars with sd error bars.
func (r *Results) plotScores(path string) error {
	var labels []string
	var score, succ, scoreSD, succSD plotter.Values
	for _, m := range r.Methods {
		if len(m.Seeds) == 0 {
			continue
		}
		labels = append(labels, m.Label)
		score, succ = append(score, m.ScoreMean), append(succ, m.SuccessMean)
		scoreSD, succSD = append(scoreSD, m.ScoreSD), append(succSD, m.SuccessSD)
	}
	p := plot.New()
	p.Title.Text = fmt.Sprintf("Test split, mean ± sd over %d seed(s)", r.Config.Seeds)
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
			offset vg.Length
		}{{"score", score, scoreSD, -w / 2}, {"success rate", succ, succSD, w / 2}} {
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
		}
		p.NominalX(labels...)
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

// plotDataEfficiency draws IL's success rate and score against the number of demonstrations.
func (r *Results) plotDataEfficiency(path string) error {
	p := plot.New()
	p.Title.Text = "IL data efficiency (test split, seed 1)"
	p.X.Label.Text = "expert demonstrations (log scale)"
	p.Y.Label.Text = "success rate / score (%)"
	p.Y.Min, p.Y.Max = 0, 115
	p.X.Scale = plot.LogScale{}
	var ticks []plot.Tick
	for _, d := range r.DataEfficiency {
		ticks = append(ticks, plot.Tick{Value: float64(d.Demos), Label: fmt.Sprint(d.Demos)})
	}
	p.X.Tick.Marker = plot.ConstantTicks(ticks)
	p.Legend.Top = true
	p.Add(plotter.NewGrid())
	var succ, score plotter.XYs
	for _, d := range r.DataEfficiency {
		if d.Error == "" {
			succ = append(succ, plotter.XY{X: float64(d.Demos), Y: d.SuccessRate})
			score = append(score, plotter.XY{X: float64(d.Demos), Y: d.Score})
		}
	}
	for i, s := range []struct {
		name string
		xys  plotter.XYs
	}{{"success rate", succ}, {"score", score}} {
		if len(s.xys) == 0 {
			continue
		}
		l, pts, err := plotter.NewLinePoints(s.xys)
		if err != nil {
			return fmt.Errorf("experiment: plot: %w", err)
		}
		l.Color, pts.Color = plotutil.Color(i), plotutil.Color(i)
		pts.Shape = plotutil.Shape(i)
		p.Add(l, pts)
		p.Legend.Add(s.name, l, pts)
	}
	if len(succ) > 0 {
		lo, hi := succ[0].X, succ[0].X
		for _, q := range succ {
			lo, hi = math.Min(lo, q.X), math.Max(hi, q.X)
		}
		p.X.Min, p.X.Max = lo/1.5, hi*1.5
	} else {
		p.X.Min, p.X.Max = 1, 10
	}
	return save(p, path, 6*vg.Inch, 4*vg.Inch)
}

func save(p *plot.Plot, path string, w, h vg.Length) error {
	if err := p.Save(w, h, path); err != nil {
		return fmt.Errorf("experiment: plot %s: %w", path, err)
	}
	return nil
}
