package main

import (
	"bufio"
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
)

// PartStatus is one line of OUT/parts.jsonl, written by bench/gpu_check.sh per part.
type PartStatus struct {
	Part    string  `json:"part"`
	Status  string  `json:"status"`
	Seconds float64 `json:"seconds"`
	Note    string  `json:"note,omitempty"`
}

// Results is OUT/results.json.
type Results struct {
	Meta    map[string]string `json:"meta"`
	Parts   []PartStatus      `json:"parts"`
	Exports []ExportResult    `json:"exports,omitempty"`
	Parity  *ParityResult     `json:"parity,omitempty"`
	Act     []Level           `json:"act,omitempty"`
	Train   []TrainRate       `json:"train,omitempty"`
}

// runReport gathers the parts' files of a gpu_check output directory into results.json
// and results.md.
func runReport(args []string) error {
	fs := flag.NewFlagSet("report", flag.ContinueOnError)
	dir := fs.String("dir", "", "gpu_check output directory")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *dir == "" {
		return fmt.Errorf("-dir is required")
	}
	r := Results{Meta: map[string]string{}}
	if err := readLines(filepath.Join(*dir, "meta.txt"), func(line string) error {
		if k, v, ok := strings.Cut(line, ": "); ok {
			r.Meta[k] = v
		}
		return nil
	}); err != nil {
		return err
	}
	if err := readLines(filepath.Join(*dir, "parts.jsonl"), func(line string) error {
		var p PartStatus
		if err := json.Unmarshal([]byte(line), &p); err != nil {
			return err
		}
		r.Parts = append(r.Parts, p)
		return nil
	}); err != nil {
		return err
	}
	files, _ := filepath.Glob(filepath.Join(*dir, "export-*.json"))
	sort.Strings(files)
	for _, f := range files {
		var e ExportResult
		if err := readJSON(f, &e); err != nil {
			return err
		}
		r.Exports = append(r.Exports, e)
	}
	if _, err := os.Stat(filepath.Join(*dir, "parity.json")); err == nil {
		r.Parity = &ParityResult{}
		if err := readJSON(filepath.Join(*dir, "parity.json"), r.Parity); err != nil {
			return err
		}
	}
	if err := readLines(filepath.Join(*dir, "act.jsonl"), func(line string) error {
		var l Level
		if err := json.Unmarshal([]byte(line), &l); err != nil {
			return err
		}
		r.Act = append(r.Act, l)
		return nil
	}); err != nil {
		return err
	}
	files, _ = filepath.Glob(filepath.Join(*dir, "train-*.json"))
	sort.Strings(files)
	for _, f := range files {
		var t TrainRate
		if err := readJSON(f, &t); err != nil {
			return err
		}
		r.Train = append(r.Train, t)
	}
	if err := writeJSON(filepath.Join(*dir, "results.json"), r); err != nil {
		return err
	}
	md := markdown(r)
	if err := os.WriteFile(filepath.Join(*dir, "results.md"), []byte(md), 0o644); err != nil {
		return err
	}
	fmt.Print(md)
	return nil
}

// markdown renders the results as the tables docs/GPU.md quotes.
func markdown(r Results) string {
	var b strings.Builder
	keys := make([]string, 0, len(r.Meta))
	for k := range r.Meta {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	b.WriteString("# bench/gpu_check.sh results\n\n")
	for _, k := range keys {
		fmt.Fprintf(&b, "- %s: %s\n", k, r.Meta[k])
	}
	b.WriteString("\n## Parts\n\n| part | status | seconds | note |\n| --- | --- | ---: | --- |\n")
	for _, p := range r.Parts {
		fmt.Fprintf(&b, "| %s | %s | %.0f | %s |\n", p.Part, p.Status, p.Seconds, p.Note)
	}
	if r.Parity != nil {
		p := r.Parity
		b.WriteString("\n## ONNX Runtime: device against CPU (one library, one process)\n\n")
		fmt.Fprintf(&b, "| device | ORT | observations | actions | max logit diff | max value diff | same action | served: max prob diff | served: max value diff | tolerance | pass |\n| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | --- |\n")
		fmt.Fprintf(&b, "| %s | %s | %d | %d | %.3g | %.3g | %.0f%% | %.3g | %.3g | %g | %v |\n", p.Device, p.ORTVersion,
			p.Observations, p.Actions, p.MaxLogitDiff, p.MaxValueDiff, 100*p.Agreement, p.MaxServedProbDiff, p.MaxServedValueDiff, p.Tolerance, p.Pass)
	}
	if len(r.Exports) > 0 {
		b.WriteString("\n## Export parity (ONNX Runtime against GoMLX)\n\n| preset | ORT device | GoMLX backend | ORT | max diff | tolerance | same action | seconds |\n| --- | --- | --- | --- | ---: | ---: | ---: | ---: |\n")
		for _, e := range r.Exports {
			fmt.Fprintf(&b, "| %s | %s | %s | %s | %.3g | %.3g | %.0f%% | %.1f |\n", e.Preset, e.Device, e.Backend, e.Parity.ORTVersion,
				e.Parity.MaxAbsDiff, e.Parity.Tolerance, 100*e.Parity.Agreement, e.Seconds)
		}
	}
	if len(r.Act) > 0 {
		b.WriteString("\n## POST /act (gpucheck load: results pages, 10 products, closed loop)\n\n| configuration | concurrency | requests | errors | requests/s | p50 ms | p90 ms | p99 ms |\n| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |\n")
		for _, l := range r.Act {
			fmt.Fprintf(&b, "| %s | %d | %d | %d | %.1f | %.2f | %.2f | %.2f |\n", l.Label, l.Concurrency, l.Requests, l.Errors, l.RPS, l.P50ms, l.P90ms, l.P99ms)
		}
	}
	if len(r.Train) > 0 {
		b.WriteString("\n## Training step rates (compile time separated)\n\n| run | examples/s (median window) | steps/s | compile: step | compile: forward | compile: policies | programs | steps | training s | wall s | status |\n| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | --- |\n")
		for _, t := range r.Train {
			fmt.Fprintf(&b, "| %s | %.1f | %.2f | %.1f | %.1f | %.1f | %d | %d | %.1f | %.1f | %s |\n", t.Label, t.ExamplesPerS, t.StepsPerS,
				t.CompileTrainS, t.CompileForwardS, t.CompilePolicyS, t.Programs, t.Step, t.ElapsedS, t.WallS, t.Status)
		}
	}
	return b.String()
}

// readLines calls fn for every non-empty line of path (nothing when it does not exist).
func readLines(path string, fn func(string) error) error {
	f, err := os.Open(path)
	if os.IsNotExist(err) {
		return nil
	}
	if err != nil {
		return err
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		if line := strings.TrimSpace(sc.Text()); line != "" {
			if err := fn(line); err != nil {
				return fmt.Errorf("%s: %w", path, err)
			}
		}
	}
	return sc.Err()
}

// readJSON decodes path into v.
func readJSON(path string, v any) error {
	b, err := os.ReadFile(path)
	if err != nil {
		return err
	}
	if err := json.Unmarshal(b, v); err != nil {
		return fmt.Errorf("%s: %w", path, err)
	}
	return nil
}
