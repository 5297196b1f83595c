package abtest

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"sort"
	"strings"

	"github.com/parquet-go/parquet-go"

	"shopagent/atomicfile"
	"shopagent/bandit"
)

// Output file names written by WriteOutputs.
const (
	ReportFile   = "report.json"
	EpisodesFile = "episodes.parquet"
	MarkdownFile = "report.md"
	PlotFile     = "abtest.png"
)

// probBestDraws is the number of joint posterior draws behind each P(best).
const probBestDraws = 20000

// ArmReport sums up one arm. Scores and success rates are WebShop's: score = 100 x mean
// reward, success rate = percent of episodes with reward 1. PosteriorMean and ProbBest
// are probabilities in [0, 1] from the Beta posterior (uniform prior) of all runs'
// episodes pooled; the Run* fields are the mean and sample standard deviation over the
// runs (a run where the arm played no episode is left out of its score and success
// spreads, counted in its share and P(best) spreads).
type ArmReport struct {
	Name string `json:"name"`
	// Spec is what played the arm (rule, random, a policy path, a server arm); may be empty.
	Spec string `json:"spec,omitempty"`
	// Episodes and Successes over all runs; Share is Episodes over all episodes.
	Episodes  int     `json:"episodes"`
	Successes int     `json:"successes"`
	Share     float64 `json:"share"`
	// MeanScore (0..100), SuccessRate (percent) and MeanSteps over all runs' episodes.
	MeanScore   float64 `json:"score"`
	SuccessRate float64 `json:"success_rate"`
	MeanSteps   float64 `json:"mean_steps"`
	// PosteriorAlpha, PosteriorBeta: the pooled Beta posterior of the success probability.
	PosteriorAlpha float64 `json:"posterior_alpha"`
	PosteriorBeta  float64 `json:"posterior_beta"`
	PosteriorMean  float64 `json:"posterior_mean"`
	// ProbBest is the posterior probability that this arm's success probability is the largest.
	ProbBest float64 `json:"prob_best"`

	// Spread over runs (mean, sample sd; sd 0 with one run).
	RunsPlayed      int     `json:"runs_played"`
	ScoreRunMean    float64 `json:"score_run_mean"`
	ScoreRunSD      float64 `json:"score_run_sd"`
	SuccessRunMean  float64 `json:"success_run_mean"`
	SuccessRunSD    float64 `json:"success_run_sd"`
	ShareRunMean    float64 `json:"share_run_mean"`
	ShareRunSD      float64 `json:"share_run_sd"`
	ProbBestRunMean float64 `json:"prob_best_run_mean"`
	ProbBestRunSD   float64 `json:"prob_best_run_sd"`
}

// Report is the outcome of an A/B test. Summarize fills Arms, Episodes, Runs,
// EpisodesPerRun, Seed, Prior and Best; the caller sets the other configuration fields.
// Episodes are not part of report.json (they go to episodes.parquet).
type Report struct {
	Arms     []ArmReport `json:"arms"`
	Episodes []Episode   `json:"-"`
	Runs     int         `json:"runs"`
	// EpisodesPerRun is the largest number of episodes of a run.
	EpisodesPerRun int `json:"episodes_per_run"`
	// TotalEpisodes counts Episodes.
	TotalEpisodes int `json:"total_episodes"`
	// Best is the arm with the largest pooled P(best).
	Best string `json:"best"`
	// Seed seeded the test (and the P(best) draws).
	Seed  uint64       `json:"seed"`
	Prior bandit.Prior `json:"prior"`
	// MinShare is the bandit's traffic floor per arm.
	MinShare float64 `json:"min_share"`
	// Source says what played the episodes: "in-process" or a server URL.
	Source string `json:"source,omitempty"`
	// Split and Goals: the goal split and how many goals the episodes drew from.
	Split string `json:"split,omitempty"`
	Goals int    `json:"goals,omitempty"`
	// Workers (or the server test's concurrency): episodes in flight at once.
	Workers int `json:"workers,omitempty"`
	// ElapsedS is the wall time of the test in seconds.
	ElapsedS float64 `json:"elapsed_s,omitempty"`
	// Errors counts episodes whose agent reported a scoring error.
	Errors int `json:"errors,omitempty"`
}

// Summarize builds the report of episodes played by arms over runs runs. Arms keep the
// given order; an arm that appears only in the episodes is appended. runs <= 0 takes the
// number of runs from the episodes. seed seeds the Monte Carlo estimate of P(best).
func Summarize(arms []string, episodes []Episode, runs int, seed uint64) Report {
	names := append([]string(nil), arms...)
	idx := map[string]int{}
	for i, n := range names {
		if _, dup := idx[n]; !dup {
			idx[n] = i
		}
	}
	for _, ep := range episodes {
		if _, ok := idx[ep.Arm]; !ok {
			idx[ep.Arm] = len(names)
			names = append(names, ep.Arm)
		}
	}
	maxRun := 0
	for _, ep := range episodes {
		maxRun = max(maxRun, ep.Run+1)
	}
	if runs < maxRun {
		runs = maxRun
	}
	if runs == 0 {
		runs = 1
	}
	nArms := len(names)
	pooled := make([]bandit.ArmState, nArms)
	perRun := make([][]bandit.ArmState, runs)
	for r := range perRun {
		perRun[r] = make([]bandit.ArmState, nArms)
	}
	steps := make([]float64, nArms)
	perRunCount := make([]int, runs)
	for i, n := range names {
		pooled[i].Name = n
		for r := range perRun {
			perRun[r][i].Name = n
		}
	}
	for _, ep := range episodes {
		a := idx[ep.Arm]
		reward := ep.Score
		if ep.Success {
			reward = math.Max(reward, 1) // a success is a full reward
		}
		pooled[a].Observe(reward)
		steps[a] += float64(ep.Steps)
		if ep.Run >= 0 && ep.Run < runs {
			perRun[ep.Run][a].Observe(reward)
			perRunCount[ep.Run]++
		}
	}
	prior := bandit.UniformPrior
	rep := Report{Episodes: episodes, Runs: runs, Seed: seed, Prior: prior, TotalEpisodes: len(episodes)}
	for _, c := range perRunCount {
		rep.EpisodesPerRun = max(rep.EpisodesPerRun, c)
	}
	var pb []float64
	if nArms > 0 {
		pb = bandit.ProbBest(pooled, prior, probBestDraws, rand.New(rand.NewPCG(seed, 0xab7e57)))
	}
	runPB := make([][]float64, runs)
	for r := range perRun {
		if nArms > 0 {
			runPB[r] = bandit.ProbBest(perRun[r], prior, probBestDraws, rand.New(rand.NewPCG(seed, uint64(r)+1)))
		}
	}
	bestPB := -1.0
	for i, n := range names {
		st := pooled[i]
		al, be := st.Posterior(prior)
		ar := ArmReport{
			Name: n, Episodes: int(st.Episodes), Successes: int(st.Successes),
			MeanScore: 100 * st.MeanScore(), SuccessRate: 100 * st.SuccessRate(),
			PosteriorAlpha: al, PosteriorBeta: be, PosteriorMean: st.PosteriorMean(prior), ProbBest: pb[i],
		}
		if len(episodes) > 0 {
			ar.Share = float64(st.Episodes) / float64(len(episodes))
		}
		if st.Episodes > 0 {
			ar.MeanSteps = steps[i] / float64(st.Episodes)
		}
		var scores, succ, shares, pbs []float64
		for r := range perRun {
			s := perRun[r][i]
			if perRunCount[r] == 0 {
				continue // an empty run says nothing
			}
			shares = append(shares, float64(s.Episodes)/float64(perRunCount[r]))
			pbs = append(pbs, runPB[r][i])
			if s.Episodes > 0 {
				scores = append(scores, 100*s.MeanScore())
				succ = append(succ, 100*s.SuccessRate())
			}
		}
		ar.RunsPlayed = len(scores)
		ar.ScoreRunMean, ar.ScoreRunSD = MeanSD(scores)
		ar.SuccessRunMean, ar.SuccessRunSD = MeanSD(succ)
		ar.ShareRunMean, ar.ShareRunSD = MeanSD(shares)
		ar.ProbBestRunMean, ar.ProbBestRunSD = MeanSD(pbs)
		if ar.ProbBest > bestPB {
			bestPB, rep.Best = ar.ProbBest, n
		}
		rep.Arms = append(rep.Arms, ar)
	}
	return rep
}

// MeanSD returns the mean and the sample standard deviation of xs (0, 0 when empty; sd 0
// for one value).
func MeanSD(xs []float64) (mean, sd float64) {
	if len(xs) == 0 {
		return 0, 0
	}
	for _, x := range xs {
		mean += x
	}
	mean /= float64(len(xs))
	if len(xs) < 2 {
		return mean, 0
	}
	for _, x := range xs {
		sd += (x - mean) * (x - mean)
	}
	return mean, math.Sqrt(sd / float64(len(xs)-1))
}

// Arm returns the report of the named arm.
func (r Report) Arm(name string) (ArmReport, bool) {
	for _, a := range r.Arms {
		if a.Name == name {
			return a, true
		}
	}
	return ArmReport{}, false
}

// Markdown renders the report as a markdown table with a short legend.
func (r Report) Markdown() string {
	var b strings.Builder
	spread := r.Runs > 1
	fmt.Fprintf(&b, "Thompson sampling: %d run(s) of up to %d episodes (%d in all)", r.Runs, r.EpisodesPerRun, r.TotalEpisodes)
	if r.Split != "" {
		fmt.Fprintf(&b, " on the %s split", r.Split)
		if r.Goals > 0 {
			fmt.Fprintf(&b, " (%d goals)", r.Goals)
		}
	}
	if r.Source != "" {
		fmt.Fprintf(&b, ", %s", r.Source)
	}
	fmt.Fprintf(&b, ", minimum share %.3g, seed %d.\n\n", r.MinShare, r.Seed)
	b.WriteString("| arm | episodes | share % | score | success % | steps | posterior mean | P(best) |\n")
	b.WriteString("| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |\n")
	pm := func(v, sd float64, prec int) string {
		if !spread {
			return fmt.Sprintf("%.*f", prec, v)
		}
		return fmt.Sprintf("%.*f ± %.*f", prec, v, prec, sd)
	}
	for _, a := range r.Arms {
		name := a.Name
		if a.Name == r.Best && len(r.Arms) > 1 {
			name = "**" + name + "**"
		}
		fmt.Fprintf(&b, "| %s | %d | %s | %s | %s | %.2f | %.3f | %s |\n", name, a.Episodes,
			pm(100*a.Share, 100*a.ShareRunSD, 1), pm(a.MeanScore, a.ScoreRunSD, 1), pm(a.SuccessRate, a.SuccessRunSD, 1),
			a.MeanSteps, a.PosteriorMean, pm(a.ProbBest, a.ProbBestRunSD, 3))
	}
	b.WriteString("\nScore = 100 x mean reward and success = percent of episodes with reward 1, over all runs' episodes of the arm;")
	b.WriteString(" share = the arm's fraction of the traffic; posterior mean and P(best) (the probability that the arm has the highest")
	b.WriteString(" success probability) from the Beta(1 + successes, 1 + failures) posterior of all runs pooled.")
	if spread {
		b.WriteString(" ± is the standard deviation over the runs (each run starts from fresh posteriors).")
	}
	b.WriteString("\n")
	return b.String()
}

// WriteOutputs writes report.json, episodes.parquet, report.md and abtest.png into dir
// (created if needed).
func WriteOutputs(dir string, r Report) error {
	if dir == "" {
		return errors.New("abtest: no output directory")
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return fmt.Errorf("abtest: %w", err)
	}
	b, err := json.MarshalIndent(r, "", "  ")
	if err != nil {
		return fmt.Errorf("abtest: report: %w", err)
	}
	if err := writeFileAtomic(filepath.Join(dir, ReportFile), append(b, '\n')); err != nil {
		return err
	}
	if err := WriteEpisodes(filepath.Join(dir, EpisodesFile), r.Episodes); err != nil {
		return err
	}
	if err := writeFileAtomic(filepath.Join(dir, MarkdownFile), []byte(r.Markdown())); err != nil {
		return err
	}
	return WritePlot(filepath.Join(dir, PlotFile), r)
}

// ReadReport reads a report.json (Episodes are not in it: see ReadEpisodes).
func ReadReport(path string) (Report, error) {
	var r Report
	b, err := os.ReadFile(path)
	if err != nil {
		return r, fmt.Errorf("abtest: %w", err)
	}
	if err := json.Unmarshal(b, &r); err != nil {
		return r, fmt.Errorf("abtest: %s: %w", path, err)
	}
	return r, nil
}

// episodeRow is the Parquet schema of episodes.parquet.
type episodeRow struct {
	Run     int64   `parquet:"run"`
	Episode int64   `parquet:"episode"`
	Arm     string  `parquet:"arm,dict"`
	Goal    int64   `parquet:"goal"`
	Score   float64 `parquet:"score"`
	Success bool    `parquet:"success"`
	Steps   int64   `parquet:"steps"`
}

// WriteEpisodes writes episodes as a Parquet file (zstd; columns run, episode, arm, goal,
// score, success, steps), atomically.
func WriteEpisodes(path string, eps []Episode) error {
	rows := make([]episodeRow, len(eps))
	for i, e := range eps {
		rows[i] = episodeRow{Run: int64(e.Run), Episode: int64(e.Index), Arm: e.Arm, Goal: int64(e.Goal),
			Score: e.Score, Success: e.Success, Steps: int64(e.Steps)}
	}
	sort.SliceStable(rows, func(i, j int) bool {
		if rows[i].Run != rows[j].Run {
			return rows[i].Run < rows[j].Run
		}
		return rows[i].Episode < rows[j].Episode
	})
	return atomicfile.Write(path, 0o644, func(f io.Writer) error {
		w := parquet.NewGenericWriter[episodeRow](f, parquet.Compression(&parquet.Zstd), parquet.CreatedBy("shopagent abtest", "", ""))
		if _, err := w.Write(rows); err != nil {
			return fmt.Errorf("abtest: write %s: %w", path, err)
		}
		if err := w.Close(); err != nil {
			return fmt.Errorf("abtest: write %s: %w", path, err)
		}
		return nil
	})
}

// ReadEpisodes reads an episodes.parquet file.
func ReadEpisodes(path string) ([]Episode, error) {
	rows, err := parquet.ReadFile[episodeRow](path)
	if err != nil {
		return nil, fmt.Errorf("abtest: read %s: %w", path, err)
	}
	eps := make([]Episode, len(rows))
	for i, r := range rows {
		eps[i] = Episode{Run: int(r.Run), Index: int(r.Episode), Arm: r.Arm, Goal: int(r.Goal),
			Score: r.Score, Success: r.Success, Steps: int(r.Steps)}
	}
	return eps, nil
}

func writeFileAtomic(path string, data []byte) error {
	if err := atomicfile.WriteFile(path, data, 0o644); err != nil {
		return fmt.Errorf("abtest: %w", err)
	}
	return nil
}
