package main

import (
	"bufio"
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"time"
)

// TrainRate is what `gpucheck trainrate -json` writes: a training run's step rate with the
// compile time separated, read from its log (the trainer's step lines and warm-up lines)
// and its result.json.
type TrainRate struct {
	Job     string `json:"job"`
	Label   string `json:"label"`
	Log     string `json:"log"`
	Windows int    `json:"log_windows"`
	// ExamplesPerS is the median of the step lines' rates (each over the steps since the
	// previous line); Last the last line's.
	ExamplesPerS     float64 `json:"examples_per_s"`
	ExamplesPerSLast float64 `json:"examples_per_s_last"`
	StepsPerS        float64 `json:"steps_per_s"`
	Batch            int     `json:"batch"`
	// CompileTrainS and CompileForwardS are the warm-up's compile times of the training
	// step and of the rollout forward passes (XLA set); CompilePolicyS the forward
	// warm-ups of policies loaded by the job (a reference), summed.
	CompileTrainS   float64 `json:"compile_train_s"`
	CompileForwardS float64 `json:"compile_forward_s"`
	CompilePolicyS  float64 `json:"compile_policy_s"`
	Programs        int     `json:"programs_warmed_up"`
	// Step and ElapsedS (training time) come from result.json; WallS is the whole
	// command's wall clock (-wall).
	Step     int64   `json:"step"`
	ElapsedS float64 `json:"elapsed_s"`
	WallS    float64 `json:"wall_s"`
	Status   string  `json:"status"`
}

var (
	stepLineRE  = regexp.MustCompile(`^(\S+) step (\d+)/(\d+) loss \S+ .* ([0-9.]+) examples/s`)
	warmTrainRE = regexp.MustCompile(`^(\S+): warm-up compiled (\d+) programs in (\S+) \(training steps (\S+), forward passes (\S+)\)`)
	warmPolRE   = regexp.MustCompile(`^warm-up: policy forward: compiled program \d+/\d+ in (\S+)`)
)

// runTrainRate reads a train log (and the run's result.json).
func runTrainRate(args []string) error {
	fs := flag.NewFlagSet("trainrate", flag.ContinueOnError)
	logPath := fs.String("log", "", "the train command's output (stdout and stderr)")
	job := fs.String("job", "", "job name in the step lines: il, dpo, ppo, pg, pretrain")
	runDir := fs.String("run", "", "run directory (its result.json)")
	label := fs.String("label", "", "label in the output")
	batch := fs.Int("batch", 0, "examples per step (for steps/s)")
	wall := fs.Float64("wall", 0, "wall-clock seconds of the whole command (measured by the caller)")
	jsonOut := fs.String("json", "", "write the result as JSON to this file")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *logPath == "" || *job == "" {
		return fmt.Errorf("-log and -job are required")
	}
	r, err := parseTrainLog(*logPath, *job)
	if err != nil {
		return err
	}
	r.Label, r.Batch, r.WallS = *label, *batch, *wall
	if r.Batch > 0 {
		r.StepsPerS = r.ExamplesPerS / float64(r.Batch)
	}
	r.Status = "no result.json"
	if *runDir != "" {
		if b, err := os.ReadFile(filepath.Join(*runDir, "result.json")); err == nil {
			var s struct {
				Status   string  `json:"status"`
				Step     int64   `json:"step"`
				ElapsedS float64 `json:"elapsed_s"`
			}
			if err := json.Unmarshal(b, &s); err == nil {
				r.Status, r.Step, r.ElapsedS = s.Status, s.Step, s.ElapsedS
			}
		}
	}
	fmt.Printf("%s %s: %d log windows, median %.1f examples/s (last %.1f); compile: training step %.1f s, forward %.1f s, policies %.1f s (%d programs); %s at step %d, %.1f s training, %.1f s wall\n",
		r.Job, r.Label, r.Windows, r.ExamplesPerS, r.ExamplesPerSLast, r.CompileTrainS, r.CompileForwardS, r.CompilePolicyS,
		r.Programs, r.Status, r.Step, r.ElapsedS, r.WallS)
	return writeJSON(*jsonOut, r)
}

// parseTrainLog extracts the step rates and the warm-up times of job from a log.
func parseTrainLog(path, job string) (*TrainRate, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	r := &TrainRate{Job: job, Log: path}
	var rates []float64
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		line := sc.Text()
		if m := stepLineRE.FindStringSubmatch(line); m != nil && m[1] == job {
			if v, err := strconv.ParseFloat(m[4], 64); err == nil {
				rates = append(rates, v)
			}
			continue
		}
		if m := warmTrainRE.FindStringSubmatch(line); m != nil && m[1] == job {
			n, _ := strconv.Atoi(m[2])
			r.Programs += n
			r.CompileTrainS += seconds(m[4])
			r.CompileForwardS += seconds(m[5])
			continue
		}
		if m := warmPolRE.FindStringSubmatch(line); m != nil {
			r.CompilePolicyS += seconds(m[1])
			r.Programs++
		}
	}
	if err := sc.Err(); err != nil {
		return nil, err
	}
	r.Windows = len(rates)
	if len(rates) > 0 {
		r.ExamplesPerSLast = rates[len(rates)-1]
		s := slices.Clone(rates)
		slices.Sort(s)
		r.ExamplesPerS = s[len(s)/2]
	}
	return r, nil
}

// seconds parses a Go duration ("1.5s", "350ms"), 0 when it is not one.
func seconds(s string) float64 {
	d, err := time.ParseDuration(s)
	if err != nil {
		return 0
	}
	return d.Seconds()
}
