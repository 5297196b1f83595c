package abtest

import (
	"fmt"
	"io"
	"math"
	"sort"

	"gonum.org/v1/plot"
	"gonum.org/v1/plot/plotter"
	"gonum.org/v1/plot/plotutil"
	"gonum.org/v1/plot/vg"
	"gonum.org/v1/plot/vg/draw"
	"gonum.org/v1/plot/vg/vgimg"

	"shopagent/atomicfile"
)

// Curves are the running per-arm figures of a test against the episode index (the
// paper's "rollouts" axis), averaged over the runs: at episode i of a run, an arm's
// cumulative mean score (0..100) and success rate (percent) over its episodes with index
// <= i, and its cumulative share of the traffic (percent). A value is NaN until the arm
// has played in some run.
type Curves struct {
	Arms    []string
	X       []float64
	Score   [][]float64
	Success [][]float64
	Share   [][]float64
}

// ComputeCurves computes the curves of a report's episodes.
func ComputeCurves(r Report) Curves {
	c := Curves{}
	for _, a := range r.Arms {
		c.Arms = append(c.Arms, a.Name)
	}
	idx := map[string]int{}
	for i, n := range c.Arms {
		idx[n] = i
	}
	byRun := map[int][]Episode{}
	n := 0
	for _, ep := range r.Episodes {
		if _, ok := idx[ep.Arm]; !ok {
			idx[ep.Arm] = len(c.Arms)
			c.Arms = append(c.Arms, ep.Arm)
		}
		byRun[ep.Run] = append(byRun[ep.Run], ep)
		n = max(n, ep.Index+1)
	}
	nArms := len(c.Arms)
	c.X = make([]float64, n)
	for i := range c.X {
		c.X[i] = float64(i + 1)
	}
	sums := func() [][]float64 {
		m := make([][]float64, nArms)
		for a := range m {
			m[a] = make([]float64, n)
		}
		return m
	}
	scoreSum, succSum, shareSum := sums(), sums(), sums()
	scoreN, shareN := sums(), sums()
	for _, eps := range byRun {
		sort.Slice(eps, func(i, j int) bool { return eps[i].Index < eps[j].Index })
		cnt := make([]float64, nArms)
		sc := make([]float64, nArms)
		su := make([]float64, nArms)
		k, total := 0, 0.0
		for i := 0; i < n; i++ {
			for k < len(eps) && eps[k].Index <= i {
				a := idx[eps[k].Arm]
				cnt[a]++
				sc[a] += eps[k].Score
				if eps[k].Success {
					su[a]++
				}
				total++
				k++
			}
			if total == 0 {
				continue
			}
			for a := 0; a < nArms; a++ {
				shareSum[a][i] += 100 * cnt[a] / total
				shareN[a][i]++
				if cnt[a] > 0 {
					scoreSum[a][i] += 100 * sc[a] / cnt[a]
					succSum[a][i] += 100 * su[a] / cnt[a]
					scoreN[a][i]++
				}
			}
		}
	}
	div := func(s, cnt [][]float64) [][]float64 {
		out := sums()
		for a := range out {
			for i := range out[a] {
				if cnt[a][i] == 0 {
					out[a][i] = math.NaN()
				} else {
					out[a][i] = s[a][i] / cnt[a][i]
				}
			}
		}
		return out
	}
	c.Score, c.Success, c.Share = div(scoreSum, scoreN), div(succSum, scoreN), div(shareSum, shareN)
	return c
}

// WritePlot draws the report's curves as a PNG: cumulative mean score, cumulative success
// rate and traffic share per arm against the episode index, averaged over the runs, one
// line per arm.
func WritePlot(path string, r Report) error {
	c := ComputeCurves(r)
	title := fmt.Sprintf("Thompson sampling, %d run(s)", r.Runs)
	panels := []struct {
		title, y string
		ys       [][]float64
	}{
		{title + ": cumulative mean score", "score (100 x mean reward)", c.Score},
		{"cumulative success rate", "success rate (%)", c.Success},
		{"traffic share", "share of episodes (%)", c.Share},
	}
	plots := make([][]*plot.Plot, len(panels))
	for pi, pn := range panels {
		p := plot.New()
		p.Title.Text = pn.title
		p.X.Label.Text = "episode (rollouts)"
		p.Y.Label.Text = pn.y
		p.Y.Min, p.Y.Max = 0, 112 // room for the legend above 100
		p.Legend.Top = true
		p.Add(plotter.NewGrid())
		for a, name := range c.Arms {
			var xys plotter.XYs
			for i, y := range pn.ys[a] {
				if !math.IsNaN(y) {
					xys = append(xys, plotter.XY{X: c.X[i], Y: y})
				}
			}
			if len(xys) == 0 {
				continue
			}
			if len(xys) == 1 {
				xys = append(xys, xys[0]) // a line needs two points
			}
			l, err := plotter.NewLine(xys)
			if err != nil {
				return fmt.Errorf("abtest: plot: %w", err)
			}
			l.Color = plotutil.Color(a)
			l.Dashes = plotutil.Dashes(a / 7)
			l.Width = vg.Points(1.5)
			p.Add(l)
			p.Legend.Add(name, l)
		}
		if len(c.X) > 0 {
			p.X.Min, p.X.Max = 1, math.Max(2, c.X[len(c.X)-1])
		}
		plots[pi] = []*plot.Plot{p}
	}
	img := vgimg.NewWith(vgimg.UseWH(8*vg.Inch, 10*vg.Inch), vgimg.UseDPI(96))
	dc := draw.New(img)
	tiles := draw.Tiles{Rows: len(plots), Cols: 1, PadX: vg.Millimeter, PadY: 4 * vg.Millimeter,
		PadTop: 2 * vg.Millimeter, PadBottom: 2 * vg.Millimeter, PadLeft: 2 * vg.Millimeter, PadRight: 4 * vg.Millimeter}
	canvases := plot.Align(plots, tiles, dc)
	for i := range plots {
		plots[i][0].Draw(canvases[i][0])
	}
	return savePNG(path, img)
}

// savePNG writes a canvas as a PNG atomically.
func savePNG(path string, img *vgimg.Canvas) error {
	return atomicfile.Write(path, 0o644, func(f io.Writer) error {
		if _, err := (vgimg.PngCanvas{Canvas: img}).WriteTo(f); err != nil {
			return fmt.Errorf("abtest: plot %s: %w", path, err)
		}
		return nil
	})
}
